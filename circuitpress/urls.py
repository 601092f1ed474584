"""Which URLs from an author's files may become a link (`href`) in the published site.

Front matter, circuitpress.toml and .bib files put URLs into `href`s that the author never
wrote as HTML; a `javascript:` (or `data:`, `vbscript:`) URL there would run in every
reader's browser. Only web and mail links and site paths pass. Browsers ignore control
characters and whitespace inside a scheme (`java\\tscript:`), so those are removed before the
scheme is read.
"""

from __future__ import annotations

import re

SAFE_SCHEMES = ("http", "https", "mailto")
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):", re.IGNORECASE)
_IGNORED = re.compile(r"[\x00-\x20\x7f]")
LINK_HINT = "use an https:// URL or a path inside the site"


def is_safe_link(url: str) -> bool:
    """True for http(s)/mailto URLs, site paths ('/a/', 'a/b.png') and fragments ('#x')."""
    match = _SCHEME.match(_IGNORED.sub("", url))
    return match is None or match.group(1).lower() in SAFE_SCHEMES
