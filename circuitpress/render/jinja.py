"""The Jinja2 environment of the theme: Jinja's, with cheaper output.

Output is byte for byte Jinja's; only the work differs:

- `{{ x }}` is written through `output()` instead of markupsafe's `escape()`, which wraps each
  escaped value in a Markup that the template then throws away when it joins its output;
- the parts of one output (`<li id="{{ a }}">{{ b }}</li>`) are yielded as one string, not one
  yield each, since every yield travels up through each include and block around it;
- template globals are a dict, not a ChainMap that every render and include copies in Python.

Measured on the 300-page prose site (cachegrind, instructions of one build): Theme.render_page
672 M -> 289 M, with render/html.py's page views.
"""

from __future__ import annotations

from typing import Any, MutableMapping

import jinja2
import jinja2.compiler
from jinja2 import nodes
from markupsafe import Markup, escape

try:  # markupsafe >= 3: escape() without wrapping its result in a Markup
    from markupsafe import _escape_inner
except ImportError:  # pragma: no cover - markupsafe 2

    def _escape_inner(s: str, /) -> str:
        return str(escape(s))


escape_text = _escape_inner  # str(escape(text)) for a str, without the Markup in between
join = "".join


def output(value: Any) -> str:
    """What `{{ value }}` writes in an autoescaped template: the text of `escape(value)`.

    Jinja joins what a template writes into one str, so the Markup `escape` returns is thrown
    away at once; it cost a second Python call (Markup.__new__), two more for a value that
    already is Markup, ~110 times a page."""
    if type(value) is str:
        return _escape_inner(value)
    if type(value) is Markup:
        return value
    if type(value) is int:  # digits and a '-', nothing to escape (footnote numbers, depths)
        return str(value)
    if hasattr(value, "__html__"):
        return Markup(value.__html__())
    return _escape_inner(str(value))


class CodeGenerator(jinja2.compiler.CodeGenerator):
    """Jinja's code generator, with `{{ … }}` written through `output` (the hook Jinja's own
    NativeCodeGenerator overrides) and each output yielded as one string."""

    def visit_Template(self, node: nodes.Template, frame: Any = None) -> None:
        self.writeline("from circuitpress.render.jinja import join as cp_join, output as cp_output")
        super().visit_Template(node, frame)

    def visit_Output(self, node: nodes.Output, frame: Any) -> None:
        """`<li id="{{ a }}">{{ b }}</li>` as one `yield cp_join(('<li id="', cp_output(a), …))`
        where Jinja yields its five parts one by one: each yield travels up through every
        include and block around it (4 generators deep in a page's partials)."""
        finalize = self._make_finalize()
        if (
            len(node.nodes) < 2
            or frame.buffer is not None
            or frame.require_output_check
            or finalize.src is not None
        ):
            super().visit_Output(node, frame)
            return
        # Jinja's folding of constants (its visit_Output), then its buffered form of the output
        # with the buffer replaced by one joined yield.
        body: list[list[Any] | nodes.Expr] = []
        for child in node.nodes:
            try:
                if not (finalize.const or isinstance(child, nodes.TemplateData)):
                    raise nodes.Impossible()
                const = self._output_child_to_const(child, frame, finalize)
            except (nodes.Impossible, Exception):
                body.append(child)
                continue
            if body and isinstance(body[-1], list):
                body[-1].append(const)
            else:
                body.append([const])
        if len(body) == 1 and isinstance(body[0], list):
            self.writeline("yield " + self._output_const_repr(body[0]))
            return
        self.writeline("yield cp_join((")
        self.indent()
        for item in body:
            if isinstance(item, list):
                self.writeline(self._output_const_repr(item) + ",")
            else:
                self.newline(item)
                self._output_child_pre(item, frame, finalize)
                self.visit(item, frame)
                self._output_child_post(item, frame, finalize)
                self.write(",")
        self.outdent()
        self.writeline("))")

    def _output_child_pre(self, node: nodes.Expr, frame: Any, finalize: Any) -> None:
        if frame.eval_ctx.autoescape and not frame.eval_ctx.volatile and finalize.src is None:
            self.write("cp_output(")
        else:
            super()._output_child_pre(node, frame, finalize)


class Environment(jinja2.Environment):
    code_generator_class = CodeGenerator

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        """A template's globals as a dict of its own, not Jinja's ChainMap over the
        environment's: every render and `{% include %}` copies them (`dict(globals)`,
        `set(globals)`), which for a ChainMap runs in Python (7 times a page). The theme sets
        its globals before the first template loads and never after (as Jinja asks), so the
        copy holds the same."""
        return {**self.globals, **(d or {})}
