"""The Markup API as the build uses it: slugs, plans, calls, render context, citation box."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from circuitpress.errors import UserError
from circuitpress.extensions import Directive, DirectiveCall
from circuitpress.markup import FrontMatter, ParsedPage, slug_of

from .helpers import FakeServices, build, markup, parse

HEAD = "---\ntitle: A page\n---\n"


@pytest.mark.parametrize(
    "file,slug",
    [
        ("content/curves.md", "curves"),
        ("content/index.md", ""),
        ("content/a/b.md", "a/b"),
        ("content/a/index.md", "a"),
    ],
)
def test_slugs(file: str, slug: str) -> None:
    assert slug_of(file) == slug


def test_parse_gives_meta_calls_and_plans_in_document_order() -> None:
    source = (
        "---\ntitle: Curves\nmodel: shapes-a\npublished: 2024-03-01\n"
        "authors:\n  - Ada Lovelace\n  - {name: Alan Turing, affiliation: NPL, url: 'https://npl.example'}\n---\n"
        "Intro {chip}`conv1:0`.\n\n"
        "::::{probe} outer\n:count: 2\n:::{probe} inner\n:::\n::::\n\n{chip}`conv2:1`\n"
    )
    page, plan = parse(source, "content/curves.md")
    assert isinstance(page, ParsedPage) and isinstance(page.meta, FrontMatter)
    assert page.slug == "curves"
    assert page.meta.model == "shapes-a" and page.meta.published == datetime.date(2024, 3, 1)
    assert [a.name for a in page.meta.authors] == ["Ada Lovelace", "Alan Turing"]
    assert page.meta.authors[1].affiliation == "NPL"
    assert plan.default_model == "shapes-a"  # plan(meta) got the parsed front matter
    assert [(c.name, c.argument, c.line) for c in page.calls] == [
        ("probe", "outer", 11),
        ("probe", "inner", 13),
    ]
    assert page.calls[0].option_line("count") == 12
    assert plan.requests == [("probe", "outer", 2), ("probe", "inner", 3)]
    assert plan.mentions == [("conv1:0", 9), ("conv2:1", 17)]
    assert len(page.source_hash) == 64


def test_source_hash_changes_with_the_source() -> None:
    a, _ = parse(HEAD + "One.\n")
    b, _ = parse(HEAD + "Two.\n")
    assert a.source_hash != b.source_hash


def test_render_context_offers_services_and_markups_own_parts() -> None:
    seen: dict[str, Any] = {}

    class Spy(Directive):
        name = "spy"
        options: dict = {}

        def render(self, call: DirectiveCall, ctx: Any) -> str:
            seen["file"] = ctx.file
            seen["url"] = ctx.url("units/m/conv1/3/")
            seen["number"] = ctx.figure_number("fig-b")
            seen["own"] = ctx.figure_number(None)
            seen["caption"] = ctx.caption(call)
            seen["markdown"] = ctx.markdown("Some *text* citing {cite}`godel1931`.", inline=True)
            ctx.warn("careful", call.line)
            return "<p>spy</p>"

    m = markup()
    m.registry.add_directive(Spy)
    page, _ = parse(
        HEAD + ":::{probe} a\n:name: fig-a\nA.\n:::\n:::{spy}\n:name: fig-b\nB *caption*.\n:::\n",
        m=m,
    )
    services = FakeServices(page.file)
    out = m.render(page, services)
    assert seen["file"] == "content/page.md"
    assert seen["url"] == "/base/units/m/conv1/3/"
    assert seen["number"] == 2 and seen["own"] == 2
    assert (
        seen["caption"]
        == '<figcaption><span class="cp-fignum">Figure 2:</span> B <em>caption</em>.</figcaption>'
    )
    assert seen["markdown"].startswith(
        'Some <em>text</em> citing <a class="cp-cite" href="#ref-godel1931"'
    )
    assert services.warnings == [("careful", 8)]
    # the citation made while rendering still reaches the reference list
    assert [r.key for r in out.references] == ["godel1931"]


def test_caption_is_empty_without_number_or_body() -> None:
    out = build(HEAD + "```{probe} plain\n```\n")
    assert "<figcaption>" not in out.body_html


def test_labelled_figure_without_caption_is_numbered() -> None:
    out = build(HEAD + ":::{probe} a\n:name: fig-x\n:::\n{numref}`fig-x`\n")
    assert '<a class="cp-numref" href="#fig-x">Figure 1</a>' in out.body_html
    assert (
        '<span class="cp-fignum">Figure 1</span></figcaption>' in out.body_html
    )  # no dangling colon


def test_citation_box_bibtex() -> None:
    out = build(
        "---\ntitle: Zoom In & Out\nauthors: [Chris Olah, Nick Cammarata]\npublished: 2020-03-10\n"
        "doi: 10.23915/distill.00024.001\n---\n",
        file="content/zoom/index.md",
    )
    assert out.bibtex == (
        "@article{olah2020zoom,\n"
        "  author = {Olah, Chris and Cammarata, Nick},\n"
        "  title = {Zoom In \\& Out},\n"
        "  journal = {Fixture site},\n"
        "  year = {2020},\n"
        "  note = {https://example.org/notes/zoom/},\n"
        "  doi = {10.23915/distill.00024.001}\n"
        "}"
    )


def test_citation_box_without_full_base_url_has_no_note(tmp_path: Any) -> None:
    out = build(HEAD, m=markup(tmp_path, base_url="/sub/"))
    assert "note" not in out.bibtex and "@article{" in out.bibtex


def test_word_count_counts_prose_not_markup() -> None:
    out = build(
        HEAD + "One two three.\n\n## Four five\n\n:::{note}\nSix seven.\n:::\n\n"
        "Eight[^a].\n\n[^a]: Not counted.\n"
    )
    assert out.word_count == 8


def test_rendering_twice_gives_the_same_html() -> None:
    m = markup()
    page, _ = parse((markup().config.root / "footnotes.md").read_text(), m=m)
    first = m.render(page, FakeServices(page.file))
    second = m.render(page, FakeServices(page.file))
    assert first == second


def test_front_matter_lines_count_in_body_errors() -> None:
    long_head = "---\ntitle: x\ndescription: >\n  folded\n  text\nauthors:\n  - A\n  - B\n---\n"
    with pytest.raises(UserError) as info:
        build(long_head + "\n{nope}`x`\n")
    assert info.value.line == 11


def test_raw_html_is_kept_but_front_matter_and_bibtex_are_escaped() -> None:
    out = build("---\ntitle: '<script>x</script>'\n---\n<b>author html</b>\n\n{cite}`dna2021`\n")
    assert "<b>author html</b>" in out.body_html
    assert "&lt;Grammar&gt;" in out.references[0].html
    assert "<Grammar>" not in out.references[0].html


def test_extra_front_matter_keys() -> None:
    page, _ = parse(
        "---\ntitle: x\ntags: [curves, vision]\nimage: static/card.png\ntoc: false\n---\n"
    )
    assert page.meta.extra == {
        "tags": ("curves", "vision"),
        "image": "static/card.png",
        "toc": False,
    }


def test_updates_front_matter() -> None:
    page, _ = parse(
        "---\ntitle: x\nupdates:\n"
        "  - {date: 2021-05-01, text: Fixed Figure 2}\n"
        "  - {date: 2020-06-01, text: First fix}\n---\n"
    )
    assert page.meta.updates == (
        (datetime.date(2020, 6, 1), "First fix"),
        (datetime.date(2021, 5, 1), "Fixed Figure 2"),
    )


def test_a_build_gives_each_page_the_hash_of_its_own_bytes(prose_site) -> None:
    """The build hands Markup.parse the SHA-256 it computed of the page's bytes, which must be
    the one Markup.parse computes itself from the text."""
    import hashlib

    from circuitpress.build.memo import BuildMemo
    from circuitpress.build.options import BuildOptions
    from circuitpress.build.pipeline import SiteBuild

    site = prose_site({"content/notes.md": "---\ntitle: Curly ’quotes’\n---\n\nUn café.\n"})
    memo = BuildMemo()
    SiteBuild(site, BuildOptions(write=False), memo=memo).run()
    for file, (_, page, _) in memo.parsed.items():
        expected = hashlib.sha256((site / file).read_bytes()).hexdigest()
        assert page.source_hash == expected
