"""Front matter written as MyST and Quarto document it builds, through the CLI, into the byline.

The fixtures in fixtures/front_matter/ follow the examples of mystmd.org's "Frontmatter" page and
quarto.org's "Authors & Affiliations" and "Front Matter" pages (each file names its section).
Each test builds a tiny site with `circuitpress build` and reads the HTML it wrote.
"""

from __future__ import annotations

import datetime
import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from circuitpress.cli import cli
from circuitpress.markup.frontmatter import key_hint, parse_front_matter

FIXTURES = Path(__file__).parent / "fixtures" / "front_matter"
CONFIG = '[site]\ntitle = "Front matter site"\nbase_url = "{base}"\n'


def make_site(root: Path, pages: dict[str, str], base: str = "/") -> Path:
    files = {"circuitpress.toml": CONFIG.format(base=base), **pages}
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def run(site: Path, *args: str) -> tuple[int, list[str]]:
    """`circuitpress build SITE --quiet ARGS`: exit code and the lines it printed."""
    result = CliRunner().invoke(cli, ["build", str(site), "--quiet", *args])
    assert "Traceback" not in result.output, result.output
    return result.exit_code, [line for line in result.output.splitlines() if line.strip()]


def page(site: Path, slug: str) -> str:
    return (site / "_site" / slug / "index.html").read_text(encoding="utf-8")


def byline(html: str) -> list[tuple[str, str]]:
    """(author, affiliations) of each byline row, tags stripped, affiliations joined by ' | '."""
    rows = re.findall(
        r'<p class="cp-author">(.*?)</p>\s*(?:<p class="cp-affiliation">(.*?)</p>)?', html, re.S
    )

    def text(fragment: str) -> str:
        return re.sub(r"<[^>]+>", "", fragment).strip()

    return [
        (
            text(re.sub(r'<a class="cp-(?:orcid|email)".*?</a>', "", a)),
            text(f.replace("<br>", " | ")),
        )
        for a, f in rows
    ]


# fixture -> (byline rows, fragments the page must contain, warnings as (line, words))
DOCUMENTED = {
    "myst_page": (
        [("Mason Moniker", "University of Europe")],
        ['<time datetime="2022-05-11">'],
        [],
    ),
    "myst_affiliation_ids": (
        [
            (
                "Marissa Myst",
                "Department of Earth, Ocean and Atmospheric Sciences, University of British"
                " Columbia",
            ),
            (
                "Miles Mysterson",
                "Department of Earth, Ocean and Atmospheric Sciences, University of British"
                " Columbia | Stanford University",
            ),
        ],
        ['<a href="https://www.stanford.edu">Stanford University</a>'],
        [],
    ),
    "myst_inline_ids": (
        [
            (
                "Marissa Myst",
                "Earth, Ocean and Atmospheric Sciences, University of British Columbia | ACME Inc",
            ),
            (
                "Miles Mysterson",
                "Earth, Ocean and Atmospheric Sciences, University of British Columbia",
            ),
        ],
        [
            '<time datetime="2000-01-01">',  # MyST's "01 Jan 2000" form
            'href="https://orcid.org/0000-0002-1825-0097"',
            'href="mailto:marissa@ubc.example"',  # corresponding: true
        ],
        [],
    ),
    "quarto_names": ([("Norah Jones", ""), ("Bill Gates", "")], [], []),
    "quarto_one_name": ([("Norah Jones", "")], [], []),
    "quarto_full_author": (
        [("Bill Gates", "Bill &amp; Melinda Gates Foundation")],
        ['href="https://orcid.org/0000-0003-1689-0557"'],
        [],
    ),
    "quarto_csl_name": (
        [("Norah von Jones", "Carnegie Mellon University | University of Chicago")],
        ['href="mailto:norah@cmu.example"'],
        [],
    ),
    "quarto_reference_affiliations": (
        [("Norah Jones", "Carnegie Mellon University | University of Chicago")],
        ['<meta name="citation_author_institution" content="University of Chicago">'],
        [],
    ),
    "quarto_inline_references": (
        [
            ("Norah Jones", "Carnegie Mellon University | University of Chicago"),
            ("John Hamm", "Carnegie Mellon University | University of California, San Diego"),
        ],
        [],
        [],
    ),
    "quarto_front_matter": (
        [("Josiah Carberry", "Brown University")],
        [
            '<time datetime="2008-02-29">',
            '<a href="https://www.brown.edu">Brown University</a>',
            '<meta name="keywords" content="Metaphysics, String Theory">',
            "CC BY",
        ],
        [
            (18, "key 'abstract' is not used", "did you mean 'description'?"),
            (24, "key 'copyright' is not used", "under 'options:'"),
            (27, "'citation' fields are not used", "title, authors, published and doi"),
            (32, "key 'funding' is not used", "under 'options:'"),
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_documented_front_matter_builds(tmp_path: Path, name: str) -> None:
    rows, fragments, warnings = DOCUMENTED[name]
    source = (FIXTURES / f"{name}.md").read_text(encoding="utf-8")
    site = make_site(tmp_path, {f"content/{name}.md": source})
    code, lines = run(site)
    assert code == 0, lines
    html = page(site, name)
    assert byline(html) == rows
    for fragment in fragments:
        assert fragment in html, fragment
    expected = [
        (f"warning: content/{name}.md:{line}: front matter", words, hint)
        for line, words, hint in warnings
    ]
    assert len(lines) == len(expected), lines
    for line, (where, words, hint) in zip(lines, expected, strict=True):
        assert line.startswith(where) and words in line and hint in line, line
    if warnings:
        # --strict: the first warning, as the one line of an error.
        code, lines = run(site, "--strict")
        assert code == 1 and len(lines) == 1, lines
        assert lines[0].startswith(f"content/{name}.md:{warnings[0][0]}: "), lines


def test_every_fixture_has_a_test() -> None:
    assert sorted(p.stem for p in FIXTURES.glob("*.md")) == sorted(DOCUMENTED)


# -- unknown keys --------------------------------------------------------------------------------

THEME_TITLE = """<header class="cp-title">
<h1>{{ page.title }}</h1>
<p class="subtitle">{{ page.extra.subtitle }}</p>
<p class="banner">{{ page.extra.options.banner }}</p>
</header>
"""


def test_unknown_keys_are_kept_for_a_theme_with_a_warning(tmp_path: Path) -> None:
    text = "---\ntitle: T\nsubtitle: A <small> subtitle\noptions:\n  banner: wide\n---\n\nBody.\n"
    site = make_site(
        tmp_path,
        {
            "content/a.md": text,
            "themes/distill/templates/partials/title.html": THEME_TITLE,
        },
    )
    code, lines = run(site)
    assert code == 0
    # `options:` is a theme's own mapping (MyST's): no warning for it.
    assert lines == [
        "warning: content/a.md:3: front matter key 'subtitle' is not used by circuitpress"
        " (kept for themes as page.extra['subtitle']) (did you mean 'description'?)"
    ]
    html = page(site, "a")
    assert '<p class="subtitle">A &lt;small&gt; subtitle</p>' in html  # escaped
    assert '<p class="banner">wide</p>' in html
    code, lines = run(site, "--strict")
    assert code == 1 and len(lines) == 1
    assert lines[0].startswith("content/a.md:3: front matter key 'subtitle'"), lines
    assert "(--strict)" in lines[0], lines


def test_unknown_author_and_affiliation_keys_warn_at_their_line(tmp_path: Path) -> None:
    text = (
        "---\ntitle: T\nauthors:\n  - name: Ada\n    emial: ada@x.example\n"
        "    affiliations:\n      - name: Lab\n        citty: Paris\n---\n"
    )
    site = make_site(tmp_path, {"content/a.md": text})
    code, lines = run(site)
    assert code == 0
    assert lines == [
        "warning: content/a.md:5: front matter author key 'emial' is not used by circuitpress"
        " (kept for themes) (did you mean 'email'?)",
        "warning: content/a.md:8: front matter affiliation key 'citty' is not used by"
        " circuitpress (kept for themes) (did you mean 'city'?)",
    ]


@pytest.mark.parametrize(
    "key, hint",
    [
        ("publised", "did you mean 'published'?"),
        ("autors", "did you mean 'authors'?"),
        ("ordr", "did you mean 'order'?"),
        ("keyword", "did you mean 'keywords'?"),
        ("summary", "did you mean 'description'?"),
        ("thumbnail", "did you mean 'image'?"),
        ("lastmod", "did you mean 'updated'?"),
        ("colour_scheme", "under 'options:'"),
    ],
)
def test_did_you_mean(key: str, hint: str) -> None:
    assert hint in key_hint(key)


def test_order_is_no_longer_an_unknown_key() -> None:
    # Before: "unknown front matter key 'order' (did you mean 'model'?)".
    meta = parse_front_matter("title: T\nseries: S\norder: 2\n", "content/a.md", 2)
    assert meta.series_order == 2 and meta.warnings == ()
    assert key_hint("order") != "did you mean 'model'?"


# -- aliases -------------------------------------------------------------------------------------


def test_date_author_and_date_modified_are_aliases() -> None:
    meta = parse_front_matter(
        "title: T\ndate: 2024-03-01\ndate-modified: 2024-04-01\nauthor: Ada\n"
        "keywords: [a, b]\ntags: [c]\n",
        "content/a.md",
        2,
        today=datetime.date(2025, 1, 1),
    )
    assert meta.published == datetime.date(2024, 3, 1)
    assert meta.updated == datetime.date(2024, 4, 1)
    assert [a.name for a in meta.authors] == ["Ada"]
    assert meta.keywords == ("a", "b") and meta.tags == ("c",)
    assert meta.warnings == ()


@pytest.mark.parametrize(
    "text, line, words",
    [
        ("title: T\ndate: 2024-03-01\npublished: 2024-03-02\n", 4, "both 'date' and 'published'"),
        ("title: T\norder: 1\nseries_order: 2\n", 4, "both 'order' and 'series_order'"),
        ("title: T\ndate: soon\n", 3, "'date' is not a date"),
        ("title: T\norder: first\n", 3, "'order' must be a whole number"),
        ("title: T\npublished: 2024-03-02\nupdated: 2024-03-01\n", 4, "is before 'published'"),
        (
            "title: T\nauthors:\n  - name: A\n    affiliations:\n      - ref: cmv\n"
            "affiliations:\n  - {id: cmu, name: CMU}\n",
            6,
            "affiliation 'cmv' is not defined (did you mean 'cmu'?)",
        ),
        ("title: T\nauthors:\n  - url: https://a.example\n", 4, "author entry has no 'name'"),
        (
            "title: T\nauthors:\n  - name: A\n    email: not an address\n",
            5,
            "email 'not an address' is not an address",
        ),
        (
            "title: T\nauthors:\n  - name: A\n    affiliations:\n"
            "      - {name: L, url: 'javascript:alert(1)'}\n",
            6,
            "affiliation url 'javascript:alert(1)' is not a web link",
        ),
        ("title: T\nauthors:\n  - name: A\n    corresponding: yes please\n", 5, "true or false"),
    ],
)
def test_mistakes_are_one_located_line(tmp_path: Path, text: str, line: int, words: str) -> None:
    site = make_site(tmp_path, {"content/a.md": f"---\n{text}---\n\nBody.\n"})
    code, lines = run(site)
    assert code == 1 and len(lines) == 1, lines
    assert lines[0].startswith(f"content/a.md:{line}: "), lines
    assert words in lines[0], lines


def test_affiliations_are_escaped_in_the_byline(tmp_path: Path) -> None:
    text = (
        "---\ntitle: T\nauthors:\n  - name: A <b>\n    affiliations:\n"
        "      - name: '<script>alert(1)</script>'\n"
        "        department: R&D\n"
        "        url: 'https://lab.example/?a=1&b=\"x\"'\n---\n"
    )
    site = make_site(tmp_path, {"content/a.md": text})
    code, lines = run(site)
    assert code == 0, lines
    html = page(site, "a")
    assert "<script>alert" not in html
    assert (
        '<a href="https://lab.example/?a=1&amp;b=&#34;x&#34;">'
        "R&amp;D, &lt;script&gt;alert(1)&lt;/script&gt;</a>"
    ) in html
    assert '<p class="cp-author">A &lt;b&gt;</p>' in html


# -- series and index ----------------------------------------------------------------------------


def article(title: str, published: str | None, extra: str = "") -> str:
    date = f"published: {published}\n" if published else ""
    return f"---\ntitle: {title}\n{date}{extra}---\n\nBody of {title}.\n"


SERIES_PAGES = {
    # `order` disagrees with the dates on purpose: the authors' order wins.
    "content/third.md": article("Third part", "2026-01-01", "series: Thread\norder: 3\n"),
    "content/first.md": article("First part", "2026-03-01", "series: Thread\norder: 1\n"),
    "content/second.md": article("Second part", "2026-02-01", "series: Thread\nseries_order: 2\n"),
    "content/coda.md": article("Coda", "2025-12-01", "series: Thread\n"),  # no order: last
    "content/newer.md": article("A newer article", "2026-04-01"),
    "content/older.md": article("An older article", "2025-06-01"),
    "content/undated.md": article("Undated notes", None),
}


def test_order_orders_a_series(tmp_path: Path) -> None:
    site = make_site(tmp_path, SERIES_PAGES)
    code, lines = run(site)
    assert code == 0 and lines == [], lines
    first, second, third, coda = (page(site, s) for s in ("first", "second", "third", "coda"))
    assert "Part 1 of 4 of the series <em>Thread</em>" in first
    assert 'rel="prev"' not in first and 'rel="next" href="/second/"' in first
    assert 'rel="prev" href="/first/"' in second and 'rel="next" href="/third/"' in second
    assert 'rel="prev" href="/second/"' in third and 'rel="next" href="/coda/"' in third
    assert "Part 4 of 4" in coda and 'rel="next"' not in coda


def index_entries(html: str) -> list[str]:
    """The index in order: 'Series NAME' headings and article titles."""
    found = re.findall(
        r'<h2 class="cp-index-series-name">(.*?)</h2>|<a href="[^"]*">([^<]*)</a></h[23]>', html
    )
    return [f"Series {s}" if s else t for s, t in found]


def test_index_lists_a_series_once_in_reading_order_under_its_name(tmp_path: Path) -> None:
    site = make_site(tmp_path, SERIES_PAGES)
    code, _ = run(site)
    assert code == 0
    html = (site / "_site" / "index.html").read_text(encoding="utf-8")
    # The series stands where its newest part (March 2026) would; undated last.
    assert index_entries(html) == [
        "A newer article",
        "Series Thread",
        "First part",
        "Second part",
        "Third part",
        "Coda",
        "An older article",
        "Undated notes",
    ]
    assert "Series · 4 articles" in html
    assert '<span class="cp-index-part-number">Part 1</span> <a href="/first/">' in html
    # The feed stays newest first.
    feed = (site / "_site" / "feed.xml").read_text(encoding="utf-8")
    titles = re.findall(r"<title[^>]*>([^<]*)</title>", feed)[1:]
    assert titles[:3] == ["A newer article", "First part", "Second part"]


def test_series_warnings(tmp_path: Path) -> None:
    site = make_site(
        tmp_path,
        {
            "content/a.md": article("A", "2026-01-01", "series: S\norder: 1\n"),
            "content/b.md": article("B", "2026-01-02", "series: S\norder: 1\n"),
            "content/c.md": article("C", "2026-01-03", "order: 5\n"),
        },
    )
    code, lines = run(site)
    assert code == 0
    assert sorted(lines) == [
        "warning: content/b.md:5: 'order' 1 is also the place of content/a.md in the series"
        " 'S' (give each part its own number)",
        "warning: content/c.md:4: front matter 'order' 5 orders nothing: the page is in no"
        " series (add series: NAME, or remove the order)",
    ]


def test_a_future_date_is_a_located_warning_and_shown_as_written(tmp_path: Path) -> None:
    site = make_site(
        tmp_path,
        {"content/a.md": article("Later", "2999-01-01"), "content/b.md": article("Now", None)},
    )
    code, lines = run(site)
    assert code == 0
    today = datetime.date.today().isoformat()
    assert lines == [
        f"warning: content/a.md:3: front matter 'published' 2999-01-01 is in the future (today"
        f" is {today}); the page shows it as written (fix the date, or mark the page draft:"
        " true until then)"
    ]
    index = (site / "_site" / "index.html").read_text(encoding="utf-8")
    assert '<time datetime="2999-01-01">January 1, 2999</time>' in index
    code, lines = run(site, "--strict")
    assert code == 1 and lines[0].startswith("content/a.md:3: "), lines


def test_toc_false_hides_the_table_of_contents(tmp_path: Path) -> None:
    body = "\n## One\n\nText.\n\n## Two\n\nText.\n"
    site = make_site(
        tmp_path,
        {
            "content/a.md": "---\ntitle: A\n---\n" + body,
            "content/b.md": "---\ntitle: B\ntoc: false\n---\n" + body,
        },
    )
    assert run(site)[0] == 0
    assert 'class="cp-toc' in page(site, "a")
    assert 'class="cp-toc' not in page(site, "b")


# -- root-relative paths -------------------------------------------------------------------------

SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"></svg>'


def image_site(tmp_path: Path, body: str, base: str = "/proj/") -> Path:
    site = make_site(tmp_path, {"content/a.md": "---\ntitle: A\n---\n\n" + body}, base=base)
    for rel in ("static/grating.svg", "figures/curve.svg", "static/static/odd.svg"):
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(SVG, encoding="utf-8")
    return site


def test_a_root_relative_figure_is_read_from_the_site_folder(tmp_path: Path) -> None:
    body = (
        ":::{figure} /static/grating.svg\nA grating.\n:::\n\n"
        ":::{figure} /figures/curve.svg\nOutside static/.\n:::\n\n"
        ":::{figure} grating.svg\nRelative: static/ first, as before.\n:::\n\n"
        "![a grating](/static/grating.svg)\n"
    )
    site = image_site(tmp_path, body)
    code, lines = run(site)
    assert code == 0 and lines == [], lines
    html = page(site, "a")
    srcs = re.findall(r'<img src="([^"]+)"', html)
    assert srcs[0] == "/proj/static/grating.svg"
    # A file outside static/ is published as a content-addressed asset.
    assert srcs[1].startswith("/proj/assets/") and srcs[1].endswith(".svg")
    assert (site / "_site" / srcs[1].removeprefix("/proj/")).read_text() == SVG
    assert srcs[2] == "/proj/static/grating.svg"
    # A Markdown image of static/ under the base path too.
    assert srcs[3] == "/proj/static/grating.svg"
    assert (site / "_site" / "static" / "grating.svg").is_file()


def test_a_root_relative_path_reads_the_site_folder_then_static(tmp_path: Path) -> None:
    body = (
        # site/static/static/odd.svg: the site folder's path first
        ":::{figure} /static/static/odd.svg\n:::\n\n"
        # not site/grating.svg: static/grating.svg, what '/grating.svg' meant before
        ":::{figure} /grating.svg\n:::\n"
    )
    site = image_site(tmp_path, body)
    assert run(site)[0] == 0
    srcs = re.findall(r'<img src="([^"]+)"', page(site, "a"))
    assert srcs == ["/proj/static/static/odd.svg", "/proj/static/grating.svg"]


@pytest.mark.parametrize(
    "target, words",
    [
        (
            "/static/nope.svg",
            "image '/static/nope.svg' not found (looked for static/nope.svg and"
            " static/static/nope.svg; a path starting with '/' is read from the site folder)",
        ),
        ("/../outside.svg", "image path '/../outside.svg' leaves the site folder"),
        ("nope.svg", "looked for static/nope.svg and content/nope.svg"),
    ],
)
def test_image_mistakes(tmp_path: Path, target: str, words: str) -> None:
    (tmp_path / "outside.svg").write_text(SVG, encoding="utf-8")
    site = image_site(tmp_path / "site", f":::{{figure}} {target}\n:::\n")
    code, lines = run(site)
    assert code == 1 and len(lines) == 1, lines
    assert lines[0].startswith("content/a.md:5: ") and words in lines[0], lines


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_a_root_relative_link_out_of_the_site_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.svg"
    secret.write_text(SVG, encoding="utf-8")
    site = image_site(tmp_path / "site", ":::{figure} /figures/leak.svg\n:::\n")
    (site / "figures" / "leak.svg").symlink_to(secret)
    code, lines = run(site)
    assert code == 1 and len(lines) == 1, lines
    assert lines[0].startswith("figures/leak.svg:1: links to "), lines
    assert "named in content/a.md:5" in lines[0]
    assert not (site / "_site").exists()  # nothing was published


def test_every_key_is_documented() -> None:
    from circuitpress.markup.frontmatter import ALIASES, EXTRA_KEYS, KNOWN_KEYS

    doc = (Path(__file__).parents[2] / "docs" / "front-matter.md").read_text(encoding="utf-8")
    for key in (*KNOWN_KEYS, *EXTRA_KEYS, *(a.replace("_", "-") for a in ALIASES)):
        assert f"`{key}`" in doc, f"front matter key {key} missing from docs/front-matter.md"
