"""URLs an author's files put into the site, through the real CLI: config links that are not web
links, page file names that cannot be URLs, and two sources of one output file are all one
located line and exit 1; what is accepted is percent-encoded in the sitemap and the feed."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from circuitpress.cli import cli
from circuitpress.config import SiteConfig, SiteSettings
from circuitpress.render.feeds import site_url, sitemap_xml

FM = "---\ntitle: T\npublished: 2024-05-06\n---\n"
SITE = '[site]\ntitle = "S"\n'
FACTORY = """\
from collections import OrderedDict

import torch
from torch import nn


def build():
    torch.manual_seed(0)
    return nn.Sequential(OrderedDict(conv1=nn.Conv2d(3, 4, 3, padding=1), relu1=nn.ReLU()))
"""


def write(root: Path, files: dict[str, str]) -> Path:
    base = {"circuitpress.toml": SITE, "content/ok.md": FM + "Fine.\n"}
    for rel, text in {**base, **files}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="")
    return root


def build(root: Path) -> tuple[int, list[str]]:
    result = CliRunner().invoke(cli, ["build", str(root), "--quiet"])
    return result.exit_code, [line for line in result.output.splitlines() if line.strip()]


def fails(root: Path, where: str, *fragments: str) -> str:
    code, lines = build(root)
    assert code == 1, lines
    assert len(lines) == 1, lines
    assert lines[0].startswith(where), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert not (root / "_site").exists()  # nothing was published
    return lines[0]


# --- 1. URL fields of circuitpress.toml --------------------------------------------------------

BAD_CONFIG_URLS = [
    ("base-url-javascript", 'base_url = "javascript://%0aalert(1)"\n', 3, "'base_url'"),
    ("base-url-data", 'base_url = "data:text/html,x"\n', 3, "'base_url'"),
    ("base-url-other-host", 'base_url = "//evil.example/"\n', 3, "'base_url'"),
    ("base-url-backslash", 'base_url = "/\\\\evil.example/"\n', 3, "'base_url'"),
    ("base-url-relative", 'base_url = "notes/"\n', 3, "'base_url'"),
    ("base-url-query", 'base_url = "https://example.org/?x=1"\n', 3, "'base_url'"),
    ("base-url-space", 'base_url = "https://example.org/my notes/"\n', 3, "'base_url'"),
    ("base-url-ftp", 'base_url = "ftp://example.org/"\n', 3, "'base_url'"),
    (
        "repository-javascript",
        'description = "d"\nrepository = "javascript:alert(1)"\n',
        4,
        "'repository'",
    ),
    ("repository-tab-in-scheme", 'repository = "java\\tscript:alert(1)"\n', 3, "'repository'"),
    ("repository-mailto", 'repository = "mailto:a@example.org"\n', 3, "'repository'"),
    (
        "author-url",
        'authors = [\n  {name = "A", url = "https://a.example"},\n'
        '  {name = "B", url = "javascript:alert(1)"},\n]\n',
        5,
        "author url",
    ),
    (
        "author-affiliation-url",
        'authors = [{name = "A", affiliation = "L", affiliation_url = "vbscript:x"}]\n',
        3,
        "author affiliation_url",
    ),
]


@pytest.mark.parametrize(
    "toml,line,fragment", [c[1:] for c in BAD_CONFIG_URLS], ids=[c[0] for c in BAD_CONFIG_URLS]
)
def test_config_urls_that_are_not_web_links_are_refused_at_their_line(
    tmp_path: Path, toml: str, line: int, fragment: str
) -> None:
    root = write(tmp_path, {"circuitpress.toml": SITE + toml})
    message = fails(root, f"circuitpress.toml:{line}:", fragment, "(use an http")
    assert "Traceback" not in message


@pytest.mark.parametrize(
    "base_url,feed_link",
    [
        ("https://example.org/notes/", "https://example.org/notes/ok/"),
        ("https://example.org", "https://example.org/ok/"),
        ("http://localhost:8000/x", "http://localhost:8000/x/ok/"),
        ("/notes/", "/notes/ok/"),
        ("/", "/ok/"),
    ],
)
def test_web_base_urls_are_accepted(tmp_path: Path, base_url: str, feed_link: str) -> None:
    toml = SITE + f'base_url = "{base_url}"\nrepository = "https://github.com/a/b"\n'
    toml += 'authors = [{name = "A", url = "/about/", affiliation_url = "https://l.example"}]\n'
    root = write(tmp_path, {"circuitpress.toml": toml})
    code, lines = build(root)
    assert code == 0, lines
    feed = (root / "_site" / "feed.xml").read_text(encoding="utf-8")
    assert f'href="{feed_link}"' in feed


# --- 2. page file names ------------------------------------------------------------------------

BAD_NAMES = [
    ("hash", "content/a#b.md", "content/a#b.md:1:", "'#'"),
    ("question-mark", "content/q?x.md", "content/q?x.md:1:", "'?'"),
    ("encoded-dots", "content/%2e%2e.md", "content/%2e%2e.md:1:", "'%'"),
    ("encoded-dots-in-folder", "content/%2e%2e/x.md", "content/%2e%2e/x.md:1:", "'%'"),
    ("space", "content/my notes.md", "content/my notes.md:1:", "a space"),
    ("quote", 'content/say"hi".md', 'content/say"hi".md:1:', "'\"'"),
    ("newline", "content/new\nline.md", "content/new?line.md:1:", "U+000A"),
    # Invisible in a terminal: the message shows it as '?'.
    ("zero-width-space", "content/a\u200bb.md", "content/a?b.md:1:", "U+200B"),
]


@pytest.mark.parametrize(
    "name,where,fragment", [c[1:] for c in BAD_NAMES], ids=[c[0] for c in BAD_NAMES]
)
def test_page_names_that_cannot_be_urls_are_refused(
    tmp_path: Path, name: str, where: str, fragment: str
) -> None:
    root = write(tmp_path, {name: FM + "Text.\n"})
    fails(root, where, fragment, "page's URL", "(use letters, digits")


def test_a_draft_with_a_bad_name_is_refused_too(tmp_path: Path) -> None:
    # `serve` builds drafts: the name must be a URL whether or not this build shows it.
    root = write(tmp_path, {"content/a#b.md": "---\ntitle: T\ndraft: true\n---\nx\n"})
    fails(root, "content/a#b.md:1:", "'#'")


def test_non_ascii_names_are_percent_encoded_in_the_sitemap_and_feed(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "circuitpress.toml": SITE + 'base_url = "https://example.org/notes/"\n',
            "content/über/straße.md": FM + "Text.\n",
            "content/線.md": FM + "Text.\n",
        },
    )
    code, lines = build(root)
    assert code == 0, lines
    site = root / "_site"
    assert (site / "über" / "straße" / "index.html").is_file()
    sitemap = (site / "sitemap.xml").read_text(encoding="utf-8")
    locs = [
        e.text
        for e in ET.fromstring(sitemap).iter("{http://www.sitemaps.org/schemas/sitemap/0.9}loc")
    ]
    assert "https://example.org/notes/%C3%BCber/stra%C3%9Fe/" in locs
    assert "https://example.org/notes/%E7%B7%9A/" in locs
    feed = ET.fromstring((site / "feed.xml").read_text(encoding="utf-8"))
    links = [e.get("href") for e in feed.iter("{http://www.w3.org/2005/Atom}link")]
    assert "https://example.org/notes/%E7%B7%9A/" in links
    for url in [*locs, *links]:
        assert url is not None and url.isascii() and not re.search(r"\s", url)


def test_sitemap_and_feed_encode_any_path_they_are_given(tmp_path: Path) -> None:
    # Whatever a future caller passes (a unit of a layer with odd characters), the XML carries
    # URLs: no raw '#', '?', space or newline.
    config = SiteConfig(
        root=tmp_path, path=tmp_path / "c.toml", site=SiteSettings(base_url="https://e.org/s/")
    )
    assert site_url(config, "a b/#?\n/") == "https://e.org/s/a%20b/%23%3F%0A/"
    xml = sitemap_xml(config, ["units/m/x y/3/", "%2e%2e/"])
    assert "https://e.org/s/units/m/x%20y/3/" in xml and "%252e%252e/" in xml


# --- 3. collisions -----------------------------------------------------------------------------

GENERATED = [
    ("feed", "content/feed.xml.md", "feed.xml/", "the generated feed.xml"),
    ("sitemap", "content/sitemap.xml.md", "sitemap.xml/", "the generated sitemap.xml"),
    ("404-html", "content/404.html.md", "404.html/", "the generated 404.html"),
    ("index-html", "content/index.html.md", "index.html/", "the generated index.html"),
    (
        "theme-css",
        "content/assets/theme/css/distill.css.md",
        "assets/theme/css/distill.css/",
        "the theme's assets/theme/css/distill.css",
    ),
]


@pytest.mark.parametrize(
    "page,url,other", [c[1:] for c in GENERATED], ids=[c[0] for c in GENERATED]
)
def test_a_page_where_a_generated_file_goes_is_an_error_naming_both(
    tmp_path: Path, page: str, url: str, other: str
) -> None:
    root = write(tmp_path, {page: FM + "Text.\n"})
    message = fails(root, f"{page}:1:", f"the page's URL {url} collides with {other}")
    assert message.endswith("(rename the file)")


def test_a_page_named_404_is_not_the_404_page(tmp_path: Path) -> None:
    # content/404.md is 404/index.html: no collision with the generated 404.html.
    root = write(tmp_path, {"content/404.md": FM + "A page about error 404.\n"})
    code, lines = build(root)
    assert code == 0, lines
    assert "error 404" in (root / "_site" / "404" / "index.html").read_text(encoding="utf-8")
    assert "error 404" not in (root / "_site" / "404.html").read_text(encoding="utf-8")


def test_content_index_replaces_the_generated_list_without_a_collision(tmp_path: Path) -> None:
    root = write(tmp_path, {"content/index.md": FM + "My own front page.\n"})
    code, lines = build(root)
    assert code == 0, lines
    assert "My own front page" in (root / "_site" / "index.html").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "static,page,url",
    [
        ("static/x/index.html", "content/static/x.md", "static/x/"),  # the same file
        ("static/notes", "content/static/notes.md", "static/notes/"),  # a file, and a folder
    ],
)
def test_a_page_and_a_static_file_at_one_url_is_an_error_naming_both(
    tmp_path: Path, static: str, page: str, url: str
) -> None:
    root = write(tmp_path, {static: "static text\n", page: FM + "Text.\n"})
    message = fails(
        root, f"{page}:1:", f"the page's URL {url} collides with the static file {static}"
    )
    assert message.endswith("(rename one of them)")


def test_a_page_inside_another_pages_file_is_an_error_naming_both(tmp_path: Path) -> None:
    # content/a/index.html.md would need a/index.html to be a folder; content/a.md writes it.
    root = write(tmp_path, {"content/a.md": FM + "A.\n", "content/a/index.html.md": FM + "B.\n"})
    fails(
        root,
        "content/a/index.html.md:1:",
        "the page's URL a/index.html/ collides with the page content/a.md (URL a/)",
    )


def test_pages_beside_static_files_and_unit_folders_do_not_collide(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "static/x.png": "png\n",
            "content/static.md": FM + "A page at static/.\n",
            "content/assets.md": FM + "A page at assets/.\n",
            "content/units.md": FM + "A page at units/.\n",
        },
    )
    code, lines = build(root)
    assert code == 0, lines
    site = root / "_site"
    assert (site / "static" / "x.png").is_file() and (site / "static" / "index.html").is_file()


def test_a_page_where_a_unit_page_goes_is_an_error_before_any_analysis(tmp_path: Path) -> None:
    # A tiny factory model: only its layer facts are computed before the collision is found;
    # the unit page's analyses (feature visualisation) never start.
    root = write(
        tmp_path,
        {
            "circuitpress.toml": SITE + '[models.m]\nfactory = "tinynet_collide:build"\n',
            "tinynet_collide.py": FACTORY,
            "content/a.md": FM + "See {unit}`m/conv1:2`.\n",
            "content/units/m/conv1/2.md": FM + "My own unit page.\n",
        },
    )
    message = fails(
        root,
        "content/units/m/conv1/2.md:1:",
        "the page's URL units/m/conv1/2/ collides with the unit page units/m/conv1/2/",
    )
    assert message.endswith("(rename the file)")
