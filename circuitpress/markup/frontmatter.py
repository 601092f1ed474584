"""YAML front matter into a typed `FrontMatter`, every error located at the key's own line.

The YAML is composed into nodes first (not loaded straight to Python) so that each key keeps
its position: a wrong type or an unknown key is reported at the line the author has to edit.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore

from circuitpress.config import Author, parse_authors
from circuitpress.errors import CONTROL_HINT, UserError, choices_hint, control_character
from circuitpress.markup.state import page_env
from circuitpress.urls import LINK_HINT, is_safe_link

# The C loader is ~10x faster; fall back to the pure-Python one where libyaml is missing.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

KNOWN_KEYS = (
    "title",
    "description",
    "authors",
    "published",
    "updated",
    "doi",
    "series",
    "series_order",
    "bibliography",
    "model",
    "draft",
    "updates",
    "license",
)
# Accepted keys kept in `FrontMatter.extra`: tags (list of words), image (Open Graph image,
# site-relative), toc (false hides the table of contents), citation (false hides the box).
EXTRA_KEYS = ("tags", "image", "toc", "citation")


@dataclass(frozen=True)
class FrontMatter:
    title: str
    description: str | None = None
    authors: tuple[Author, ...] = ()
    published: datetime.date | None = None
    updated: datetime.date | None = None
    doi: str | None = None
    series: str | None = None
    series_order: int | None = None
    bibliography: tuple[str, ...] = ()
    model: str | None = None
    draft: bool = False
    updates: tuple[tuple[datetime.date, str], ...] = ()
    license: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def line_of(self, key: str) -> int:
        """Source line of a key (1 when absent), for errors found later (a missing .bib)."""
        return self.lines.get(key, 1)


class _Keys:
    """Typed access to the front matter mapping; errors name the key and its line."""

    def __init__(self, file: str, first_line: int, values: dict[str, Any], lines: dict[str, int]):
        self.file, self.first_line, self.values, self.lines = file, first_line, values, lines

    def error(self, key: str, message: str, hint: str | None = None) -> UserError:
        return UserError(
            message, file=self.file, line=self.lines.get(key, self.first_line), hint=hint
        )

    def text(self, key: str) -> str | None:
        value = self.values.get(key)
        if value is None:
            return None
        # YAML turns `doi: 10.1` into a float and `series: 2020` into an int; authors mean text.
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            raise self.error(key, f"front matter '{key}' must be text", f"got {_kind(value)}")
        self.check_control(key, value)
        return value.strip()

    def flag(self, key: str) -> bool:
        value = self.values.get(key, False)
        if not isinstance(value, bool):
            raise self.error(key, f"front matter '{key}' must be true or false", f"got {value!r}")
        return value

    def date(self, key: str, value: Any = None) -> datetime.date | None:
        value = self.values.get(key) if value is None else value
        if value is None:
            return None
        if isinstance(value, datetime.datetime):
            return value.date()
        if isinstance(value, datetime.date):
            return value
        if isinstance(value, str):
            try:
                return datetime.date.fromisoformat(value.strip())
            except ValueError:
                pass
        raise self.error(
            key, f"front matter '{key}' is not a date", f"write YYYY-MM-DD, got {value!r}"
        )

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.values.get(key)
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(key, f"front matter '{key}' must be a list of text", f"got {value!r}")
        for item in value:
            self.check_control(key, item)
        return tuple(value)

    def check_control(self, key: str, value: str) -> None:
        bad = control_character(value)
        if bad is not None:  # a YAML escape such as "\b" in double quotes
            raise self.error(
                key,
                f"front matter '{key}' holds control character U+{ord(bad.group()):04X}",
                CONTROL_HINT,
            )


def _kind(value: Any) -> str:
    kinds: dict[type, str] = {dict: "a mapping", list: "a list"}
    return kinds.get(type(value), type(value).__name__)


def parse_front_matter(text: str, file: str, first_line: int) -> FrontMatter:
    """Parse the YAML between the `---` fences. `first_line` is the 1-based line of the YAML."""
    values, lines = _load(text, file, first_line)
    for key in values:
        if key not in KNOWN_KEYS and key not in EXTRA_KEYS:
            raise UserError(
                f"unknown front matter key '{key}'",
                file=file,
                line=lines[key],
                hint=choices_hint(key, KNOWN_KEYS + EXTRA_KEYS),
            )
    keys = _Keys(file, first_line - 1, values, lines)
    title = keys.text("title")
    if not title:
        raise keys.error(
            "title", "the front matter has no 'title'", "add a line: title: My article"
        )

    def author_error(message: str, hint: str | None) -> UserError:
        hint = (
            hint.replace('authors = ["Ada Lovelace"]', "authors: [Ada Lovelace]") if hint else hint
        )
        return keys.error("authors", f"front matter {message[0].lower()}{message[1:]}", hint)

    authors = parse_authors(values.get("authors", []), author_error)
    for author in authors:
        for what, url in (("url", author.url), ("affiliation_url", author.affiliation_url)):
            if url is not None and not is_safe_link(url):
                raise keys.error(
                    "authors", f"front matter author {what} '{url}' is not a web link", LINK_HINT
                )
    order = values.get("series_order")
    if order is not None and (isinstance(order, bool) or not isinstance(order, int)):
        raise keys.error(
            "series_order", "front matter 'series_order' must be a whole number", f"got {order!r}"
        )
    return FrontMatter(
        title=title,
        description=keys.text("description"),
        authors=tuple(authors),
        published=keys.date("published"),
        updated=keys.date("updated"),
        doi=_doi(keys),
        series=keys.text("series"),
        series_order=order,
        bibliography=keys.strings("bibliography"),
        model=keys.text("model"),
        draft=keys.flag("draft"),
        updates=_updates(keys),
        license=keys.text("license"),
        extra=_extra(keys),
        lines=lines,
    )


# A DOI is "10.<registrant>/<suffix>"; the suffix may hold nearly anything printable, but not
# spaces, and braces would unbalance the BibTeX the citation box shows.
_DOI = re.compile(r"10\.\d{4,9}/[^\s{}]+")
_DOI_PREFIX = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:\s*)", re.IGNORECASE)


def _doi(keys: _Keys) -> str | None:
    """The DOI without any `https://doi.org/` or `doi:` prefix the author pasted with it."""
    value = keys.text("doi")
    if value is None:
        return None
    doi = _DOI_PREFIX.sub("", value)
    if not _DOI.fullmatch(doi):
        raise keys.error(
            "doi", f"front matter 'doi' {value!r} is not a DOI", "write it as 10.NNNN/suffix"
        )
    return doi


def _load(text: str, file: str, first_line: int) -> tuple[dict[str, Any], dict[str, int]]:
    """YAML -> (values, line of each key), keeping key positions from the node tree."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return {}, {}
        if not isinstance(node, yaml.MappingNode):
            raise UserError(
                "front matter must be 'key: value' lines",
                file=file,
                line=first_line + node.start_mark.line,
                hint="e.g. title: My article",
            )
        values: dict[str, Any] = {}
        lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(loader.construct_object(key_node, deep=True))
            line = first_line + key_node.start_mark.line
            if key in values:
                raise UserError(f"front matter key '{key}' appears twice", file=file, line=line)
            lines[key] = line
            try:
                values[key] = loader.construct_object(value_node, deep=True)
            except ValueError as exc:  # e.g. `published: 2020-13-45` matches the date pattern
                raise UserError(
                    f"front matter '{key}' has a bad value: {exc}", file=file, line=line
                ) from None
        return values, lines
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        # An error "at the end of the input" points past the YAML, onto the closing `---`.
        last = max(0, len(text.rstrip("\n").split("\n")) - 1)
        line = first_line + min(mark.line if mark is not None else 0, last)
        what = (exc.problem or exc.context or "bad syntax").strip()
        raise UserError(
            f"front matter is not valid YAML: {what}",
            file=file,
            line=line,
            hint="write 'key: value' lines; quote values that contain ': '",
        ) from None
    except yaml.YAMLError as exc:
        raise UserError(
            f"front matter is not valid YAML: {exc}", file=file, line=first_line
        ) from None
    finally:
        loader.dispose()


def _updates(keys: _Keys) -> tuple[tuple[datetime.date, str], ...]:
    """`updates:` as a list of {date, text} or a mapping date -> text; oldest first."""
    value = keys.values.get("updates")
    if value is None:
        return ()
    items: list[tuple[Any, Any]]
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list) and all(
        isinstance(v, dict) and set(v) == {"date", "text"} for v in value
    ):
        items = [(v["date"], v["text"]) for v in value]
    else:
        raise keys.error(
            "updates",
            "front matter 'updates' must be a list of {date, text}",
            "e.g. - {date: 2024-05-01, text: Fixed a typo in Figure 2}",
        )
    out = []
    for when, what in items:
        if not isinstance(what, str):
            raise keys.error("updates", "each update needs a text", f"got {what!r}")
        keys.check_control("updates", what)
        day = keys.date("updates", when if when is not None else "")
        if day is not None:
            out.append((day, what.strip()))
    return tuple(sorted(out, key=lambda u: u[0]))


def _extra(keys: _Keys) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if "tags" in keys.values:
        extra["tags"] = keys.strings("tags")
    if "image" in keys.values:
        image = keys.text("image")
        if image and not is_safe_link(image):
            raise keys.error(
                "image", f"front matter 'image' '{image}' is not a web link or site path", LINK_HINT
            )
        extra["image"] = image
    for key in ("toc", "citation"):
        if key in keys.values:
            extra[key] = keys.flag(key)
    return extra


def front_matter_rule_plugin(md: MarkdownIt) -> None:
    """Parse the `front_matter` token (mdit-py-plugins) right after block parsing.

    Running before the directive rule means a YAML mistake is reported before anything that
    depends on the metadata (a page's default model, its bibliography)."""
    md.core.ruler.after("block", "cp_front_matter", _front_matter_rule)


def _front_matter_rule(state: StateCore) -> None:
    page = page_env(state.env)
    if page is None or page.meta is not None:
        return
    token = state.tokens[0] if state.tokens else None
    if token is None or token.type != "front_matter" or token.map is None:
        if re.match(r"^---[ \t]*(\n|$)", state.src):  # the plugin ignores an unclosed block
            raise UserError(
                "the front matter is never closed",
                file=page.file,
                line=1,
                hint="end it with a line '---'",
            )
        raise UserError(
            "the page has no front matter",
            file=page.file,
            line=1,
            hint="start it with '---', a line 'title: …', and '---'",
        )
    start, end = token.map
    lines = state.src.split("\n")
    closing = lines[end - 1].strip() if 0 < end <= len(lines) else ""
    if end - 1 <= start or not closing.startswith("---"):
        raise UserError(
            "the front matter is never closed",
            file=page.file,
            line=start + 1,
            hint="end it with a line '---'",
        )
    page.meta = parse_front_matter(token.content, page.file, start + 2)
    page.front_matter_end = end
