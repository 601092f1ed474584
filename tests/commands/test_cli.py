"""The commands end to end on prose sites (no models, so no torch)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from circuitpress.cli import cli


def build(site: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["build", str(site), "--quiet", *args])
    assert result.exit_code == 0, result.output
    return result.output


def tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_new_makes_a_site_that_builds(tmp_path):
    result = CliRunner().invoke(cli, ["new", str(tmp_path / "notes")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "notes" / "circuitpress.toml").is_file()
    build(tmp_path / "notes")
    html = (tmp_path / "notes" / "_site" / "first-article" / "index.html").read_text()
    assert "A first look inside shapes-a" in html


def test_new_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    result = CliRunner().invoke(cli, ["new", str(tmp_path / "x")])
    assert result.exit_code == 1
    assert "not empty" in result.output


def test_build_writes_the_interface_paths(prose_site):
    site = prose_site()
    build(site)
    out = site / "_site"
    for rel in ("index.html", "prose/index.html", "404.html", "sitemap.xml", "feed.xml"):
        assert (out / rel).is_file(), rel
    html = (out / "prose" / "index.html").read_text()
    assert "<math" in html, "math is MathML at build time"
    assert "Gödel" in html and "Über formal unentscheidbare Sätze" in html, "BibTeX accents decoded"
    assert 'href="#ref-olah2020zoom"' in html


def test_build_is_byte_identical(prose_site, tmp_path, monkeypatch):
    site = prose_site()
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    build(site, "--out", str(tmp_path / "one"))
    build(site, "--out", str(tmp_path / "two"))
    one, two = tree(tmp_path / "one"), tree(tmp_path / "two")
    assert one == two
    for data in one.values():
        assert str(site).encode() not in data, "no absolute local paths in the output"


def test_base_url_sub_path(prose_site):
    site = prose_site(
        {"circuitpress.toml": '[site]\ntitle = "T"\nbase_url = "https://example.org/proj/"\n'}
    )
    build(site)
    html = (site / "_site" / "prose" / "index.html").read_text()
    for url in re.findall(r'(?:href|src)="(/[^"]*)"', html):
        assert url.startswith("/proj/"), url


def test_drafts_are_left_out_unless_asked(prose_site):
    site = prose_site({"content/wip.md": "---\ntitle: Work in progress\ndraft: true\n---\nSoon.\n"})
    build(site)
    assert not (site / "_site" / "wip").exists()
    assert "Work in progress" not in (site / "_site" / "index.html").read_text()
    build(site, "--drafts")
    assert (site / "_site" / "wip" / "index.html").is_file()


def test_static_files_and_theme_overrides(prose_site):
    site = prose_site(
        {
            "static/data.txt": "hello",
            "themes/distill/assets/css/extra.css": "body { --x: 1; }",
        }
    )
    build(site)
    assert (site / "_site" / "static" / "data.txt").read_text() == "hello"


def test_usage_error_exits_2(prose_site):
    result = CliRunner().invoke(cli, ["build", "--device", "tpu"])
    assert result.exit_code == 2


def test_internal_error_exits_3(prose_site, monkeypatch):
    import circuitpress.build.pipeline

    def boom(*a, **k):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(circuitpress.build.pipeline, "build_site", boom)
    result = CliRunner().invoke(cli, ["build", str(prose_site())])
    assert result.exit_code == 3
    assert "internal error" in result.output and "Traceback" not in result.output


def test_check_writes_nothing(prose_site):
    site = prose_site()
    result = CliRunner().invoke(cli, ["check", str(site)])
    assert result.exit_code == 0, result.output
    assert not (site / "_site").exists()


def test_python_dash_m():
    out = subprocess.run(
        [sys.executable, "-m", "circuitpress", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0
    for command in ("new", "build", "serve", "publish", "check", "models"):
        assert command in out.stdout


def test_prose_build_never_imports_torch(prose_site):
    site = prose_site()
    code = (
        "import sys; from circuitpress.build.pipeline import build_site; "
        f"build_site({str(site)!r}); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_noop_rebuild_is_up_to_date_and_edits_are_not(prose_site):
    from circuitpress.build.pipeline import build_site

    site = prose_site()
    first = build_site(site)
    assert not first.up_to_date
    assert build_site(site).up_to_date
    page = site / "content" / "prose.md"
    page.write_text(page.read_text().replace("A note.", "A changed note."))
    third = build_site(site)
    assert not third.up_to_date
    assert "A changed note." in (site / "_site" / "prose" / "index.html").read_text()
    (site / "_site" / "prose" / "index.html").write_text("tampered")
    assert not build_site(site).up_to_date, "an output folder changed by hand is rebuilt"
    assert "A changed note." in (site / "_site" / "prose" / "index.html").read_text()
    assert build_site(site).up_to_date
    assert not build_site(
        site,
        __import__("circuitpress.build.pipeline", fromlist=["BuildOptions"]).BuildOptions(
            drafts=True
        ),
    ).up_to_date


def test_out_never_replaces_the_authors_files(prose_site, tmp_path):
    site = prose_site()
    runner = CliRunner()
    for out in (site, site / "content", site / "static" / "x", tmp_path):
        result = runner.invoke(cli, ["build", str(site), "--quiet", "--out", str(out)])
        assert result.exit_code == 1, (out, result.output)
        assert "--out" in result.output
    assert (site / "content" / "prose.md").is_file()
    build(site, "--out", str(tmp_path / "fresh"))
    build(site, "--out", str(tmp_path / "fresh"))  # an earlier build may be replaced


def test_static_links_outside_the_site_are_not_copied(prose_site, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("private")
    site = prose_site({"static/ok.txt": "fine"})
    (site / "static" / "leak.txt").symlink_to(secret)
    result = CliRunner().invoke(cli, ["build", str(site)])
    assert result.exit_code == 0, result.output
    assert "outside the site" in result.output
    assert (site / "_site" / "static" / "ok.txt").is_file()
    assert not (site / "_site" / "static" / "leak.txt").exists()


def test_config_not_utf8(prose_site):
    site = prose_site()
    (site / "circuitpress.toml").write_bytes(b'[site]\ntitle = "caf\xe9"\n')
    result = CliRunner().invoke(cli, ["build", str(site)])
    assert result.exit_code == 1
    assert result.output.startswith("circuitpress.toml:2: the file is not UTF-8")


def test_help_lists_every_command_without_truncating():
    result = CliRunner().invoke(cli, ["--help"], terminal_width=80)
    assert result.exit_code == 0
    commands = result.output.split("Commands:", 1)[1]
    for name in ("build", "check", "models", "new", "publish", "serve"):
        assert f"  {name} " in commands, name
    assert "..." not in commands and "…" not in commands, commands


def test_serve_takes_the_build_options():
    result = CliRunner().invoke(cli, ["serve", "--help"], terminal_width=100)
    for option in ("--device", "--jobs", "--strict", "--drafts", "--port", "--host"):
        assert option in result.output, option
