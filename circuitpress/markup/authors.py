"""Authors and affiliations in front matter, written the ways MyST and Quarto document them.

    authors:                              # or `author:`; a name, or a list
      - Ada Lovelace                      # a name alone
      - name: Norah Jones                 # or {given, family, literal}
        url: https://norah.example
        orcid: 0000-0002-1825-0097
        email: norah@cmu.example
        corresponding: true
        affiliations:                     # or `affiliation:`; a name, "a; b", or a list of
          - ref: cmu                      #   names, ids, {ref: id} or full mappings
          - name: University of Chicago
            department: Statistics
            url: https://uchicago.example
    affiliations:                         # the page's table of affiliations, referenced by id
      - id: cmu
        name: Carnegie Mellon University

Quarto writes keys with hyphens (`postal-code`, `affiliation-url`), MyST with underscores: both
are read. Keys circuitpress does not show but MyST or Quarto define (roles, city, ror, ...) are
kept for themes (`Author.metadata`, `Affiliation.details`); any other key is kept too, with a
warning that names its line and the nearest known key.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from circuitpress.config import Affiliation, Author
from circuitpress.errors import CONTROL_HINT, BuildWarning, UserError, control_character
from circuitpress.urls import LINK_HINT, is_safe_link

# path inside the front matter ("authors", 0, "name") -> its source line
Positions = dict[tuple[Any, ...], int]

AUTHOR_KEYS = (
    "name",
    "url",
    "email",
    "orcid",
    "corresponding",
    "affiliations",
    "affiliation",
    "affiliation_url",
)
# Defined by MyST or Quarto, not shown by circuitpress: kept in `metadata` without a warning.
AUTHOR_KEPT = (
    "id",
    "roles",
    "role",
    "note",
    "github",
    "twitter",
    "phone",
    "fax",
    "equal_contributor",
    "deceased",
    "attributes",
    "acknowledgements",
    "number",
    "metadata",
)
AFFILIATION_KEYS = ("id", "ref", "name", "institution", "department", "url", "website")
AFFILIATION_KEPT = (
    "group",
    "address",
    "city",
    "region",
    "state",
    "province",
    "country",
    "postal_code",
    "phone",
    "fax",
    "email",
    "ror",
    "isni",
    "ringgold",
    "doi",
    "collaboration",
    "number",
)
AUTHOR_HINT = "an author is a name, or a mapping with name, url, email, orcid, affiliations"
_ORCID = re.compile(r"\d{4}-\d{4}-\d{4}-\d{3}[\dX]")
_ORCID_PREFIX = re.compile(r"^(?:https?://)?(?:www\.)?orcid\.org/", re.IGNORECASE)


def normal_key(key: Any) -> str:
    """Quarto's `postal-code` and MyST's `postal_code` are one key."""
    return str(key).strip().replace("-", "_")


@dataclass
class AuthorParser:
    """Reads `authors`/`author` and `affiliations` of one page; errors raise, unknown keys warn."""

    file: str
    positions: Positions
    default_line: int
    warnings: list[BuildWarning] = field(default_factory=list)
    table: dict[str, Affiliation] = field(default_factory=dict)

    def line(self, path: tuple[Any, ...]) -> int:
        # The innermost part of the path that has a position (a key, or a list item).
        while path:
            if path in self.positions:
                return self.positions[path]
            path = path[:-1]
        return self.default_line

    def error(self, path: tuple[Any, ...], message: str, hint: str | None = None) -> UserError:
        return UserError(f"front matter {message}", file=self.file, line=self.line(path), hint=hint)

    def warn(self, path: tuple[Any, ...], message: str, hint: str | None) -> None:
        self.warnings.append(
            BuildWarning(f"front matter {message}", file=self.file, line=self.line(path), hint=hint)
        )

    # -- values --------------------------------------------------------------------------------

    def text(self, path: tuple[Any, ...], value: Any, what: str) -> str | None:
        if value is None:
            return None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)  # `postal_code: 15213` is text to an author
        if not isinstance(value, str):
            raise self.error(path, f"{what} must be text", f"got {_kind(value)}")
        bad = control_character(value)
        if bad is not None:
            raise self.error(
                path, f"{what} holds control character U+{ord(bad.group()):04X}", CONTROL_HINT
            )
        return value.strip() or None

    def link(self, path: tuple[Any, ...], value: Any, what: str) -> str | None:
        url = self.text(path, value, what)
        if url is not None and url.lower().startswith("www."):
            # Quarto's own example writes `url: www.brown.edu`: a host, not a path of this site.
            url = "https://" + url
        if url is not None and not is_safe_link(url):
            raise self.error(path, f"{what} '{url}' is not a web link", LINK_HINT)
        return url

    def unknown(self, path: tuple[Any, ...], key: str, known: tuple[str, ...], what: str) -> None:
        near = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
        hint = f"did you mean '{near[0]}'?" if near else f"{what} keys: {', '.join(known)}"
        self.warn(path, f"{what} key '{key}' is not used by circuitpress (kept for themes)", hint)

    # -- affiliations --------------------------------------------------------------------------

    def define_affiliations(self, value: Any, path: tuple[Any, ...]) -> tuple[Affiliation, ...]:
        """The top-level `affiliations:` list (MyST, Quarto): each may carry an `id`."""
        items = value if isinstance(value, list) else [value]
        if value is None:
            return ()
        out = []
        for i, item in enumerate(items):
            where = (*path, i) if isinstance(value, list) else path
            if isinstance(item, dict) and "ref" in item:
                raise self.error(
                    where, "'affiliations' defines affiliations: 'ref' belongs in an author's"
                )
            affiliation = self.affiliation(item, where, define=True)
            out.append(affiliation)
        return tuple(out)

    def collect_ids(self, authors: list[Any], path: tuple[Any, ...]) -> None:
        """Inline affiliations with an `id` (Quarto's "inline references") may be referenced by
        any author of the page, before or after the one that defines them."""
        for i, author in enumerate(authors):
            if not isinstance(author, dict):
                continue
            for key in ("affiliations", "affiliation"):
                items = author.get(key)
                for j, item in enumerate(items if isinstance(items, list) else []):
                    if isinstance(item, dict) and "ref" not in item and item.get("id") is not None:
                        self.affiliation(item, (*path, i, key, j), define=True)

    def affiliation(self, item: Any, path: tuple[Any, ...], define: bool = False) -> Affiliation:
        if isinstance(item, (str, int, float)) and not isinstance(item, bool):
            name = self.text(path, item, "affiliation")
            if name is None:
                raise self.error(path, "affiliation is empty", "write its name")
            # MyST: a string that is a known id references that affiliation.
            return self.table.get(name) or Affiliation(name=name)
        if not isinstance(item, dict):
            raise self.error(
                path, "an affiliation must be a name or a mapping", f"got {_kind(item)}"
            )
        values = {normal_key(k): v for k, v in item.items()}
        if "ref" in values:
            ref = self.text((*path, "ref"), values["ref"], "affiliation 'ref'") or ""
            if ref not in self.table:
                near = difflib.get_close_matches(ref, list(self.table), n=1, cutoff=0.6)
                hint = (
                    f"did you mean '{near[0]}'?"
                    if near
                    else "define it under 'affiliations:' with id: " + ref
                )
                raise self.error((*path, "ref"), f"affiliation '{ref}' is not defined", hint)
            return self.table[ref]
        ident = self.text((*path, "id"), values.get("id"), "affiliation 'id'")
        if ident is not None and ident in self.table and not define:
            return self.table[ident]  # defined by collect_ids already
        name = self.text((*path, "name"), values.get("name"), "affiliation 'name'")
        institution = self.text(
            (*path, "institution"), values.get("institution"), "affiliation 'institution'"
        )
        if name is None and institution is None:
            raise self.error(
                path, "an affiliation needs a 'name'", "e.g. - name: University of Chicago"
            )
        department = self.text(
            (*path, "department"), values.get("department"), "affiliation 'department'"
        )
        if name is not None and institution is not None and department is None:
            # MyST: a named group of an institution.
            department, name = name, institution
        details = []
        for key, value in values.items():
            where = (*path, _raw_key(item, key))
            if key in AFFILIATION_KEYS:
                continue
            if key not in AFFILIATION_KEPT:
                self.unknown(where, key, AFFILIATION_KEYS + AFFILIATION_KEPT, "affiliation")
            shown = (
                self.text(where, value, f"affiliation '{key}'")
                if not isinstance(value, bool)
                else str(value).lower()
            )
            if shown is not None:
                key = "region" if key in ("state", "province") else key
                details.append((key, shown))
        url_key = "url" if "url" in values else "website"
        affiliation = Affiliation(
            name=name or institution or "",
            url=self.link((*path, _raw_key(item, url_key)), values.get(url_key), "affiliation url"),
            department=department,
            id=ident,
            details=tuple(details),
        )
        if ident is not None and define:
            if ident in self.table and self.table[ident] != affiliation:
                raise self.error((*path, "id"), f"affiliation id '{ident}' is defined twice")
            self.table[ident] = affiliation
        return affiliation

    def author_affiliations(
        self, values: dict[str, Any], item: dict[Any, Any], path: tuple[Any, ...]
    ) -> tuple[Affiliation, ...]:
        if "affiliations" in values and "affiliation" in values:
            raise self.error(
                path, "author has both 'affiliation' and 'affiliations'", "keep one of them"
            )
        key = "affiliations" if "affiliations" in values else "affiliation"
        value = values.get(key)
        where = (*path, _raw_key(item, key))
        if value is None:
            items: list[Any] = []
        elif isinstance(value, str):
            # MyST: "ubc; stanford" is two affiliations.
            items = [part.strip() for part in value.split(";") if part.strip()]
        elif isinstance(value, list):
            items = value
        else:
            items = [value]
        out = [
            self.affiliation(a, (*where, i) if isinstance(value, list) else where)
            for i, a in enumerate(items)
        ]
        extra_url = self.link(
            (*path, _raw_key(item, "affiliation_url")),
            values.get("affiliation_url"),
            "author affiliation_url",
        )
        if extra_url is not None:
            # Distill's and Quarto's `affiliation-url`: the URL of the (first) affiliation.
            if not out:
                raise self.error(
                    (*path, _raw_key(item, "affiliation_url")),
                    "author has an 'affiliation_url' but no affiliation",
                    "add affiliation: NAME",
                )
            if out[0].url is None:
                first = out[0]
                out[0] = Affiliation(
                    first.name, extra_url, first.department, first.id, first.details
                )
        return tuple(dict.fromkeys(out))  # the same affiliation twice is shown once

    # -- authors -------------------------------------------------------------------------------

    def authors(self, value: Any, path: tuple[Any, ...]) -> tuple[Author, ...]:
        if value is None:
            return ()
        items = value if isinstance(value, list) else [value]
        self.collect_ids(items, path)
        out = []
        for i, item in enumerate(items):
            where = (*path, i) if isinstance(value, list) else path
            out.append(self.author(item, where))
        return tuple(out)

    def author(self, item: Any, path: tuple[Any, ...]) -> Author:
        if isinstance(item, str):
            name = self.text(path, item, "author")
            if name is None:
                raise self.error(path, "author entry is empty", AUTHOR_HINT)
            return Author(name=name)
        if not isinstance(item, dict):
            raise self.error(path, "an author must be a name or a mapping", f"got {_kind(item)}")
        values = {normal_key(k): v for k, v in item.items()}
        name = self.name(values.get("name"), (*path, _raw_key(item, "name")))
        metadata = []
        for key, value in values.items():
            if key in AUTHOR_KEYS:
                continue
            if key not in AUTHOR_KEPT:
                self.unknown((*path, _raw_key(item, key)), key, AUTHOR_KEYS + AUTHOR_KEPT, "author")
            metadata.append((key, value))
        affiliations = self.author_affiliations(values, item, path)
        corresponding = values.get("corresponding", False)
        if not isinstance(corresponding, bool):
            raise self.error(
                (*path, _raw_key(item, "corresponding")),
                "author 'corresponding' must be true or false",
                f"got {corresponding!r}",
            )
        first = affiliations[0] if affiliations else None
        return Author(
            name=name,
            url=self.link((*path, _raw_key(item, "url")), values.get("url"), "author url"),
            affiliation=_shown(first) if first else None,
            affiliation_url=first.url if first else None,
            affiliations=affiliations,
            email=self.email((*path, _raw_key(item, "email")), values.get("email")),
            orcid=self.orcid((*path, _raw_key(item, "orcid")), values.get("orcid")),
            corresponding=corresponding,
            metadata=tuple(metadata),
        )

    def name(self, value: Any, path: tuple[Any, ...]) -> str:
        if isinstance(value, dict):
            # CSL-JSON as MyST and Quarto accept it: {given, family, literal, particles, suffix}.
            parts = {normal_key(k): v for k, v in value.items()}
            literal = self.text(path, parts.get("literal"), "author name 'literal'")
            if literal:
                return literal
            words = [
                self.text(path, parts.get(k), f"author name '{k}'")
                for k in (
                    "given",
                    "dropping_particle",
                    "non_dropping_particle",
                    "family",
                    "surname",
                    "suffix",
                )
            ]
            joined = " ".join(w for w in words if w)
            if joined:
                return joined
        name = self.text(path, value, "author 'name'") if not isinstance(value, dict) else None
        if not name:
            raise self.error(path, "author entry has no 'name'", AUTHOR_HINT)
        return name

    def email(self, path: tuple[Any, ...], value: Any) -> str | None:
        email = self.text(path, value, "author email")
        if email is not None and not re.fullmatch(r"[^\s@<>\"']+@[^\s@<>\"']+", email):
            raise self.error(path, f"author email '{email}' is not an address", "write name@host")
        return email

    def orcid(self, path: tuple[Any, ...], value: Any) -> str | None:
        orcid = self.text(path, value, "author orcid")
        if orcid is None:
            return None
        bare = _ORCID_PREFIX.sub("", orcid)
        if not _ORCID.fullmatch(bare):
            raise self.error(
                path, f"author orcid '{orcid}' is not an ORCID iD", "write 0000-0002-1825-0097"
            )
        return bare


def _shown(affiliation: Affiliation) -> str:
    """'Department, Institution' for configs and themes that read one `affiliation` string."""
    return ", ".join(p for p in (affiliation.department, affiliation.name) if p)


def _raw_key(item: dict[Any, Any], key: str) -> Any:
    """The key as the author wrote it (`postal-code`), which the positions are keyed by."""
    for raw in item:
        if normal_key(raw) == key:
            return str(raw)
    return key


def _kind(value: Any) -> str:
    kinds: dict[type, str] = {dict: "a mapping", list: "a list"}
    return kinds.get(type(value), type(value).__name__)


def parse_page_authors(
    values: dict[str, Any],
    file: str,
    positions: Positions,
    default_line: int,
    warn: Callable[[BuildWarning], None],
) -> tuple[tuple[Author, ...], tuple[Affiliation, ...]]:
    """The page's authors (each with its affiliations resolved) and its `affiliations:` table."""
    parser = AuthorParser(file, positions, default_line)
    table = parser.define_affiliations(values.get("affiliations"), ("affiliations",))
    key = "authors" if "authors" in values else "author"
    authors = parser.authors(values.get(key), (key,))
    for warning in parser.warnings:
        warn(warning)
    # Every affiliation of the page, in order of first appearance (a theme's by-affiliation view).
    seen = dict.fromkeys([*table, *(a for author in authors for a in author.affiliations)])
    return authors, tuple(seen)
