"""URL collisions: two sources of one output file (a page, a static file, the build itself),
found before anything is written and reported naming both."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from circuitpress.build.contexts import PageState
from circuitpress.errors import UserError

# What the build itself writes at the top of the site, whatever the pages are.
GENERATED = ("404.html", "sitemap.xml", "feed.xml")


@dataclass(frozen=True)
class Output:
    """Who puts a file into the site: a page, a static file, or the build itself."""

    kind: str  # "page", "static" or "generated"
    source: str  # content/a.md, static/x.png, or what is generated ("the generated feed.xml")
    url: str = ""  # a page's site path ('a/b/')

    @property
    def rank(self) -> int:
        """Which side of a collision the error is located at: the author's file, a page first."""
        return ("page", "static", "generated").index(self.kind)

    def subject(self) -> str:
        if self.kind == "page":
            return f"the page's URL {self.url or '/'}"
        return self.named()

    def named(self) -> str:
        if self.kind == "page":
            return f"the page {self.source} (URL {self.url or '/'})"
        if self.kind == "static":
            return f"the static file {self.source}"
        return self.source


def check_collisions(claims: Iterable[tuple[str, Output]]) -> None:
    """Two sources of one output file, or a file where another source needs a folder
    (`content/feed.xml.md` is `feed.xml/index.html`, beside the generated `feed.xml`).

    Without this check one of them silently replaces the other, or writing the site fails."""
    owners: dict[str, Output] = {}
    for path, owner in claims:
        prior = owners.setdefault(path, owner)
        if prior != owner:
            raise _collision(prior, owner)
    for path in sorted(owners):
        parts = path.split("/")
        for i in range(1, len(parts)):
            folder = owners.get("/".join(parts[:i]))
            if folder is not None:
                raise _collision(folder, owners[path])


def _collision(first: Output, second: Output) -> UserError:
    located, other = (second, first) if second.rank <= first.rank else (first, second)
    file = located.source if located.kind != "generated" else None
    hint = "rename the file" if other.kind == "generated" else "rename one of them"
    return UserError(
        f"{located.subject()} collides with {other.named()}",
        file=file,
        line=1 if file else None,
        hint=hint,
    )


def generated(name: str) -> Output:
    if name == "index.html":
        return Output("generated", "the generated index.html (the list of articles)")
    return Output("generated", f"the generated {name}")


def page_claim(s: PageState) -> tuple[str, Output]:
    return f"{s.url_path}index.html", Output("page", s.page.file, s.url_path)


def unit_claim(path: str) -> tuple[str, Output]:
    return f"{path}index.html", Output("generated", f"the unit page {path}")
