"""The per-page state that markup's plugins share through markdown-it's `env` (env["cp"]).

markdown-it plugins communicate through `env`; keeping all of circuitpress's page state in one
typed object (instead of a dozen loose keys) makes it clear which rule writes what.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token

    from circuitpress.extensions import DirectiveCall, Registry
    from circuitpress.markup.frontmatter import FrontMatter

ENV_KEY = "cp"


@dataclass
class Heading:
    level: int
    open: "Token"
    inline: "Token"
    top: bool  # outside any directive body: only these go into the table of contents


@dataclass
class FootnoteDef:
    tokens: list["Token"]
    offset: int  # 0-based page line of the source the tokens' maps count from
    line: int  # 1-based line of `[^label]:`


@dataclass
class PageEnv:
    """Everything markup knows about one page, from parse to render."""

    file: str
    registry: "Registry"
    body_md: "MarkdownIt"  # parses directive bodies: the page parser without front matter
    offset: int = 0  # 0-based page line where the source being parsed now starts
    meta: "FrontMatter | None" = None
    front_matter_end: int = 0  # 0-based line after the closing `---`
    calls: list["DirectiveCall"] = field(default_factory=list)
    footnote_defs: dict[str, FootnoteDef] = field(default_factory=dict)
    # filled by the resolver, in document order
    labels: dict[str, "DirectiveCall"] = field(default_factory=dict)
    label_numbers: dict[str, int] = field(default_factory=dict)
    cites: dict[str, int] = field(default_factory=dict)  # key -> number, by first citation
    footnote_numbers: dict[int, int] = field(default_factory=dict)  # plugin id -> number
    footnote_refs: dict[int, list[str]] = field(default_factory=dict)  # number -> ref ids
    footnote_content: dict[int, tuple[str, list["Token"], int]] = field(default_factory=dict)
    headings: list[Heading] = field(default_factory=list)
    word_count: int = 0
    bibliography: dict[str, Any] = field(default_factory=dict)  # key -> BibEntry


def page_env(env: Mapping[str, Any]) -> PageEnv | None:
    value = env.get(ENV_KEY)
    return value if isinstance(value, PageEnv) else None
