"""Discover the site's articles and read them: every mistake is a located error."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from circuitpress.build.contexts import PageState
from circuitpress.errors import CONTROL_HINT, UserError, control_character
from circuitpress.paths import site_file, walk_site_files
from circuitpress.urls import bad_slug_character


def page_sources(root: Path) -> list[Path]:
    """`content/**/*.md`, skipping hidden and underscore folders and files.

    Linked files and folders are followed; one that leads out of the site folder is an error
    (its page would publish a file from outside the site)."""
    content = root / "content"
    if not content.is_dir():
        raise UserError(
            "no content/ folder in the site",
            file="content",
            line=1,
            hint="put articles in content/*.md (circuitpress new makes one)",
        )
    pages = []
    for path, inside in walk_site_files(root, content, skip=(".", "_")):
        if inside:  # a plain file of a folder inside the site: site_file would only agree
            if path.name.endswith(".md"):
                pages.append(path)
            continue
        if path.is_dir():  # a linked folder that leads out of the site: site_file names it
            site_file(root, path)
        if path.name.endswith(".md"):
            site_file(root, path)
            pages.append(path)
    return sorted(pages)


def read_source(path: Path, file: str, raw: bytes | None = None) -> tuple[bytes, str]:
    """The page's bytes (`raw` where they were read already) and text; not UTF-8 or a control
    character is a located error."""
    if raw is None:
        raw = path.read_bytes()
    try:
        source = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError("file is not UTF-8 text", file=file, line=1, hint=str(exc.reason)) from None
    check_text(source, file)
    return raw, source


def check_text(source: str, file: str) -> None:
    """An invisible control character would make the page invalid HTML: name its line."""
    bad = control_character(source)
    if bad is not None:
        raise UserError(
            f"control character U+{ord(bad.group()):04X} in the text",
            file=file,
            line=source.count("\n", 0, bad.start()) + 1,
            hint=CONTROL_HINT,
        )


def check_unique_slugs(states: Iterable[PageState]) -> None:
    """Two files that would be written to the same URL (`a.md` and `a/index.md`)."""
    slugs: dict[str, str] = {}
    for s in states:
        if s.slug in slugs:
            raise UserError(
                f"two articles have the slug '{s.slug}'",
                file=s.page.file,
                line=1,
                hint=f"also {slugs[s.slug]}",
            )
        slugs[s.slug] = s.page.file


PAGE_NAME_HINT = "use letters, digits, '-', '_' and '.' in the names of pages and their folders"


def check_page_name(file: str) -> None:
    """A page's file name is its URL: a '#', '?', '%', space or newline in it would break every
    link to the page, the sitemap and the feed, so such a name is refused."""
    name = file.removeprefix("content/").removesuffix(".md")
    bad = bad_slug_character(name)
    if bad is None:
        return
    shown = (
        "a space"
        if bad == " "
        else f"'{bad}'"
        if bad.isprintable() and not bad.isspace()
        else f"character U+{ord(bad):04X}"
    )
    raise UserError(
        f"the file name holds {shown}, which cannot be part of the page's URL",
        # Never a raw control character in the terminal: the name is shown with '?' for them.
        file="".join(ch if ch.isprintable() else "?" for ch in file),
        line=1,
        hint=PAGE_NAME_HINT,
    )
