"""Nothing outside the site folder is ever published, whatever links the site holds.

Each case links a file the build would publish (a page, a linked folder of pages, an image, a
theme override, a bibliography) to a file outside the site that carries a marker. The build
must fail with one line `FILE:1: links to TARGET, outside the site folder (…)` naming the file
as the author sees it and where the link points, leave `_site` as the last good build left it,
and write the marker nowhere. Links that stay inside the site keep working.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from circuitpress.cli import cli

MARKER = "SECRET-7f3a9c-OUTSIDE"
FIGURE_PAGE = "---\ntitle: Figures\n---\n\n:::{figure} pic.png\nA caption.\n:::\n"
# Lines of FIGURE_PAGE: front matter 1-3, blank 4, the fence on 5.
FIGURE_LINE = 5
PNG = b"\x89PNG\r\n\x1a\n" + MARKER.encode() + b"\x00" * 16


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """Files outside the site folder, each carrying MARKER."""
    folder = tmp_path / "outside"
    (folder / "pages").mkdir(parents=True)
    (folder / "secret.md").write_text(f"---\ntitle: {MARKER}\n---\n\n{MARKER}\n")
    (folder / "pages" / "page.md").write_text(f"---\ntitle: {MARKER}\n---\n\n{MARKER}\n")
    (folder / "secret.png").write_bytes(PNG)
    (folder / "secret.txt").write_text(f"{MARKER}\n")
    (folder / "template.html").write_text(f"{MARKER} {{{{ site.title }}}}\n")
    (folder / "secret.bib").write_text(
        f"@article{{olah2020zoom,\n  author = {{{MARKER}}},\n  title = {{{MARKER}}},\n"
        "  year = {2020}\n}\n"
    )
    return folder


def build(site: Path, *args: str) -> tuple[int, list[str], str]:
    result = CliRunner().invoke(cli, ["build", str(site), "--quiet", *args])
    lines = [line for line in result.output.splitlines() if line.strip()]
    return result.exit_code, lines, result.output


def good_build(site: Path) -> dict[str, bytes]:
    """Build once; return `_site`. The page is then touched so that the next build is not
    skipped as up to date (the stamp does not follow linked folders, nor hash every asset)."""
    code, _, output = build(site)
    assert code == 0, output
    page = site / "content" / "prose.md"
    page.write_text(page.read_text() + "\n")
    return tree_bytes(site / "_site")


def tree_bytes(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def assert_nothing_leaked(site: Path) -> None:
    """No output file (the site, or a stray temporary folder beside it) holds the marker."""
    for out in [site / "_site", *site.glob("._site*")]:
        for rel, data in tree_bytes(out).items():
            assert MARKER.encode() not in data, f"{out.name}/{rel} holds a file from outside"


def link(path: Path, target: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target, target_is_directory=target.is_dir())


def assert_refused(site: Path, shown: str, target: Path, *also: str) -> str:
    """The last good `_site` is kept, the build fails with one line at `shown`."""
    code, lines, output = build(site)
    assert code == 1, output
    assert len(lines) == 1, output
    line = lines[0]
    assert line.startswith(f"{shown}:1: links to "), line
    assert str(target.resolve()) in line, line  # where the link points
    assert "outside the site folder" in line, line
    for fragment in also:
        assert fragment in line, line
    assert "Traceback" not in output
    assert MARKER not in output
    assert_nothing_leaked(site)
    return line


# -- links out of the site: refused, with the file named ----------------------------------------


def test_a_page_that_links_outside(prose_site, outside):
    site = prose_site()
    before = good_build(site)
    link(site / "content" / "leak.md", outside / "secret.md")
    assert_refused(site, "content/leak.md", outside / "secret.md", "copy the file into the site")
    assert tree_bytes(site / "_site") == before, "a refused build leaves _site as it was"


def test_a_linked_folder_of_pages_outside(prose_site, outside):
    site = prose_site()
    good_build(site)
    link(site / "content" / "linked-dir", outside / "pages")
    assert_refused(
        site,
        "content/linked-dir",  # the link itself: a folder outside is never walked
        outside / "pages",
    )


def test_a_figure_image_beside_the_page_outside(prose_site, outside):
    site = prose_site({"content/figs.md": FIGURE_PAGE})
    (site / "content" / "pic.png").write_bytes(b"\x89PNG\r\n\x1a\nfine")
    good_build(site)
    (site / "content" / "pic.png").unlink()
    link(site / "content" / "pic.png", outside / "secret.png")
    assert_refused(
        site, "content/pic.png", outside / "secret.png", f"named in content/figs.md:{FIGURE_LINE}"
    )


def test_a_figure_image_in_static_outside(prose_site, outside):
    # copy_static skips such a link with a warning; the figure would show a broken image.
    site = prose_site({"content/figs.md": FIGURE_PAGE})
    link(site / "static" / "pic.png", outside / "secret.png")
    assert_refused(site, "static/pic.png", outside / "secret.png", "named in content/figs.md")


def test_a_markdown_image_beside_the_page_is_not_published(prose_site, outside):
    # A Markdown image stays a relative link: the file beside the page is never copied, so a
    # link out of the site publishes nothing and is not an error.
    site = prose_site({"content/img.md": "---\ntitle: Img\n---\n\n![a picture](pic.png)\n"})
    link(site / "content" / "pic.png", outside / "secret.png")
    code, _, output = build(site)
    assert code == 0, output
    assert 'src="pic.png"' in (site / "_site" / "img" / "index.html").read_text()
    assert_nothing_leaked(site)


def test_a_theme_asset_outside(prose_site, outside):
    site = prose_site({"themes/distill/assets/ok.txt": "fine\n"})
    good_build(site)
    assert (site / "_site" / "assets" / "theme" / "ok.txt").is_file()
    link(site / "themes" / "distill" / "assets" / "leak.txt", outside / "secret.txt")
    assert_refused(site, "themes/distill/assets/leak.txt", outside / "secret.txt")


def test_a_linked_folder_of_theme_assets_outside(prose_site, outside):
    site = prose_site()
    link(site / "themes" / "distill" / "assets" / "fonts", outside)
    line = assert_refused(
        site,
        "themes/distill/assets/fonts",
        outside,
    )
    assert line


def test_a_theme_template_outside(prose_site, outside):
    site = prose_site()
    good_build(site)
    link(site / "themes" / "distill" / "templates" / "404.html", outside / "template.html")
    assert_refused(site, "themes/distill/templates/404.html", outside / "template.html")


def test_an_included_theme_partial_outside(prose_site, outside):
    # Included from the built-in page.html: the loader refuses it, not a check of one name.
    site = prose_site()
    partial = site / "themes" / "distill" / "templates" / "partials" / "byline.html"
    link(partial, outside / "template.html")
    assert_refused(site, "themes/distill/templates/partials/byline.html", outside / "template.html")


def test_a_front_matter_bibliography_outside(prose_site, outside):
    page = "---\ntitle: Cited\nbibliography: [refs/extra.bib]\n---\n\nAs {cite}`olah2020zoom`.\n"
    site = prose_site({"content/cited.md": page})
    link(site / "refs" / "extra.bib", outside / "secret.bib")
    assert_refused(site, "refs/extra.bib", outside / "secret.bib", "named in content/cited.md:3")


def test_a_front_matter_bibliography_path_that_leaves_the_site(prose_site, outside):
    page = "---\ntitle: Cited\nbibliography: [../outside/secret.bib]\n---\n\nText.\n"
    site = prose_site({"content/cited.md": page})
    code, lines, output = build(site)
    assert code == 1, output
    assert len(lines) == 1, output
    assert lines[0].startswith("content/cited.md:3: bibliography file"), lines[0]
    assert "outside the site folder" in lines[0]
    assert_nothing_leaked(site)


def test_the_site_bibliography_outside(prose_site, outside):
    site = prose_site(drop=("references.bib",))
    link(site / "references.bib", outside / "secret.bib")
    assert_refused(site, "references.bib", outside / "secret.bib")


def test_a_broken_link_is_a_located_error(prose_site):
    site = prose_site()
    link(site / "content" / "gone.md", site / "content" / "nowhere.md")
    result = CliRunner().invoke(cli, ["check", str(site), "--quiet"])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 1, result.output
    assert len(lines) == 1, result.output
    assert lines[0].startswith("content/gone.md:1: is a broken link"), lines[0]


def test_a_broken_link_is_a_located_error_in_build(prose_site):
    site = prose_site()
    link(site / "content" / "gone.md", site / "content" / "nowhere.md")
    code, lines, output = build(site)
    assert code == 1, output
    assert lines[0].startswith("content/gone.md:1: is a broken link"), lines[0]


# -- links that stay inside the site: they work --------------------------------------------------


def test_a_page_linked_to_another_page(prose_site):
    site = prose_site()
    link(site / "content" / "alias.md", site / "content" / "prose.md")
    code, _, output = build(site)
    assert code == 0, output
    assert "A prose article" in (site / "_site" / "alias" / "index.html").read_text()
    assert (site / "_site" / "prose" / "index.html").is_file()


def test_a_linked_folder_inside_the_site_and_a_loop(prose_site):
    site = prose_site({"drafts/extra.md": "---\ntitle: Extra page\n---\n\nText.\n"})
    link(site / "content" / "more", site / "drafts")
    link(site / "content" / "loop", site / "content")  # must not walk forever
    code, _, output = build(site)
    assert code == 0, output
    assert "Extra page" in (site / "_site" / "more" / "extra" / "index.html").read_text()


def test_an_image_linked_to_a_file_in_static(prose_site):
    site = prose_site({"content/figs.md": FIGURE_PAGE})
    data = b"\x89PNG\r\n\x1a\nthe real picture"
    (site / "static").mkdir()
    (site / "static" / "real.png").write_bytes(data)
    link(site / "content" / "pic.png", site / "static" / "real.png")
    code, _, output = build(site)
    assert code == 0, output
    figures = tree_bytes(site / "_site" / "assets" / "figures")
    assert [rel for rel, b in figures.items() if b == data and rel.startswith("pic-")], figures
    assert "assets/figures/pic-" in (site / "_site" / "figs" / "index.html").read_text()


def test_theme_overrides_and_bibliography_linked_inside(prose_site):
    site = prose_site({"static/shared.txt": "shared\n", "bib/refs.bib": ""})
    (site / "bib" / "refs.bib").write_text((site / "references.bib").read_text())
    (site / "references.bib").unlink()
    link(site / "references.bib", site / "bib" / "refs.bib")
    link(site / "themes" / "distill" / "assets" / "shared.txt", site / "static" / "shared.txt")
    (site / "templates-src").mkdir()
    (site / "templates-src" / "404.html").write_text("<p>Lost: {{ site.title }}</p>\n")
    link(
        site / "themes" / "distill" / "templates" / "404.html", site / "templates-src" / "404.html"
    )
    code, _, output = build(site)
    assert code == 0, output
    out = site / "_site"
    assert (out / "assets" / "theme" / "shared.txt").read_text() == "shared\n"
    assert (out / "404.html").read_text() == "<p>Lost: Test site</p>\n"
    assert "Zoom In" in (out / "prose" / "index.html").read_text()


@pytest.mark.parametrize("theme", ["/tmp/elsewhere", "../../../../tmp/elsewhere", "a/b", "x" * 300])
def test_a_theme_is_a_name_never_a_path(prose_site, theme):
    site = prose_site()
    config = site / "circuitpress.toml"
    config.write_text(config.read_text() + f'\n[build]\ntheme = "{theme}"\n')
    code, lines, output = build(site)
    assert code == 1 and len(lines) == 1, output
    assert lines[0].startswith("circuitpress.toml:") and "bad theme name" in lines[0]


def test_a_bibliography_that_is_a_folder_or_a_long_name_is_one_line(prose_site):
    site = prose_site()
    (site / "bibs").mkdir()
    (site / "references.bib").unlink(missing_ok=True)
    (site / "references.bib").symlink_to(site / "bibs", target_is_directory=True)
    code, lines, output = build(site)
    assert code == 1 and len(lines) == 1, output
    assert lines[0].startswith("references.bib:1: is not a file")


def test_a_figure_with_a_very_long_name_is_one_line(prose_site):
    site = prose_site(
        {"content/f.md": "---\ntitle: F\n---\n\n:::{figure} " + "x" * 300 + ".png\n:::\n"}
    )
    code, lines, output = build(site)
    assert code == 1 and len(lines) == 1, output
    assert lines[0].startswith("content/f.md:") and "not found" in lines[0]


def test_ordinary_url_characters_in_page_names_build(prose_site):
    site = prose_site({"content/c++.md": "---\ntitle: C plus plus\n---\n\nText.\n"})
    code, _, output = build(site)
    assert code == 0, output
    assert (site / "_site" / "c++" / "index.html").is_file()


def test_hidden_folders_of_static_are_published_and_links_out_warn_once(prose_site, tmp_path):
    site = prose_site()
    (site / "static" / ".img").mkdir(parents=True)
    (site / "static" / ".img" / "p.png").write_bytes(b"png")
    (site / "static" / ".hidden-file").write_text("not published")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for i in range(50):
        (elsewhere / f"{i}.txt").write_text("outside")
    (site / "static" / "lib").symlink_to(elsewhere, target_is_directory=True)
    code, lines, output = build(site)
    assert code == 0, output
    assert (site / "_site" / "static" / ".img" / "p.png").read_bytes() == b"png"
    assert not (site / "_site" / "static" / ".hidden-file").exists()
    assert not (site / "_site" / "static" / "lib").exists()
    warnings = [line for line in lines if "static/lib" in line]
    assert len(warnings) == 1 and "outside the site folder" in warnings[0], output


def test_a_file_that_cannot_be_read_is_not_called_a_broken_link(tmp_path):
    """site_file names the OS's reason when a path exists but cannot be examined."""
    from circuitpress.errors import UserError
    from circuitpress.paths import site_file

    with pytest.raises(UserError) as err:
        site_file(tmp_path, tmp_path / ("n" * 300 + ".md"), used="content/a.md:3")
    assert "cannot be read: File name too long" in str(err.value.message)
    assert "broken link" not in str(err.value.message) and "content/a.md:3" in str(err.value.hint)
    with pytest.raises(UserError) as err:
        site_file(tmp_path, tmp_path / "gone.png")
    assert "is a broken link" in err.value.message


def test_an_image_many_pages_show_is_looked_up_once_per_build(prose_site, monkeypatch):
    """The pages' plan contexts share what site_image found for the build; a page whose image
    is missing still gets its own located error."""
    from circuitpress.build.pipeline import build_site
    from circuitpress.errors import UserError
    from circuitpress.markup import page as page_module

    page = "---\ntitle: P{n}\n---\n\n:::{{figure}} shared.png\nA caption.\n:::\n"
    files = {f"content/p{n}.md": page.format(n=n) for n in range(4)}
    root = prose_site({**files, "static/shared.png": "png"})
    calls = []
    real = page_module.site_image
    monkeypatch.setattr(page_module, "site_image", lambda *a, **k: calls.append(a) or real(*a, **k))
    build_site(root)
    assert len(calls) == 1
    (root / "content" / "p9.md").write_text(page.format(n=9).replace("shared", "missing"))
    with pytest.raises(UserError) as err:
        build_site(root)
    assert err.value.file == "content/p9.md"
    assert "image 'missing.png' not found" in err.value.message
    assert len(calls) == 3  # one for the build before, two for this one: shared.png, missing.png
