"""Publishing to a real (local, bare) git repository and to a folder."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from circuitpress.errors import UserError
from circuitpress.publish.deploy import publish_site

from .conftest import article


@pytest.fixture(autouse=True)
def isolated_git(tmp_path, monkeypatch):
    """No global or system git config: identity comes only from what a test sets."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-global-gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    for name in (
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_DIR",
    ):
        monkeypatch.delenv(name, raising=False)


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def repo_site(make_site, tmp_path, *, identity: bool = True) -> tuple[Path, Path]:
    site = make_site(articles={"hello": "Hello, reader.", "secret-draft": "Not yet."})
    (site / "content" / "secret-draft.md").write_text(
        article("Secret draft", "Not yet.", draft=True)
    )
    (site / ".circuitpress" / "cache").mkdir(parents=True)
    (site / ".circuitpress" / "cache" / "entry.npz").write_bytes(b"cache")
    (site / "static" / "logo.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "--quiet", "--bare", str(remote))
    git(site, "init", "--quiet", "-b", "main")
    if identity:
        git(site, "config", "user.name", "Ada Lovelace")
        git(site, "config", "user.email", "ada@example.org")
    git(site, "remote", "add", "origin", str(remote))
    return site, remote


def branch_files(remote: Path, branch: str = "gh-pages") -> list[str]:
    return git(remote, "ls-tree", "-r", "--name-only", branch).split()


def commits(remote: Path, branch: str = "gh-pages") -> int:
    return int(git(remote, "rev-list", "--count", branch))


def test_gh_pages_to_a_bare_repository(make_site, tmp_path):
    site, remote = repo_site(make_site, tmp_path)
    publish_site(site, target="gh-pages", quiet=True)
    files = branch_files(remote)
    assert ".nojekyll" in files and "index.html" in files and "hello/index.html" in files
    assert "static/logo.svg" in files and "404.html" in files
    assert not any(
        f.startswith("secret-draft") or f.endswith(".md") or ".circuitpress" in f for f in files
    )
    assert "CNAME" not in files
    assert commits(remote) == 1
    page = git(remote, "show", "gh-pages:hello/index.html")
    assert "Hello, reader." in page and "EventSource" not in page  # no live-reload script
    # A change: exactly one more commit. No change: none.
    (site / "content" / "hello.md").write_text(article("Hello", "Second version."))
    publish_site(site, target="gh-pages", quiet=True)
    assert commits(remote) == 2
    assert "Second version." in git(remote, "show", "gh-pages:hello/index.html")
    publish_site(site, target="gh-pages", quiet=True)
    assert commits(remote) == 2
    # The temporary folder committed to the branch is no output of the site's to keep track of.
    assert not (site / ".circuitpress" / "outputs").exists()


def test_gh_pages_remote_url_branch_and_cname(make_site, tmp_path):
    site, remote = repo_site(make_site, tmp_path)
    publish_site(
        site,
        target="gh-pages",
        remote=str(remote),
        branch="site",
        cname="circuits.example.org",
        message="v1",
        quiet=True,
    )
    assert git(remote, "show", "site:CNAME").strip() == "circuits.example.org"
    assert git(remote, "log", "-1", "--format=%s", "site").strip() == "v1"
    # A fresh clone without the local branch still appends to the published history.
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "--quiet", str(remote), str(clone))
    git(clone, "config", "user.name", "Bo")
    git(clone, "config", "user.email", "bo@example.org")
    for rel in ("circuitpress.toml", "references.bib", "content/hello.md"):
        (clone / rel).parent.mkdir(parents=True, exist_ok=True)
        (clone / rel).write_text((site / rel).read_text())
    (clone / "content" / "hello.md").write_text(article("Hello", "From the clone."))
    publish_site(clone, target="gh-pages", remote=str(remote), branch="site", quiet=True)
    assert commits(remote, "site") == 2


def test_gh_pages_errors_are_one_line(make_site, tmp_path):
    site, remote = repo_site(make_site, tmp_path, identity=False)
    with pytest.raises(UserError, match="git has no user.name") as err:
        publish_site(site, target="gh-pages", quiet=True)
    assert "\n" not in err.value.format()
    git(site, "config", "user.name", "Ada")
    git(site, "config", "user.email", "ada@example.org")
    git(site, "remote", "add", "nowhere", str(tmp_path / "missing.git"))
    with pytest.raises(UserError, match="cannot reach the git remote 'nowhere'"):
        publish_site(site, target="gh-pages", remote="nowhere", quiet=True)
    with pytest.raises(UserError, match="no git remote named 'upstream'"):
        publish_site(site, target="gh-pages", remote="upstream", quiet=True)
    outside = tmp_path / "plain"  # a site in no repository at all
    outside.mkdir()
    (outside / "circuitpress.toml").write_text((site / "circuitpress.toml").read_text())
    with pytest.raises(UserError, match="is not in a git repository"):
        publish_site(outside, target="gh-pages", quiet=True)


def test_options_that_git_would_read_as_options_are_refused(make_site, tmp_path):
    site, remote = repo_site(make_site, tmp_path)
    # `git ls-remote --upload-pack=CMD` runs CMD (in the site's folder); "a@b:" looks like a URL.
    for remote_arg, branch in (
        ("--upload-pack=touch planted; false a@b:", "gh-pages"),
        (str(remote), "--delete"),
    ):
        with pytest.raises(UserError, match="is not a git remote or branch name"):
            publish_site(site, target="gh-pages", remote=remote_arg, branch=branch, quiet=True)
    assert not (site / "planted").exists()
    assert git(remote, "branch", "--list") == ""


def test_strict_build_stops_a_publish(make_site, tmp_path):
    site, remote = repo_site(make_site, tmp_path)
    (site / "content" / "hello.md").write_text("---\ntitle: [broken\n---\n")
    with pytest.raises(UserError, match="content/hello.md"):
        publish_site(site, target="gh-pages", quiet=True)
    assert git(remote, "branch", "--list").strip() == ""


def test_folder_publish_is_complete_and_clean(make_site, tmp_path):
    site, _ = repo_site(make_site, tmp_path)
    target = tmp_path / "webroot"
    publish_site(site, target=str(target), quiet=True)
    files = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    assert "index.html" in files and "hello/index.html" in files and "static/logo.svg" in files
    assert not any(
        "secret-draft" in f or f.endswith(".md") or ".circuitpress" in f or f.endswith(".bib")
        for f in files
    )
    for path in target.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert str(site).encode() not in data and str(tmp_path).encode() not in data, path
    # A second publish replaces the folder as a whole (a removed article disappears).
    (site / "content" / "hello.md").unlink()
    (site / "content" / "other.md").write_text(article("Other", "New."))
    publish_site(site, target=str(target), quiet=True)
    assert not (target / "hello").exists() and (target / "other" / "index.html").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".webroot")] == []


def test_folder_publish_refuses_dangerous_targets(make_site, tmp_path):
    site, _ = repo_site(make_site, tmp_path)
    for target in (site, site / "content", tmp_path):
        with pytest.raises(UserError):
            publish_site(site, target=str(target), quiet=True)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    with pytest.raises(UserError, match="other files in it"):
        publish_site(site, target=str(mine), quiet=True)
    assert (mine / "thesis.tex").read_text() == "precious"
    # An index.html is no proof that circuitpress wrote the folder.
    (mine / "index.html").write_text("my homepage")
    with pytest.raises(UserError, match="other files in it: index.html, thesis.tex") as err:
        publish_site(site, target=str(mine), quiet=True)
    assert err.value.file == f"--target {mine}"
    assert sorted(p.name for p in mine.iterdir()) == ["index.html", "thesis.tex"]


def test_folder_publish_keeps_the_users_git_cname_and_nojekyll(make_site, tmp_path):
    site, _ = repo_site(make_site, tmp_path)
    target = tmp_path / "webroot"
    publish_site(site, target=str(target), quiet=True)
    git(tmp_path, "init", "--quiet", str(target))
    (target / "CNAME").write_text("circuits.example.org\n")
    (target / ".nojekyll").write_text("")
    (site / "content" / "hello.md").write_text(article("Hello", "Second version."))
    publish_site(site, target=str(target), quiet=True)
    assert "Second version." in (target / "hello" / "index.html").read_text()
    assert (target / "CNAME").read_text() == "circuits.example.org\n"
    assert (target / ".nojekyll").is_file() and (target / ".git" / "HEAD").is_file()
    assert git(target, "rev-parse", "--git-dir").strip() == ".git"


def test_a_folder_another_site_published_is_refused(make_site, tmp_path):
    site, _ = repo_site(make_site, tmp_path)
    target = tmp_path / "webroot"
    publish_site(site, target=str(target), quiet=True)
    other = tmp_path / "other"
    other.mkdir()
    for rel in ("circuitpress.toml", "references.bib"):
        (other / rel).write_text((site / rel).read_text())
    (other / "content").mkdir()
    (other / "content" / "other.md").write_text(article("Other", "Another site."))
    # Its own list of what it wrote does not cover the first site's files.
    with pytest.raises(UserError, match="other files in it"):
        publish_site(other, target=str(target), quiet=True)
    assert (target / "hello" / "index.html").is_file()


def test_a_local_path_in_the_site_stops_the_publish(make_site, tmp_path):
    site, _ = repo_site(make_site, tmp_path)
    (site / "content" / "hello.md").write_text(article("Hello", f"My data is in {site}/data."))
    with pytest.raises(UserError, match="contains the local path") as err:
        publish_site(site, target=str(tmp_path / "out"), quiet=True)
    assert err.value.file == "_site/hello/index.html"
    assert not (tmp_path / "out").exists()
