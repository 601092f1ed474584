"""YAML front matter into a typed `FrontMatter`, every error located at the key's own line.

The YAML is composed into nodes first (not loaded straight to Python) so that each key keeps
its position: a wrong type or an unknown key is reported at the line the author has to edit.
"""

from __future__ import annotations

import datetime
import difflib
import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore

from circuitpress.config import Affiliation, Author
from circuitpress.errors import CONTROL_HINT, BuildWarning, UserError, control_character
from circuitpress.markup.authors import Positions, normal_key, parse_page_authors
from circuitpress.markup.state import page_env
from circuitpress.urls import LINK_HINT, is_safe_link

# The C loader is ~10x faster; fall back to the pure-Python one where libyaml is missing.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

KNOWN_KEYS = (
    "title",
    "description",
    "authors",
    "affiliations",
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
    "keywords",
    "tags",
)
# Accepted keys kept in `FrontMatter.extra`: image (Open Graph image, site-relative), toc (false
# hides the table of contents), citation (false hides the box), options (MyST's mapping for
# templates: a theme's own settings, never warned about).
EXTRA_KEYS = ("image", "toc", "citation", "options")
# Other tools' names for a key: read as the key itself (MyST, Quarto, Hugo/Jekyll's `date`).
ALIASES = {
    "author": "authors",
    "date": "published",
    "date_modified": "updated",
    "order": "series_order",
}
# Names other tools use for something circuitpress calls otherwise: only a hint, since their
# meaning differs (an abstract is longer than a description; categories are not tags).
SYNONYMS = {
    "abstract": "description",
    "summary": "description",
    "subtitle": "description",
    "excerpt": "description",
    "thumbnail": "image",
    "banner": "image",
    "cover": "image",
    "lastmod": "updated",
    "modified": "updated",
    "last_modified": "updated",
    "categories": "tags",
    "category": "tags",
    "references": "bibliography",
    "bib": "bibliography",
    "weight": "order",
    "part": "order",
    "name": "title",
}
THEME_KEY_HINT = "a theme's own settings go under 'options:', which is never warned about"


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
    keywords: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    # Every affiliation of the page's authors in order of appearance (MyST's and Quarto's
    # `affiliations:` table first).
    affiliations: tuple[Affiliation, ...] = ()
    # Not errors, reported by the build (and fatal under --strict): unknown keys, a date in
    # the future. Kept on the page so that a page parsed once still reports them.
    warnings: tuple[BuildWarning, ...] = field(default=(), compare=False, repr=False)
    # key -> the name the author wrote it under (`date` for `published`), where they differ
    names: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def line_of(self, key: str) -> int:
        """Source line of a key (1 when absent), for errors found later (a missing .bib)."""
        return self.lines.get(key, 1)

    def written(self, key: str) -> str:
        """A key as the author wrote it (`order` for `series_order`), for messages."""
        return self.names.get(key, key)


class _Keys:
    """Typed access to the front matter mapping; errors name the key as written and its line."""

    def __init__(
        self,
        file: str,
        first_line: int,
        values: dict[str, Any],
        lines: dict[str, int],
        names: dict[str, str] | None = None,
    ):
        self.file, self.first_line, self.values, self.lines = file, first_line, values, lines
        self.names = names or {}
        self.warnings: list[BuildWarning] = []

    def shown(self, key: str) -> str:
        """The key as the author wrote it: `date`, not `published`."""
        return self.names.get(key, key)

    def error(self, key: str, message: str, hint: str | None = None) -> UserError:
        return UserError(
            message, file=self.file, line=self.lines.get(key, self.first_line), hint=hint
        )

    def warn(self, key: str, message: str, hint: str | None = None) -> None:
        self.warnings.append(
            BuildWarning(
                message, file=self.file, line=self.lines.get(key, self.first_line), hint=hint
            )
        )

    def text(self, key: str) -> str | None:
        value = self.values.get(key)
        if value is None:
            return None
        # YAML turns `doi: 10.1` into a float and `series: 2020` into an int; authors mean text.
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            raise self.error(
                key, f"front matter '{self.shown(key)}' must be text", f"got {_kind(value)}"
            )
        self.check_control(key, value)
        return value.strip()

    def flag(self, key: str) -> bool:
        value = self.values.get(key, False)
        if not isinstance(value, bool):
            raise self.error(
                key, f"front matter '{self.shown(key)}' must be true or false", f"got {value!r}"
            )
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
            day = _date_text(value.strip())
            if day is not None:
                return day
        raise self.error(
            key,
            f"front matter '{self.shown(key)}' is not a date",
            f"write YYYY-MM-DD, got {value!r}",
        )

    def whole(self, key: str) -> int | None:
        value = self.values.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(
                key, f"front matter '{self.shown(key)}' must be a whole number", f"got {value!r}"
            )
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.values.get(key)
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(
                key, f"front matter '{self.shown(key)}' must be a list of text", f"got {value!r}"
            )
        for item in value:
            self.check_control(key, item)
        return tuple(value)

    def check_control(self, key: str, value: str) -> None:
        bad = control_character(value)
        if bad is not None:  # a YAML escape such as "\b" in double quotes
            raise self.error(
                key,
                f"front matter '{self.shown(key)}' holds control character"
                f" U+{ord(bad.group()):04X}",
                CONTROL_HINT,
            )


# MyST's other date forms: `01 Jan 2000`, `Sat, 1 Jan 2000` (RFC 2822 without a time).
_DATE_FORMATS = ("%d %b %Y", "%a, %d %b %Y", "%d %B %Y", "%A, %d %B %Y")


def _date_text(text: str) -> datetime.date | None:
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        pass
    for form in _DATE_FORMATS:
        try:
            return datetime.datetime.strptime(text, form).date()
        except ValueError:
            continue
    return None


def _kind(value: Any) -> str:
    kinds: dict[type, str] = {dict: "a mapping", list: "a list"}
    return kinds.get(type(value), type(value).__name__)


def key_hint(key: str) -> str:
    """A real 'did you mean': a known key or alias close in spelling, another tool's name for
    a key, or else where a theme's own keys belong."""
    word = normal_key(key).lower()
    if word in SYNONYMS:
        return f"did you mean '{SYNONYMS[word]}'?"
    names = KNOWN_KEYS + EXTRA_KEYS + tuple(ALIASES)
    # 0.75, not difflib's 0.6: 'order' is 0.6 from 'model', which is no near miss.
    near = difflib.get_close_matches(word, names, n=3, cutoff=0.75)
    # 'autors' is close to both 'authors' and its alias 'author': one key, named once.
    shown = list({ALIASES.get(n, n): n for n in reversed(near)}.values())[::-1][:2]
    if shown:
        return "did you mean " + " or ".join(f"'{n}'" for n in shown) + "?"
    return THEME_KEY_HINT


def _canonical(
    values: dict[str, Any], lines: dict[str, int], positions: Positions, file: str
) -> tuple[dict[str, Any], dict[str, int], Positions, dict[str, str]]:
    """Keys under their circuitpress names: `date` is `published`, `series-order` is
    `series_order`. Two spellings of one key are an error at the second."""
    out: dict[str, Any] = {}
    out_lines: dict[str, int] = {}
    names: dict[str, str] = {}
    out_positions: Positions = {}
    for raw, value in values.items():
        key = normal_key(raw)
        key = ALIASES.get(key, key)
        if key not in KNOWN_KEYS and key not in EXTRA_KEYS:
            key = raw  # kept as written, for themes
        if key in out:
            raise UserError(
                f"front matter has both '{names[key]}' and '{raw}'",
                file=file,
                line=lines[raw],
                hint=f"they are the same key; keep one (line {out_lines[key]})",
            )
        out[key], out_lines[key], names[key] = value, lines[raw], raw
    for path, line in positions.items():
        raw = path[0]
        key = ALIASES.get(normal_key(raw), normal_key(raw))
        out_positions[(key if key in out else raw, *path[1:])] = line
    return out, out_lines, out_positions, names


def parse_front_matter(
    text: str, file: str, first_line: int, today: datetime.date | None = None
) -> FrontMatter:
    """Parse the YAML between the `---` fences. `first_line` is the 1-based line of the YAML;
    `today` (for tests) decides which dates lie in the future."""
    raw_values, raw_lines, raw_positions = _load(text, file, first_line)
    values, lines, positions, names = _canonical(raw_values, raw_lines, raw_positions, file)
    keys = _Keys(file, first_line - 1, values, lines, names)
    title = keys.text("title")
    if not title:
        raise keys.error(
            "title", "the front matter has no 'title'", "add a line: title: My article"
        )
    authors, affiliations = parse_page_authors(
        values, file, positions, first_line - 1, keys.warnings.append
    )
    published, updated = keys.date("published"), keys.date("updated")
    _check_dates(keys, published, updated, today or datetime.date.today())
    extra = _extra(keys)
    for key in values:
        if key not in KNOWN_KEYS and key not in EXTRA_KEYS:
            extra[key] = values[key]
            keys.warn(
                key,
                f"front matter key '{key}' is not used by circuitpress"
                f" (kept for themes as page.extra['{key}'])",
                key_hint(key),
            )
    warnings = sorted(keys.warnings, key=lambda w: w.line or 0)
    return FrontMatter(
        title=title,
        description=keys.text("description"),
        authors=authors,
        published=published,
        updated=updated,
        doi=_doi(keys),
        series=keys.text("series"),
        series_order=keys.whole("series_order"),
        bibliography=keys.strings("bibliography"),
        model=keys.text("model"),
        draft=keys.flag("draft"),
        updates=_updates(keys),
        license=keys.text("license"),
        extra=extra,
        lines=lines,
        keywords=keys.strings("keywords"),
        tags=keys.strings("tags"),
        affiliations=affiliations,
        warnings=tuple(warnings),
        names={k: v for k, v in names.items() if k != v},
    )


def _check_dates(
    keys: _Keys,
    published: datetime.date | None,
    updated: datetime.date | None,
    today: datetime.date,
) -> None:
    """A date in the future is most often a typo (2062 for 2026), sometimes a page meant for
    later. circuitpress publishes what it builds, so it shows the date as written and says so,
    at the line to edit; `--strict` makes it an error. (Hugo and Jekyll instead leave such a
    page out unless asked: a page that silently disappears is harder to notice.)"""
    for key, day in (("published", published), ("updated", updated)):
        if day is not None and day > today:
            keys.warn(
                key,
                f"front matter '{keys.shown(key)}' {day.isoformat()} is in the future"
                f" (today is {today.isoformat()}); the page shows it as written",
                "fix the date, or mark the page draft: true until then",
            )
    if published is not None and updated is not None and updated < published:
        raise keys.error(
            "updated",
            f"front matter 'updated' {updated.isoformat()} is before"
            f" '{keys.shown('published')}' {published.isoformat()}",
            "an article is updated after it is published",
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


def _load(
    text: str, file: str, first_line: int
) -> tuple[dict[str, Any], dict[str, int], Positions]:
    """YAML -> (values, line of each key, line of each nested key and list item), keeping key
    positions from the node tree."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return {}, {}, {}
        if not isinstance(node, yaml.MappingNode):
            raise UserError(
                "front matter must be 'key: value' lines",
                file=file,
                line=first_line + node.start_mark.line,
                hint="e.g. title: My article",
            )
        values: dict[str, Any] = {}
        lines: dict[str, int] = {}
        positions: Positions = {}
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
            _positions(value_node, (key,), first_line, positions)
        return values, lines, positions
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


def _positions(node: yaml.Node, path: tuple[Any, ...], first_line: int, out: Positions) -> None:
    """The line of every nested key and list item: an author's bad key is reported at its own
    line, not at `authors:`."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                sub = (*path, str(key_node.value))
                out[sub] = first_line + key_node.start_mark.line
                _positions(value_node, sub, first_line, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out[(*path, i)] = first_line + item.start_mark.line
            _positions(item, (*path, i), first_line, out)


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
        extra["tags"] = keys.strings("tags")  # also `FrontMatter.tags`; kept for older themes
    if "options" in keys.values:
        options = keys.values["options"]
        if not isinstance(options, dict):
            raise keys.error(
                "options", "front matter 'options' must be a mapping", "e.g. options: {wide: true}"
            )
        extra["options"] = options
    if "image" in keys.values:
        image = keys.text("image")
        if image and not is_safe_link(image):
            raise keys.error(
                "image", f"front matter 'image' '{image}' is not a web link or site path", LINK_HINT
            )
        extra["image"] = image
    if "toc" in keys.values:
        extra["toc"] = keys.flag("toc")
    if isinstance(keys.values.get("citation"), dict):
        # Quarto's `citation:` mapping (container-title, volume, ...) asks for a citation box,
        # which circuitpress always shows, made from title, authors, published and doi.
        extra["citation"] = keys.values["citation"]
        keys.warn(
            "citation",
            "front matter 'citation' fields are not used by circuitpress (kept for themes)",
            "the citation box is made from title, authors, published and doi",
        )
    elif "citation" in keys.values:
        extra["citation"] = keys.flag("citation")
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
