"""One walk over a parsed page in document order: numbers, labels, citations, plans.

markdown-it parses directive bodies before the paragraphs around them and inline footnotes in
parse order, so anything numbered by "first appearance" (figures, citations, footnotes) is
assigned here, after parsing, by visiting the token tree as a reader would read it. The same
walk calls every directive's and role's `plan()` (in reading order, so analysis requests and
mentions come out in a stable order), converts math to MathML, and finally gives headings
their ids once every explicit label is known.
"""

from __future__ import annotations

import difflib
import re
from typing import TYPE_CHECKING, Any, Sequence

from markdown_it.token import Token
from mdit_py_plugins.anchors.index import slugify

from circuitpress.errors import UserError, choices_hint
from circuitpress.markup.math import convert_token
from circuitpress.markup.state import Heading, PageEnv
from circuitpress.paths import is_file, site_file

if TYPE_CHECKING:
    from circuitpress.extensions import PlanContext

BUILTIN_ROLES = ("cite", "numref")
# A word is a run of non-space characters with a word character in it (`\S*\w\S*`). Counted
# once per page over all its text, by str.split() (the same spaces as the pattern's) and a search
# only for the runs that are not alphanumeric throughout (`\w` holds every alphanumeric): a
# regular expression over each text token was 2% of a prose build.
_WORD_CHARACTER = re.compile(r"\w")


def count_words(text: str) -> int:
    return sum(1 for run in text.split() if run.isalnum() or _WORD_CHARACTER.search(run))


# What the footnote plugin leaves as text when `[^label]` has no definition.
_FOOTNOTE_LIKE = re.compile(
    r"\[\^([^\]\s]+)\]"
)  # punctuation alone ("." after a footnote) is no word
_NUMREF = re.compile(r"^(?P<text>.*?)\s*<(?P<label>[^<>]+)>\s*$", re.S)


class Resolver:
    """Walks tokens of one page. `ctx` is None for Markdown rendered after planning (a
    directive's own text): then nothing is planned and page-wide numbers are only extended."""

    def __init__(self, page: PageEnv, env: dict[str, Any], ctx: PlanContext | None):
        self.page, self.env, self.ctx = page, env, ctx
        self.numrefs: list[tuple[Token, str, str | None, int]] = []
        self.pending: list[tuple[int, Any]] = []  # footnotes to visit once the body is done
        self.figures = sum(1 for c in page.calls if "_figure_number" in c.data)
        self.words: list[str] = []  # the text whose words count, counted by finish()

    # -- entry points --------------------------------------------------------------------------

    def run(self, tokens: Sequence[Token], offset: int = 0, top: bool = True) -> None:
        self.block(tokens, offset, top=top, words=True)
        self.finish()
        if self.ctx is not None:
            self.assign_heading_ids()

    def run_inline(self, children: Sequence[Token], line: int) -> None:
        self.inline(children, line, words=False)
        self.finish()

    def finish(self) -> None:
        if self.words:  # joined by newlines: a run never spans two texts
            self.page.word_count += count_words("\n".join(self.words))
            self.words.clear()
        # Footnote texts are read after the body, as the appendix is; they may cite and
        # reference further footnotes, which join the queue.
        while self.pending:
            number, content = self.pending.pop(0)
            self.footnote_content(number, content)
        self.resolve_numrefs()

    # -- blocks --------------------------------------------------------------------------------

    def block(self, tokens: Sequence[Token], offset: int, *, top: bool, words: bool) -> None:
        line = offset + 1
        for i, token in enumerate(tokens):
            if token.map is not None:
                line = offset + token.map[0] + 1
            kind = token.type
            if kind == "heading_open" and i + 1 < len(tokens):
                self.page.headings.append(Heading(int(token.tag[1]), token, tokens[i + 1], top))
            elif kind == "cp_directive":
                self.directive(token.meta["call"])
            elif kind == "math_block":
                convert_token(token, self.page.file, line)
            elif kind == "inline" and token.children:
                self.inline(token.children, line, words=words, source=token.content)

    def directive(self, call: Any) -> None:
        page = self.page
        directive = page.registry.directives[call.name]
        planning = self.ctx is not None
        if call.label and planning:
            first = page.labels.get(call.label)
            if first is not None:
                raise UserError(
                    f"duplicate label '{call.label}'",
                    file=call.file,
                    line=call.option_line("name"),
                    hint=f"first used at line {first.option_line('name')}",
                )
            page.labels[call.label] = call
        if (
            directive.numbered
            and (call.label or call.body.strip())
            and "_figure_number" not in call.data
        ):
            self.figures += 1
            call.data["_figure_number"] = self.figures
            if call.label:
                page.label_numbers[call.label] = self.figures
        if self.ctx is not None:  # planning
            try:
                directive.plan(call, self.ctx)
            except UserError as exc:
                raise exc.located(call.file, call.line) from None
        self.block(
            call.data.get("_body_tokens", []),
            call.data.get("_body_offset", 0),
            top=False,
            words=True,
        )

    # -- inline --------------------------------------------------------------------------------

    def inline(
        self, children: Sequence[Token], line: int, *, words: bool, source: str | None = None
    ) -> None:
        for child in children:
            kind = child.type
            if kind in ("softbreak", "hardbreak"):
                line += 1
            elif kind == "text":
                if words:
                    self.words.append(child.content)
                if "[^" in child.content:
                    self.undefined_footnote(child.content, line, source)
            elif kind == "myst_role":
                self.role(child, line)
            elif kind == "footnote_ref":
                self.footnote_ref(child, line)
            elif kind in ("math_inline", "math_inline_double"):
                convert_token(child, self.page.file, line)
                line += child.content.count("\n")
            elif kind in ("code_inline", "html_inline"):
                line += child.content.count("\n")
            elif kind == "image" and self.ctx is not None:
                self.image(child, line)

    def image(self, token: Token, line: int) -> None:
        """`![x](/static/a.png)`: a root-relative path names a file of the site folder, which
        the page must link under the site's base path (a project site lives at /NAME/). Only
        files of static/ are published at their own path; other images stay as written."""
        src = token.attrGet("src")
        if not isinstance(src, str) or not src.startswith("/") or src.startswith("//"):
            return
        path = src.split("#", 1)[0].split("?", 1)[0]
        rel = path.lstrip("/")
        if not rel.startswith("static/") or ".." in rel.split("/"):
            return
        root = self.ctx.site_root if self.ctx is not None else None
        if root is None or not is_file(root / rel):
            return  # a broken image: `check` and `publish` name it (publish/linkcheck.py)
        site_file(root, root / rel, used=f"{self.page.file}:{line}")
        token.meta["cp_site_path"] = rel + src[len(path) :]

    def undefined_footnote(self, text: str, line: int, source: str | None) -> None:
        """`[^label]` left as text means the label has no definition: a typo the reader would see
        verbatim. An escaped `\\[^label]` in the source is the author asking for the literal
        text."""
        for match in _FOOTNOTE_LIKE.finditer(text):
            label = match.group(1)
            # Written some other way than a plain `[^label]` (an escape, an entity): literal text.
            plain = re.compile(r"(?<!\\)\[\^" + re.escape(label) + r"\]")
            if source is not None and not plain.search(source):
                continue
            known = sorted(self.page.footnote_defs)
            close = difflib.get_close_matches(label, known, n=1)
            literal = f"write \\[^{label}] for the literal text"
            hint = (
                f"did you mean [^{close[0]}]? or {literal}"
                if close
                else f"define it on its own line ([^{label}]: text), or {literal}"
            )
            raise UserError(
                f"footnote [^{label}] is not defined", file=self.page.file, line=line, hint=hint
            )

    def role(self, token: Token, line: int) -> None:
        name = token.meta["name"]
        token.meta["line"] = line
        if name == "cite":
            self.cite(token, line)
            return
        if name == "numref":
            match = _NUMREF.match(token.content)
            label = (match.group("label") if match else token.content).strip()
            text = match.group("text").strip() if match else None
            self.numrefs.append((token, label, text or None, line))
            return
        role = self.page.registry.roles.get(name)
        if role is None:
            raise UserError(
                f"unknown role '{{{name}}}'",
                file=self.page.file,
                line=line,
                hint=choices_hint(name, list(self.page.registry.roles) + list(BUILTIN_ROLES)),
            )
        data = token.meta.setdefault("data", {})
        token.meta["planned"] = self.ctx is not None
        if self.ctx is not None:
            try:
                role.plan(token.content, self.page.file, line, data, self.ctx)
            except UserError as exc:
                raise exc.located(self.page.file, line) from None

    def cite(self, token: Token, line: int) -> None:
        keys = list(dict.fromkeys(k.strip() for k in token.content.split(",") if k.strip()))
        if not keys:
            raise UserError(
                "empty citation", file=self.page.file, line=line, hint="write {cite}`key1,key2`"
            )
        bib = self.page.bibliography
        for key in keys:
            if key not in bib:
                hint = (
                    choices_hint(key, bib)
                    if bib
                    else "add references.bib to the site, or list .bib files under 'bibliography:'"
                )
                raise UserError(
                    f"unknown citation key '{key}'", file=self.page.file, line=line, hint=hint
                )
            self.page.cites.setdefault(key, len(self.page.cites) + 1)
        token.meta["keys"] = keys

    def footnote_ref(self, token: Token, line: int) -> None:
        page = self.page
        ident = token.meta["id"]
        number = page.footnote_numbers.get(ident)
        if number is None:
            number = len(page.footnote_numbers) + 1
            page.footnote_numbers[ident] = number
            label = token.meta.get("label")
            if label is not None:
                self.pending.append((number, page.footnote_defs.get(label)))
            else:
                data = self.env.get("footnotes", {}).get("list", {}).get(ident, {})
                self.pending.append((number, (data.get("tokens", []), line)))
        refs = page.footnote_refs.setdefault(number, [])
        ref_id = f"fnref-{number}" if not refs else f"fnref-{number}-{len(refs) + 1}"
        refs.append(ref_id)
        token.meta["cp_number"] = number
        token.meta["cp_ref_id"] = ref_id

    def footnote_content(self, number: int, content: Any) -> None:
        if content is None:
            self.page.footnote_content[number] = ("block", [], 0)
        elif isinstance(content, tuple):  # inline ^[…]: (children, line of the reference)
            children, line = content
            self.page.footnote_content[number] = ("inline", children, line)
            self.inline(children, line, words=False)
        else:
            self.page.footnote_content[number] = ("block", content.tokens, content.offset)
            self.block(content.tokens, content.offset, top=False, words=False)

    # -- after the walk ------------------------------------------------------------------------

    def resolve_numrefs(self) -> None:
        page = self.page
        for token, label, text, line in self.numrefs:
            if label not in page.labels:
                raise UserError(
                    f"unknown label '{label}' in {{numref}}",
                    file=page.file,
                    line=line,
                    hint=choices_hint(label, page.labels)
                    if page.labels
                    else "label a figure with :name: LABEL",
                )
            number = page.label_numbers.get(label)
            template = text or "Figure %s"
            wants_number = "%s" in template or "{number}" in template
            if wants_number and number is None:
                raise UserError(
                    f"label '{label}' is not a numbered figure",
                    file=page.file,
                    line=line,
                    hint="give the link its own text: {numref}`the note <" + label + ">`",
                )
            shown = template.replace("%s", str(number)).replace("{number}", str(number))
            token.meta["cp_label"] = label
            token.meta["cp_text"] = shown
        self.numrefs.clear()

    def assign_heading_ids(self) -> None:
        page = self.page
        used = set(page.labels)
        used.update(f"fn-{n}" for n in page.footnote_refs)
        used.update(r for refs in page.footnote_refs.values() for r in refs)
        used.update(f"ref-{k}" for k in page.cites)
        explicit = [h for h in page.headings if h.open.attrGet("id")]
        used.update(str(h.open.attrGet("id")) for h in explicit)
        for heading in page.headings:
            if heading.open.attrGet("id"):
                continue
            title = "".join(
                c.content
                for c in heading.inline.children or []
                if c.type in ("text", "code_inline")
            )
            base = slugify(title.strip()).strip("-") or "section"
            slug, n = base, 1
            while slug in used:
                slug = f"{base}-{n}"
                n += 1
            used.add(slug)
            heading.open.attrSet("id", slug)
