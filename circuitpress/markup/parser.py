"""The markdown-it-py parser with every plugin circuitpress uses, built once per `Markup`.

Two instances share one setup: the page parser reads YAML front matter; the body parser
(directive bodies, captions) must not, since a body may legitimately start with `---`.
"""

from __future__ import annotations

from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from mdit_py_plugins.attrs import attrs_block_plugin, attrs_plugin
from mdit_py_plugins.colon_fence import colon_fence_plugin
from mdit_py_plugins.deflist import deflist_plugin
from mdit_py_plugins.front_matter import front_matter_plugin
from mdit_py_plugins.myst_role import myst_role_plugin

from circuitpress.markup.directive_syntax import directive_plugin
from circuitpress.markup.dispatch import dispatch_by_first_character
from circuitpress.markup.footnotes import footnote_plugin
from circuitpress.markup.frontmatter import front_matter_rule_plugin
from circuitpress.markup.math import math_plugin
from circuitpress.markup.render_rules import render_plugin


def create_parser(*, front_matter: bool) -> MarkdownIt:
    # html=True: raw HTML in an article is the author's own content (Distill articles use it).
    md = MarkdownIt("commonmark", {"html": True, "typographer": True, "xhtmlOut": False})
    md.enable(["table", "strikethrough", "replacements", "smartquotes"])
    md.core.ruler.at("normalize", _normalize)
    if front_matter:
        md.use(front_matter_plugin)
        md.use(front_matter_rule_plugin)
    md.use(footnote_plugin)
    md.use(math_plugin)
    md.use(deflist_plugin)
    md.use(attrs_plugin)
    md.use(attrs_block_plugin)
    md.use(myst_role_plugin)
    md.use(colon_fence_plugin)
    md.use(directive_plugin)
    md.use(render_plugin)
    dispatch_by_first_character(md)  # last: it reads the rules every plugin added
    return md


def _normalize(state: StateCore) -> None:
    """markdown-it's `normalize` rule (CR and CRLF to LF, NUL to U+FFFD) without its regular
    expressions, which replace every newline of the page by itself: 1.5% of a prose build."""
    src = state.src
    if "\r" in src:
        src = src.replace("\r\n", "\n").replace("\r", "\n")
    if "\0" in src:
        src = src.replace("\0", "\ufffd")
    state.src = src
