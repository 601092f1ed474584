"""The link check on real in-memory builds and on hand-made pages."""

from __future__ import annotations

from click.testing import CliRunner

from circuitpress.build.pipeline import BuildOptions, SiteBuild
from circuitpress.cli import cli
from circuitpress.publish.linkcheck import LinkChecker, check_links, probe


def problems(site, **kwargs):
    build = SiteBuild(site, BuildOptions(write=False))
    build.run()
    return [w.format() for w in check_links(build, **kwargs)]


def test_a_clean_site_has_no_problems(make_site):
    site = make_site(
        articles={
            "one": "See [two](../two/) and [its section](../two/#part-b).",
            "two": "## Part B\n\nText.",
        }
    )
    assert problems(site) == []


def test_planted_broken_link_and_anchor_are_found(make_site):
    body = (
        "Line one.\n\nSee [gone](../gone/), [a bad anchor](#nowhere)"
        " and [elsewhere](../two/#missing-part)."
    )
    site = make_site(articles={"one": body, "two": "## Part B\n\nText."})
    found = problems(site)
    assert len(found) == 3, found
    gone = next(p for p in found if "'../gone/'" in p)
    # Located at the line of the Markdown that has the link: the line the author must edit.
    source = (site / "content" / "one.md").read_text().splitlines()
    line = next(i for i, text in enumerate(source, 1) if "../gone/" in text)
    assert gone.startswith(f"content/one.md:{line}: broken link"), gone
    assert any("no element with id 'nowhere' in this page" in p for p in found)
    assert any("no element with id 'missing-part' in two/index.html" in p for p in found)


def test_base_path_is_honoured(make_site):
    site = make_site(
        base_url="https://me.github.io/proj/",
        articles={"one": "[abs](/proj/one/) [outside](/other/)"},
    )
    found = problems(site)
    assert len(found) == 1 and "leaves the site's base path /proj/" in found[0]


def test_static_files_count_as_targets(make_site):
    site = make_site(articles={"one": "![logo](/static/logo.png) [pdf](/static/paper.pdf)"})
    (site / "static" / "logo.png").write_bytes(b"\x89PNG")
    found = problems(site)
    assert len(found) == 1 and "static/paper.pdf" in found[0]


def test_check_command_fails_on_a_broken_link(make_site):
    site = make_site(articles={"one": "[gone](../gone/)"})
    result = CliRunner().invoke(cli, ["check", str(site)])
    assert result.exit_code == 1
    assert "content/one.md:" in result.output and "broken link '../gone/'" in result.output


def test_a_link_the_markdown_does_not_contain_is_located_in_the_built_page(make_site):
    site = make_site(articles={"one": "Text."})
    override = site / "themes" / "distill" / "templates" / "partials" / "title.html"
    override.parent.mkdir(parents=True)
    override.write_text('<h1>{{ page.title }}</h1>\n<a href="{{ url("nowhere/") }}">x</a>\n')
    found = problems(site)
    assert len(found) == 1 and found[0].startswith("_site/one/index.html:"), found
    assert "the page is built from content/one.md" in found[0]


def test_lines_attributes_and_forms():
    files = {
        "index.html": b'<p>\n<img src="a.png">\n<a name="x"></a><a href="#x">ok</a>\n'
        b'<script src="/s.js"></script>\n'
        b'<a href="mailto:a@b">m</a><a href="javascript:void(0)">j</a>'
        b'<a href="//cdn.example.org/x">e</a>\n'
        b'<svg><use href="#icon"/></svg>\n<a href="a.png#frag">images have no anchors to check</a>',
        "a.png": b"",
    }
    found = [w.format() for w in LinkChecker(files).internal()]
    assert found[0].startswith("_site/index.html:4: broken link '/s.js'")
    assert found[1].startswith("_site/index.html:6: broken anchor '#icon'")
    assert len(found) == 2


def test_srcset_candidates_are_checked() -> None:
    files = {
        "index.html": b'<img src="a.png" srcset="a.png 1x, a@2x.png 2x, /b.png 640w">\n'
        b'<picture><source srcset="data:image/png;base64,AAAA 1x"></picture>',
        "a.png": b"",
        "b.png": b"",
    }
    found = [w.format() for w in LinkChecker(files).internal()]
    assert len(found) == 1 and found[0].startswith("_site/index.html:1: broken link 'a@2x.png'"), (
        found
    )


def test_external_links_only_when_asked_and_offline_is_reported(make_site):
    site = make_site(articles={"one": "[far](http://127.0.0.1:9/nothing-listens-here)"})
    assert problems(site) == []
    found = problems(site, external=True)
    # Offline (as here), the theme's licence link cannot be reached either: reported, no crash.
    mine = [p for p in found if "127.0.0.1:9" in p]
    assert (
        len(mine) == 1
        and "could not be reached" in mine[0]
        and mine[0].startswith("content/one.md:")
    )
    assert probe("http://127.0.0.1:9/", 2.0) is not None


def test_srcset_urls_follow_the_candidate_grammar() -> None:
    from circuitpress.publish.linkcheck import srcset_urls

    assert srcset_urls("a.png 1x, data:image/png;base64,AAAA 2x") == ["a.png"]
    assert srcset_urls("data:image/png;base64,AAA 1x, b.png 2x") == ["b.png"]
    assert srcset_urls("img.png?w=1,2 1x") == ["img.png?w=1,2"]
    assert srcset_urls("a.png, b.png 640w,c.png") == ["a.png", "b.png", "c.png"]
