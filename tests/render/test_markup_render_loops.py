"""Markup.render's own render loops (markup/page.py, _Render) give the bytes of markdown-it's
RendererHTML.render and renderInline, and leave a renderer of another kind to its own."""

from __future__ import annotations

import pytest
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from mdit_py_plugins.attrs import attrs_block_plugin, attrs_plugin
from mdit_py_plugins.deflist import deflist_plugin

from circuitpress.markup.page import _Render

MARKDOWN = """\
# Title {#top .big}

Text with *emphasis*, `code & <tag>`, "quotes" and <span class="x">inline HTML</span> & <b>.
A soft break\\
and a hard one. ![alt *text*](img.png "a title") [link](http://x.org?a=1&b="2")

- tight
- list with **bold**

1. loose

2. list

> a quote
> - with a list

| a | b |
|---|:-:|
| 1 | <2> |

Term
: Definition

```python {.lang}
code <block> & "x"
```

    indented code

<div>
html block
</div>

***
{.para}
A paragraph with attributes.
"""


def parsers() -> list[MarkdownIt]:
    made = []
    for xhtml in (False, True):
        md = MarkdownIt("commonmark", {"html": True, "typographer": True, "xhtmlOut": xhtml})
        md.enable(["table", "strikethrough", "replacements", "smartquotes"])
        md.use(attrs_plugin).use(attrs_block_plugin).use(deflist_plugin)
        made.append(md)
    return made


@pytest.mark.parametrize("md", parsers())
def test_markup_render_loops_give_markdown_its_own_output(md: MarkdownIt) -> None:
    env: dict = {}
    tokens = md.parse(MARKDOWN, env)
    render = _Render.of(md.renderer, md.options, env)
    assert type(render) is _Render
    assert render.block(tokens) == md.renderer.render(tokens, md.options, env)
    for token in tokens:
        if token.type == "inline":
            children = token.children or []
            assert render.inline(children) == md.renderer.renderInline(children, md.options, env)


def test_a_renderer_of_its_own_keeps_its_own_loops() -> None:
    class Shouting(RendererHTML):
        def renderToken(self, tokens, idx, options, env):  # type: ignore[no-untyped-def]
            return super().renderToken(tokens, idx, options, env).upper()

    md = MarkdownIt("commonmark", renderer_cls=Shouting)
    tokens = md.parse("a *b*\n\n> c\n", {})
    assert _Render.of(md.renderer, md.options, {}).block(tokens) == md.renderer.render(
        tokens, md.options, {}
    )
    md = MarkdownIt("commonmark")
    md.add_render_rule("text", lambda self, tokens, idx, options, env: "T")
    tokens = md.parse("a *b*\n", {})
    out = _Render.of(md.renderer, md.options, {}).block(tokens)
    assert out == md.renderer.render(tokens, md.options, {}) == "<p>T<em>T</em></p>\n"
