"""Which URLs from an author's files may become a link (`href`) in the published site.

Front matter, circuitpress.toml and .bib files put URLs into `href`s that the author never
wrote as HTML; a `javascript:` (or `data:`, `vbscript:`) URL there would run in every
reader's browser. Only web and mail links and site paths pass. Browsers ignore control
characters and whitespace inside a scheme (`java\\tscript:`), so those are removed before the
scheme is read.
"""

from __future__ import annotations

import re
import unicodedata

SAFE_SCHEMES = ("http", "https", "mailto")
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):", re.IGNORECASE)
_IGNORED = re.compile(r"[\x00-\x20\x7f]")
LINK_HINT = "use an https:// URL or a path inside the site"


def is_safe_link(url: str) -> bool:
    """True for http(s)/mailto URLs, site paths ('/a/', 'a/b.png') and fragments ('#x')."""
    match = _SCHEME.match(_IGNORED.sub("", url))
    return match is None or match.group(1).lower() in SAFE_SCHEMES


WEB_SCHEMES = ("http", "https")
WEB_LINK_HINT = "use an http(s):// URL or a path inside the site"


def is_web_link(url: str) -> bool:
    """True for http(s) URLs and site paths: the links of circuitpress.toml, which are shown on
    every page (a `mailto:` repository or `data:` URL has no place there)."""
    match = _SCHEME.match(_IGNORED.sub("", url))
    return match is None or match.group(1).lower() in WEB_SCHEMES


# base_url is pasted in front of every internal link, feed entry and canonical URL, so it is
# held to the strict grammar of an http(s) URL or an absolute path: a host of letters, digits,
# dots and dashes (or an IPv6 literal), an optional port, and a path of URL characters. A
# query, a fragment, whitespace, a backslash (which browsers read as '/') or a leading '//'
# (another host) would change what the links that follow it point to.
_PATH = r"/(?!/)(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*"
_BASE_URL = re.compile(
    rf"^(?:https?://(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
    rf"(?::[0-9]{{1,5}})?(?:{_PATH})?|{_PATH})$",
    re.IGNORECASE,
)
BASE_URL_HINT = (
    "use an http(s):// URL such as https://example.org/notes/, or a path such as /notes/"
)


def is_base_url(url: str) -> bool:
    """True for `https://host[:port][/path]` and `/path` (ASCII, percent-encoded), else False."""
    return _BASE_URL.match(url) is not None


# Characters a page's file name may use: they appear unchanged in its URL, its folder in the
# output and the sitemap. '#', '?', '%', spaces, quotes and control characters would break the
# links (or the XML) they end up in.
def bad_slug_character(slug: str) -> str | None:
    """The first character of a page slug that may not appear in a URL path, or None.

    Letters, digits, '/' and the characters URL paths carry as they are (`c++`, `a&b`, `x=1`)
    pass, and so do non-ASCII letters, digits and marks (`über`, `線`): links to them are
    percent-encoded where they are made. Refused: what ends or escapes a path (`#`, `?`, `%`),
    whitespace, and what HTML and URLs do not allow unescaped."""
    for ch in slug:
        if ch.isascii():
            if not (ch.isalnum() or ch in "-_./+&'(),;=@!~$*:"):
                return ch
        elif unicodedata.category(ch)[0] not in "LMN":
            return ch
    return None
