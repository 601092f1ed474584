"""The Distill theme: what a rendered article, index and 404 page contain, and base-path links."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import pytest
from theme_stand_ins import FrontMatter, RenderedPage, TocEntry, make_config

from circuitpress.config import Author
from circuitpress.render.html import Theme, citation_text, page_path, scholar_name


class Doc(HTMLParser):
    """Collects meta tags, links (href/src) and ids of a document."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.meta: dict[str, list[str]] = {}
        self.links: list[str] = []
        self.ids: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "meta" and (a.get("name") or a.get("property")):
            self.meta.setdefault(a.get("name") or a.get("property") or "", []).append(
                a.get("content") or ""
            )
        for key in ("href", "src"):
            if a.get(key):
                self.links.append(a[key] or "")
        if a.get("id"):
            self.ids.append(a["id"] or "")


def render(
    tmp_path: Path,
    meta: FrontMatter | None = None,
    rendered: RenderedPage | None = None,
    *,
    base_url: str = "https://example.org/circuits/",
    slug: str = "zoom-in",
    series_nav: dict | None = None,
    draft: bool = False,
    **site: object,
) -> str:
    theme = Theme(make_config(tmp_path / "site", base_url=base_url, **site))
    return theme.render_page(
        meta or FrontMatter(),
        rendered or RenderedPage(),
        slug=slug,
        series_nav=series_nav,
        draft=draft,
    )


def test_document_skeleton_and_assets(tmp_path):
    html = render(tmp_path)
    assert html.startswith('<!DOCTYPE html>\n<html lang="en">')
    assert '<meta charset="utf-8">' in html
    doc = Doc(html)
    css = [a["href"] for t, a in doc.tags if t == "link" and a.get("rel") == "stylesheet"]
    js = [a["src"] for t, a in doc.tags if t == "script"]
    # Every stylesheet and script of the theme (other modules add theirs), the theme's own first.
    theme_dir = Path(__file__).parents[2] / "themes" / "distill" / "assets"
    names = lambda kind: sorted(p.name for p in (theme_dir / kind).glob(f"*.{kind}"))  # noqa: E731
    assert [c.split("/")[-1].split("?v=")[0] for c in css] == sorted(
        names("css"), key=lambda n: n != "distill.css"
    )
    assert [j.split("/")[-1].split("?v=")[0] for j in js] == sorted(
        names("js"), key=lambda n: n != "distill.js"
    )
    assert all(c.startswith("/circuits/assets/theme/css/") for c in css)
    assert all(j.startswith("/circuits/assets/theme/js/") for j in js)


def test_title_block_and_byline(tmp_path):
    html = render(tmp_path)
    assert "<h1>Zoom In: An Introduction to Circuits</h1>" in html
    assert 'class="cp-description">By studying the connections' in html
    assert '<a href="https://colah.github.io">Chris Olah</a>' in html
    assert '<a href="https://openai.com">OpenAI</a>' in html
    assert '<time datetime="2020-03-10">March 10, 2020</time>' in html
    assert (
        '<a href="https://doi.org/10.23915/distill.00024.001">10.23915/distill.00024.001</a>'
        in html
    )


def test_byline_falls_back_to_site_authors(tmp_path):
    html = render(tmp_path, FrontMatter(authors=()), authors=(Author("Site Author"),))
    assert '<p class="cp-author">Site Author</p>' in html
    assert Doc(html).meta["citation_author"] == ["Author, Site"]


def test_toc_lists_headings_with_depth(tmp_path):
    html = render(tmp_path)
    assert '<li class="cp-toc-depth-0"><a href="#features">Features</a></li>' in html
    assert '<li class="cp-toc-depth-1"><a href="#curves">Curves</a></li>' in html
    assert "cp-toc" not in render(tmp_path, rendered=RenderedPage(toc=[]))


def test_appendix_footnotes_references_and_citation_box(tmp_path):
    html = render(tmp_path, license="CC-BY 4.0")
    # The backlink sits inside the footnote's last paragraph so it doesn't wrap onto a line of its
    # own.
    assert (
        '<li id="fn-1" value="1"><p>Curves in <em>many</em> orientations. '
        '<a href="#fnref-1" class="cp-backref" aria-label="Back to the text">↩</a></p></li>'
    ) in html
    assert (
        '<li id="ref-olah2020" value="1">Olah, C. et al. <em>Zoom In</em>. Distill, 2020.</li>'
        in html
    )
    assert "Updates and Corrections" in html and "Reuse" in html
    assert (
        '<a href="https://creativecommons.org/licenses/by/4.0/" rel="license">CC-BY 4.0</a>' in html
    )
    assert (
        "<code>@article{olah2020zoom,\n  title = {Zoom In: An Introduction to Circuits},\n}</code>"
        in html
    )
    assert (
        "Olah, et al., \u201cZoom In: An Introduction to Circuits\u201d, Circuits Thread, 2020. "
        "https://doi.org/10.23915/distill.00024.001"
    ) in html


def test_updates_and_repository_link(tmp_path):
    meta = FrontMatter(updates=((date(2020, 4, 1), "Fixed <b>a</b> typo"),))
    html = render(tmp_path, meta, repository="https://github.com/org/site")
    assert (
        '<time datetime="2020-04-01">April 1, 2020</time>: Fixed &lt;b&gt;a&lt;/b&gt; typo' in html
    )
    assert 'href="https://github.com/org/site"' in html
    assert "No corrections have been made" in render(tmp_path)


def test_unknown_licence_is_plain_text(tmp_path):
    html = render(tmp_path, FrontMatter(license="All rights reserved"))
    assert "licensed under All rights reserved, unless" in html


@pytest.mark.parametrize(
    "authors,expected",
    [
        (["Chris Olah"], "Olah, \u201cT\u201d, J, 2020."),
        (["Chris Olah", "Nick Cammarata"], "Olah & Cammarata, \u201cT\u201d, J, 2020."),
        (["A B", "C D", "E F"], "B, et al., \u201cT\u201d, J, 2020."),
        ([], "\u201cT\u201d, J, 2020."),
    ],
)
def test_plain_citation(authors, expected):
    assert citation_text("T", authors, "J", date(2020, 1, 1), None) == expected


def test_scholar_names():
    assert scholar_name("Chris Olah") == "Olah, Chris"
    assert scholar_name("Olah, Chris") == "Olah, Chris"
    assert scholar_name("Plato") == "Plato"


def test_open_graph_and_scholar_meta(tmp_path):
    meta = FrontMatter(extra={"image": "static/cover.png"})
    doc = Doc(render(tmp_path, meta))
    m = doc.meta
    assert m["og:title"] == ["Zoom In: An Introduction to Circuits"]
    assert m["og:type"] == ["article"]
    assert m["og:url"] == ["https://example.org/circuits/zoom-in/"]
    assert m["og:image"] == ["https://example.org/circuits/static/cover.png"]
    assert m["og:description"][0].startswith("By studying")
    assert m["citation_title"] == ["Zoom In: An Introduction to Circuits"]
    assert m["citation_author"] == ["Olah, Chris", "Cammarata, Nick", "Schubert, Ludwig"]
    assert m["citation_publication_date"] == ["2020/03/10"]
    assert m["citation_doi"] == ["10.23915/distill.00024.001"]
    assert m["citation_journal_title"] == ["Circuits Thread"]
    assert m["citation_fulltext_html_url"] == ["https://example.org/circuits/zoom-in/"]
    canonical = [a["href"] for t, a in doc.tags if t == "link" and a.get("rel") == "canonical"]
    assert canonical == ["https://example.org/circuits/zoom-in/"]
    feeds = [a for t, a in doc.tags if t == "link" and a.get("rel") == "alternate"]
    assert feeds == [
        {
            "rel": "alternate",
            "type": "application/atom+xml",
            "title": "Circuits Thread",
            "href": "/circuits/feed.xml",
        }
    ]


def test_meta_without_host_or_optional_fields(tmp_path):
    meta = FrontMatter(doi=None, published=None)
    m = Doc(render(tmp_path, meta, base_url="/docs")).meta
    assert "og:url" not in m and "og:image" not in m  # Open Graph needs absolute URLs
    assert "citation_doi" not in m and "citation_publication_date" not in m
    assert m["citation_fulltext_html_url"] == ["/docs/zoom-in/"]


@pytest.mark.parametrize(
    "base_url,prefix",
    [("/", "/"), ("/project/", "/project/"), ("https://user.github.io/project", "/project/")],
)
def test_every_internal_link_honours_the_base_path(tmp_path, base_url, prefix):
    nav = {
        "prev": {"title": "Earlier", "url": "earlier/"},
        "next": {"title": "Later", "url": "later/"},
    }
    theme = Theme(make_config(tmp_path / "site", base_url=base_url))
    pages = [
        theme.render_page(FrontMatter(), RenderedPage(), slug="a/b", series_nav=nav, draft=False),
        theme.render_index([("zoom-in", FrontMatter())]),
        theme.render_404(),
    ]
    for html in pages:
        for link in Doc(html).links:
            if link.startswith(
                (
                    "#",
                    "https://doi.org",
                    "https://colah",
                    "https://openai",
                    "https://creativecommons",
                    "https://user.github.io/project/",
                )
            ):
                continue
            assert link.startswith(prefix), link
            assert not link.startswith(prefix + "/"), link
    assert f'href="{prefix}earlier/"' in pages[0] and f'href="{prefix}later/"' in pages[0]
    assert f'href="{prefix}zoom-in/"' in pages[1]
    assert f'href="{prefix}"' in pages[2]


def test_url_helpers(tmp_path):
    theme = Theme(make_config(tmp_path / "site", base_url="https://example.org/sub"))
    assert theme.url("a/b/") == "/sub/a/b/"
    assert theme.url("/assets/x.png") == "/sub/assets/x.png"
    assert theme.url("https://other.org/x") == "https://other.org/x"
    assert theme.url("#fn-1") == "#fn-1"
    assert theme.absolute_url("a/") == "https://example.org/sub/a/"
    assert page_path("index") == "" and page_path("a/b") == "a/b/" and page_path("a/index") == "a/"


def test_text_is_escaped_and_html_fields_are_not(tmp_path):
    meta = FrontMatter(title='<script>alert("x")</script>', description="A & B")
    html = render(tmp_path, meta)
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "A &amp; B" in html
    assert '<math display="block"><mi>x</mi></math>' in html  # body_html is already HTML


def test_series_navigation(tmp_path):
    nav = {"prev": None, "next": {"title": "Curve Detectors", "url": "curve-detectors/"}}
    html = render(tmp_path, FrontMatter(series="Circuits"), series_nav=nav)
    assert '<a class="cp-series-next" rel="next" href="/circuits/curve-detectors/">' in html
    assert "Part of the series <em>Circuits</em>" in html
    assert "cp-series-prev" not in html
    assert "cp-series" not in render(tmp_path, series_nav=None)
    assert "cp-series" not in render(tmp_path, series_nav={"prev": None, "next": None})


def test_draft_badge_and_noindex(tmp_path):
    html = render(tmp_path, draft=True)
    assert '<span class="cp-draft-badge">Draft</span>' in html
    assert Doc(html).meta["robots"] == ["noindex"]
    assert "cp-draft-badge" not in render(tmp_path)


def test_index_keeps_order_and_marks_drafts(tmp_path):
    theme = Theme(make_config(tmp_path / "site"))
    pages = [
        ("newer", FrontMatter(title="Newer", published=date(2021, 1, 1), draft=True)),
        ("older", FrontMatter(title="Older", published=date(2020, 1, 1))),
    ]
    html = theme.render_index(pages)
    assert html.index(">Newer</a>") < html.index(">Older</a>")
    assert html.count("cp-draft-badge") == 1
    assert '<time datetime="2021-01-01">January 1, 2021</time> · Chris Olah, Nick Cammarata' in html
    assert "<h1>Circuits Thread</h1>" in html and "Articles about circuits." in html
    assert "No articles yet." in theme.render_index([])


def test_404_page(tmp_path):
    html = Theme(make_config(tmp_path / "site", base_url="/sub/")).render_404()
    assert "Page not found" in html and 'href="/sub/"' in html
    assert Doc(html).meta["robots"] == ["noindex"]


def test_output_is_deterministic(tmp_path):
    def once() -> tuple[str, list[tuple[str, bytes]]]:
        theme = Theme(make_config(tmp_path / "site"))
        return render(tmp_path), theme.assets()

    assert once() == once()


def test_templates_can_extend_base_with_its_blocks(tmp_path):
    site = tmp_path / "site"
    templates = site / "themes" / "distill" / "templates"
    templates.mkdir(parents=True)
    (templates / "thing.html").write_text(
        '{% extends "base.html" %}{% block title %}T {{ name }}{% endblock %}'
        '{% block head %}<meta name="x" content="y">{% endblock %}'
        "{% block content %}<p>{{ name }}</p>{% endblock %}"
    )
    html = Theme(make_config(site)).render_template("thing.html", {"name": "<conv2:7>"})
    assert "<title>T &lt;conv2:7&gt;</title>" in html
    assert '<meta name="x" content="y">' in html and "<p>&lt;conv2:7&gt;</p>" in html


def test_toc_entries_carry_html(tmp_path):
    toc = [TocEntry(2, "m", "Math <math><mi>x</mi></math>")]
    html = render(tmp_path, rendered=replace(RenderedPage(), toc=toc))
    assert '<a href="#m">Math <math><mi>x</mi></math></a>' in html


def test_no_local_paths_in_output(tmp_path):
    html = render(tmp_path)
    assert str(tmp_path) not in html
    assert not re.search(r"/(home|root|tmp|work)/", html)


def test_series_urls_already_under_the_base_are_kept(tmp_path):
    nav = {"prev": {"title": "P", "url": "/circuits/p/"}, "next": None}
    assert 'href="/circuits/p/"' in render(tmp_path, series_nav=nav)


def test_optional_context_can_be_tested_but_not_printed(tmp_path):
    site = tmp_path / "site"
    templates = site / "themes" / "distill" / "templates"
    templates.mkdir(parents=True)
    (templates / "opt.html").write_text("{% if missing %}yes{% else %}no{% endif %}")
    theme = Theme(make_config(site))
    assert theme.render_template("opt.html", {}) == "no"


def test_no_licence_is_printed_for_a_site_that_chose_none(tmp_path):
    html = render(tmp_path)
    assert "licensed under" not in html and "cp-reuse" not in html
    html = render(tmp_path, FrontMatter(license="CC-BY-SA 4.0"))
    assert 'rel="license">CC-BY-SA 4.0</a>' in html


def test_a_view_reads_in_templates_as_the_dict_it_replaced() -> None:
    import jinja2

    from circuitpress.render.html import View

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=True)
    source = (
        "{{ a.title }}|{{ a['title'] }}|{{ a.items() | list | length }}|"
        "{{ a.missing is defined }}|{{ a.get('title') }}|{{ a.nested.id }}"
    )
    template = env.from_string(source)
    plain = {"title": "<T>", "nested": {"id": 3}}
    view = View(title="<T>", nested=View(id=3))
    expected = "&lt;T&gt;|&lt;T&gt;|2|False|&lt;T&gt;|3"
    assert template.render(a=view) == template.render(a=plain) == expected
    assert view == plain and isinstance(view, dict)
    with pytest.raises(AttributeError):
        view.missing  # noqa: B018 - the attribute protocol Jinja relies on
