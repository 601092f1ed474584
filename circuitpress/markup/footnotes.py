"""Footnotes: mdit-py-plugins parses `[^label]`, `[^label]: …` and `^[inline]`; this file keeps
the definitions out of the body and renders references the way the theme expects.

The plugin's own tail rule would append a `<section class="footnotes">` to the body (and, with
directive bodies parsed separately, to every caption). Instead the definitions are lifted into
`PageEnv.footnote_defs` and the page renders them into `RenderedPage.footnotes`, which the
theme places in the appendix. Numbers follow the order of first reference in the document
(assigned by the resolver), not the plugin's parse order.
"""

from __future__ import annotations

from typing import Any, Sequence

from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from mdit_py_plugins.footnote import footnote_plugin as _mdit_footnote_plugin

from circuitpress.errors import UserError
from circuitpress.markup.state import FootnoteDef, page_env


def footnote_plugin(md: MarkdownIt) -> None:
    _mdit_footnote_plugin(md, inline=True, move_to_end=False)
    md.core.ruler.after("inline", "cp_footnote_defs", _lift_definitions)
    md.add_render_rule("footnote_ref", _render_ref)


def _lift_definitions(state: StateCore) -> None:
    page = page_env(state.env)
    if page is None:
        return
    kept: list[Token] = []
    current: list[Token] | None = None
    label = ""
    line = 0
    for token in state.tokens:
        if token.type == "footnote_reference_open":
            label = token.meta["label"]
            line = page.offset + (token.map[0] if token.map else 0) + 1
            if label in page.footnote_defs:
                raise UserError(
                    f"footnote [^{label}] is defined twice",
                    file=page.file,
                    line=line,
                    hint=f"first defined at line {page.footnote_defs[label].line}",
                )
            current = []
        elif token.type == "footnote_reference_close":
            page.footnote_defs[label] = FootnoteDef(current or [], page.offset, line)
            current = None
        elif current is not None:
            current.append(token)
        else:
            kept.append(token)
    state.tokens = kept


def _render_ref(
    self: Any, tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]
) -> str:
    meta = tokens[idx].meta
    number = meta.get("cp_number")
    if number is None:  # a footnote seen only at render time (never planned): plain marker
        return '<sup class="cp-fn-ref">*</sup>'
    return (
        f'<sup class="cp-fn-ref" id="{meta["cp_ref_id"]}"><a href="#fn-{number}">{number}</a></sup>'
    )
