"""The built-in theme's compiled templates, kept between builds (render/jinja.py,
CompiledTemplates): used again, compiled afresh when their source changes, never for a site's
own templates, and never read from a folder or file someone else could have written."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import jinja2
import pytest
from theme_stand_ins import FrontMatter, RenderedPage, make_config

from circuitpress.render import jinja
from circuitpress.render.html import BUILTIN_THEMES, Theme


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    return home / "circuitpress" / "templates"


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the templates Jinja compiled from their source."""
    names: list[str] = []
    compile = jinja2.Environment.compile

    def counted(self, source, name=None, filename=None, raw=False, defer_init=False):  # type: ignore[no-untyped-def]
        names.append(name)
        return compile(self, source, name, filename, raw, defer_init)

    monkeypatch.setattr(jinja2.Environment, "compile", counted)
    return names


def page(theme: Theme) -> str:
    return theme.render_page(FrontMatter(), RenderedPage(), slug="a", series_nav=None, draft=False)


posix_only = pytest.mark.skipif(not hasattr(os, "getuid"), reason="the cache needs a user id")


@posix_only
def test_the_builtin_themes_templates_are_compiled_once(
    tmp_path: Path, cache_home: Path, compiles: list[str]
) -> None:
    site = tmp_path / "site"
    first = page(Theme(make_config(site)))
    assert "page.html" in compiles and "partials/byline.html" in compiles
    assert stat.S_IMODE(cache_home.stat().st_mode) == 0o700
    files = sorted(cache_home.iterdir())
    assert len(files) == len(compiles)
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    compiles.clear()
    assert page(Theme(make_config(site))) == first
    assert compiles == []


@posix_only
def test_a_sites_override_is_used_and_never_kept(
    tmp_path: Path, cache_home: Path, compiles: list[str]
) -> None:
    site = tmp_path / "site"
    page(Theme(make_config(site)))  # the built-in byline, kept
    override = site / "themes" / "distill" / "templates" / "partials" / "byline.html"
    override.parent.mkdir(parents=True)
    override.write_text("<p>my byline</p>\n")
    kept = sorted(cache_home.iterdir())
    compiles.clear()
    assert "<p>my byline</p>" in page(Theme(make_config(site)))
    assert compiles == ["partials/byline.html"]
    assert sorted(cache_home.iterdir()) == kept


@posix_only
def test_an_edited_template_is_compiled_again(
    tmp_path: Path, cache_home: Path, compiles: list[str]
) -> None:
    folder = tmp_path / "theme"
    folder.mkdir()
    (folder / "t.html").write_text("one {{ x }}")

    def render() -> str:
        env = jinja.Environment(loader=jinja2.FileSystemLoader(str(folder)), autoescape=True)
        env.bytecode_cache = jinja.CompiledTemplates.create(env, (tmp_path,))
        return env.get_template("t.html").render(x="<x>")

    assert render() == "one &lt;x&gt;" and compiles == ["t.html"]
    assert render() == "one &lt;x&gt;" and compiles == ["t.html"]
    (folder / "t.html").write_text("two {{ x }}")
    assert render() == "two &lt;x&gt;" and compiles == ["t.html", "t.html"]
    assert render() == "two &lt;x&gt;" and len(compiles) == 2
    assert len(list(cache_home.iterdir())) == 1  # written over, not beside


@posix_only
def test_nothing_is_written_under_dont_write_bytecode(
    tmp_path: Path, cache_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    page(Theme(make_config(tmp_path / "site")))
    assert not cache_home.exists() or not list(cache_home.iterdir())


@posix_only
@pytest.mark.parametrize("mistake", ["folder-writable", "file-writable", "folder-link", "garbage"])
def test_a_cache_others_could_have_written_is_not_used(
    tmp_path: Path, cache_home: Path, compiles: list[str], mistake: str
) -> None:
    site = tmp_path / "site"
    first = page(Theme(make_config(site)))
    files = sorted(cache_home.iterdir())
    if mistake == "folder-writable":
        cache_home.chmod(0o777)
    elif mistake == "file-writable":
        for f in files:
            f.chmod(0o666)
    elif mistake == "folder-link":
        real = cache_home.with_name("real")
        cache_home.rename(real)
        cache_home.symlink_to(real, target_is_directory=True)
    else:
        for f in files:
            f.write_bytes(f.read_bytes()[:-40])
    compiles.clear()
    assert page(Theme(make_config(site))) == first
    assert len(compiles) == len(files)


@posix_only
@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="chown needs root")
def test_a_cache_of_another_user_is_not_used(
    tmp_path: Path, cache_home: Path, compiles: list[str]
) -> None:
    site = tmp_path / "site"
    first = page(Theme(make_config(site)))
    for f in cache_home.iterdir():
        os.chown(f, 12345, 12345)
    compiles.clear()
    assert page(Theme(make_config(site))) == first
    assert compiles


def test_only_the_builtin_themes_are_kept() -> None:
    env = jinja.Environment()
    cache = jinja.CompiledTemplates.create(env, (BUILTIN_THEMES,))
    if cache is None:
        pytest.skip("no private cache folder here")
    builtin = str(BUILTIN_THEMES / "distill" / "templates" / "page.html")
    assert cache.get_bucket(env, "page.html", builtin, "x").key
    assert not cache.get_bucket(env, "page.html", "/site/themes/distill/page.html", "x").key
    assert not cache.get_bucket(env, "page.html", f"{BUILTIN_THEMES}-other/page.html", "x").key


@posix_only
def test_a_function_deciding_autoescape_keeps_the_cache_the_same_across_processes(
    tmp_path: Path, cache_home: Path
) -> None:
    """select_autoescape() returns a function whose repr holds an address: the cache's name
    for the settings must not, or each process would write files no process reads again."""
    folder = tmp_path / "theme"
    folder.mkdir()
    (folder / "t.html").write_text("{{ x }}")
    code = (
        "import jinja2; from circuitpress.render import jinja; "
        f"env = jinja.Environment(loader=jinja2.FileSystemLoader({str(folder)!r}), "
        "autoescape=jinja2.select_autoescape()); "
        f"env.bytecode_cache = jinja.CompiledTemplates.create(env, ({str(tmp_path)!r},)); "
        "print(env.get_template('t.html').render(x='<x>'))"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home.parent.parent)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        assert out.returncode == 0 and out.stdout == "&lt;x&gt;\n", out.stderr
    assert len(list(cache_home.iterdir())) == 1


@posix_only
def test_files_written_long_ago_are_removed_when_one_is_next_written(
    tmp_path: Path, cache_home: Path, compiles: list[str]
) -> None:
    """Another Jinja, Python or circuitpress leaves files no build reads again: the first
    write of a process removes those older than 30 days, and nothing newer."""
    site = tmp_path / "site"
    first = page(Theme(make_config(site)))
    kept = sorted(cache_home.iterdir())
    stale, recent = cache_home / ("0" * 64), cache_home / ("1" * 64)
    for path, days in ((stale, 40), (recent, 10)):
        path.write_bytes(b"circuitpress template\0another version\0")
        path.chmod(0o600)
        when = time.time() - days * 24 * 3600
        os.utime(path, (when, when))
    kept[0].unlink()  # the next build compiles one template again, and writes it
    compiles.clear()
    assert page(Theme(make_config(site))) == first
    assert len(compiles) == 1
    assert not stale.exists() and recent.exists()
    assert sorted(cache_home.iterdir()) == sorted([*kept, recent])
