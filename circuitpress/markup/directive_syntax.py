"""MyST directive syntax: fences whose info string is `{name} argument` become directive calls.

Both ```` ```{name} ```` (markdown-it's fence) and `:::{name}` (mdit-py-plugins' colon_fence)
open a directive; nesting uses a longer fence outside. This core rule runs right after block
parsing and turns each such fence token into a `cp_directive` token holding a `DirectiveCall`:
leading `:key: value` lines become converted options (each line remembered for errors), the
rest is the body, parsed here (recursively, with the same env) so that roles, citations and
footnotes inside captions are found before anything renders.
"""

from __future__ import annotations

import re
from typing import Any, MutableMapping

from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token

from circuitpress.errors import UserError, choices_hint
from circuitpress.extensions import Directive, DirectiveCall, Option, choice, label
from circuitpress.markup.state import PageEnv, page_env

_INFO = re.compile(r"^\{([A-Za-z0-9_\-+:]+)\}\s*(.*)$", re.S)
_OPTION = re.compile(r"^:([A-Za-z][\w-]*):(?:[ \t]+(.*?))?[ \t]*$")
_CLASSES = re.compile(r"^[A-Za-z_][\w-]*(?:\s+[A-Za-z_][\w-]*)*$")

LAYOUTS = ("body", "page", "screen", "gutter")


def _classes(value: str) -> str:
    v = " ".join(value.split())
    if not _CLASSES.match(v):
        raise ValueError(f"bad class list '{value}' (space-separated CSS class names)")
    return v


# Options every directive accepts; markup handles them itself.
GENERIC_OPTIONS: dict[str, Option] = {
    "name": Option(label, help="a label, referable with {numref}"),
    "layout": Option(choice(*LAYOUTS), help="body, page, screen or gutter column"),
    "class": Option(_classes, help="extra CSS classes on the wrapper"),
}


def directive_plugin(md: MarkdownIt) -> None:
    """Turn `{name}` fences into `cp_directive` tokens (needs env["cp"], see markup.state)."""
    # Before "inline" (so after front matter, which may be needed first, and after attrs).
    md.core.ruler.before("inline", "cp_directives", _directives_rule)


def _directives_rule(state: StateCore) -> None:
    page = page_env(state.env)
    if page is None:
        return
    lines: list[str] | None = None
    for token in state.tokens:
        if token.type not in ("fence", "colon_fence") or token.map is None:
            continue
        info = token.info.strip()
        match = _INFO.match(info)
        if lines is None:
            lines = state.src.split("\n")
        if not match:
            if token.type == "colon_fence" and not info and not _closed(token, lines):
                raise UserError(
                    "a ':::' line closes nothing",
                    file=page.file,
                    line=page.offset + token.map[0] + 1,
                    hint="to nest directives, give the outer fence more colons"
                    " (::::{figure} … ::::)",
                )
            continue
        if not _closed(token, lines):
            raise UserError(
                f"directive {{{match.group(1)}}} is never closed",
                file=page.file,
                line=page.offset + token.map[0] + 1,
                hint=f"end it with a line '{token.markup}'; a directive nested inside another needs"
                " a shorter fence than the outer one",
            )
        _to_directive(token, match.group(1), match.group(2).strip(), page, state.env)


def _closed(token: Token, lines: list[str]) -> bool:
    """Whether the fence has its closing line (markdown-it silently runs it to the end)."""
    start, end = token.map or (0, 0)
    if end - 1 <= start or end - 1 >= len(lines):
        return False
    last = lines[end - 1].lstrip(" \t>").strip()  # fences may sit in a blockquote or list
    marker = token.markup[0]
    return len(last) >= len(token.markup) and last == marker * len(last)


def _to_directive(
    token: Token, name: str, argument: str, page: PageEnv, env: MutableMapping[str, Any]
) -> None:
    fence_line = page.offset + (token.map or [0])[0]  # 0-based page line of the opening fence
    directive = page.registry.directives.get(name)
    if directive is None:
        raise UserError(
            f"unknown directive '{{{name}}}'",
            file=page.file,
            line=fence_line + 1,
            hint=choices_hint(name, page.registry.directives),
        )
    body_lines = token.content.split("\n")
    if body_lines and body_lines[-1] == "":
        body_lines.pop()
    raw_options: dict[str, tuple[str, int]] = {}
    n = 0
    while n < len(body_lines):
        m = _OPTION.match(body_lines[n])
        if not m:
            break
        line = fence_line + 2 + n
        if m.group(1) in raw_options:
            raise UserError(f"option ':{m.group(1)}:' given twice", file=page.file, line=line)
        raw_options[m.group(1)] = (m.group(2) or "", line)
        n += 1
    body = "\n".join(body_lines[n:])
    call = DirectiveCall(
        name=name, argument=argument, options={}, body=body, file=page.file, line=fence_line + 1
    )
    call.data["_option_lines"] = {k: line for k, (_, line) in raw_options.items()}
    _check_argument(directive, call)
    _convert_options(directive, call, raw_options)
    page.calls.append(call)  # before the body's own calls: document order
    body_start = fence_line + 1 + n
    saved = page.offset
    page.offset = body_start
    try:
        body_tokens = page.body_md.parse(body, env) if body.strip() else []
    finally:
        page.offset = saved
    call.data["_body_tokens"] = body_tokens
    call.data["_body_offset"] = body_start
    token.type = "cp_directive"
    token.meta = {"call": call}
    token.children = None


def _check_argument(directive: Directive, call: DirectiveCall) -> None:
    if directive.argument == "required" and not call.argument:
        usage = f" {directive.argument_help}" if directive.argument_help else ""
        raise call.error(
            f"directive {{{call.name}}} needs an argument",
            hint=f"write {{{call.name}}}{usage or ' ARGUMENT'}",
        )
    if directive.argument == "none" and call.argument:
        raise call.error(
            f"directive {{{call.name}}} takes no argument",
            hint=f"got '{call.argument}'; options go on the next lines as :key: value",
        )


def _convert_options(
    directive: Directive, call: DirectiveCall, raw: dict[str, tuple[str, int]]
) -> None:
    spec = {**directive.options, **GENERIC_OPTIONS}
    for key, (value, line) in raw.items():
        option = spec.get(key)
        if option is None:
            raise UserError(
                f"unknown option ':{key}:' for directive {{{call.name}}}",
                file=call.file,
                line=line,
                hint=choices_hint(key, spec),
            )
        try:
            converted = option.convert(value)
        except ValueError as exc:
            raise UserError(
                f"bad value for option ':{key}:' of {{{call.name}}}: {exc}",
                file=call.file,
                line=line,
            ) from None
        except UserError as exc:
            raise exc.located(call.file, line) from None
        if key == "name":
            call.label = converted
        else:
            call.options[key] = converted
    for key, option in directive.options.items():
        call.options.setdefault(key, option.default)
    call.options.setdefault("layout", getattr(directive, "layout", "body"))
