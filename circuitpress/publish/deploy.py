"""`circuitpress publish`: a strict build, then GitHub Pages (ghp-import) or a folder.

What is published is exactly the built site: no drafts (the build leaves them out), no cache,
no sources, and, checked before anything leaves the machine, no absolute path of the author's
computer in any text file.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from circuitpress import __version__
from circuitpress.build.write import check_output_folder
from circuitpress.errors import UserError

if TYPE_CHECKING:
    from circuitpress.build.pipeline import SiteBuild

GIT_TIMEOUT_S = 60
_TEXT = (
    ".html",
    ".htm",
    ".xml",
    ".json",
    ".js",
    ".mjs",
    ".css",
    ".svg",
    ".txt",
    ".md",
    ".map",
    ".webmanifest",
)
_CWD_LOCK = threading.Lock()  # ghp-import runs git in the current folder; chdir is process-wide


def publish_site(
    site: Path,
    *,
    target: str,
    remote: str = "origin",
    branch: str = "gh-pages",
    cname: str | None = None,
    message: str | None = None,
    quiet: bool = False,
) -> None:
    """Build SITE strictly (no drafts) and publish it to a gh-pages branch or a folder."""
    root = Path(site).resolve()
    if target == "gh-pages":
        publish_gh_pages(
            root, remote=remote, branch=branch, cname=cname, message=message, quiet=quiet
        )
    else:
        publish_folder(root, Path(target), quiet=quiet)


# -- the build -------------------------------------------------------------------------------------


def strict_build(root: Path, out: Path) -> "SiteBuild":
    """A strict, draft-free build held in memory, checked for leaked local paths."""
    from circuitpress.build.pipeline import BuildOptions, SiteBuild

    build = SiteBuild(root, BuildOptions(out=out, strict=True, drafts=False, write=False))
    build.run()
    check_no_local_paths(build, root)
    return build


def check_no_local_paths(build: "SiteBuild", root: Path) -> None:
    """Refuse to publish a site whose text files mention the author's site folder."""
    needles = {str(root).encode(), str(root.resolve()).encode()}
    texts: list[tuple[str, bytes]] = [
        (rel, data) for rel, data in build.writer.files.items() if rel.endswith(_TEXT)
    ]
    for rel, source in build.writer.copies.items():
        if rel.endswith(_TEXT):
            with contextlib.suppress(OSError):
                texts.append((rel, Path(source).read_bytes()))
    for rel, data in sorted(texts):
        for needle in needles:
            at = data.find(needle)
            if at >= 0:
                line = data.count(b"\n", 0, at) + 1
                raise UserError(
                    f"the built file {rel} contains the local path {needle.decode()}",
                    file=f"_site/{rel}",
                    line=line,
                    hint="a published site must not reveal local paths; use a site-relative link",
                )


# -- to a folder -----------------------------------------------------------------------------------


def publish_folder(root: Path, target: Path, *, quiet: bool = False) -> None:
    """Build, then swap the site into `target` at once (a temporary sibling, then an exchange).

    The same ownership rule as `build --out` (see build/write.py): a folder holding files that
    no earlier build of this site wrote is refused before the build, and again at the swap;
    the `.git`, `CNAME` and `.nojekyll` kept in it stay."""
    shown = f"--target {target}"
    out = target.expanduser().resolve()
    check_output_folder(root, out, shown)
    build = strict_build(root, out)
    build.writer.bind(root, shown)  # the manifest in root's .circuitpress/; messages name --target
    build.writer.commit()
    if not quiet:
        print(f"Published {len(build.writer.paths())} files to {out}")


# -- to GitHub Pages -------------------------------------------------------------------------------


def publish_gh_pages(
    root: Path,
    *,
    remote: str = "origin",
    branch: str = "gh-pages",
    cname: str | None = None,
    message: str | None = None,
    quiet: bool = False,
) -> None:
    """Build, commit the site as the only content of `branch` (with .nojekyll), push it."""
    import ghp_import

    # git would read a value starting with '-' as an option (`--upload-pack=…` runs a command).
    for flag, value, example in (("--remote", remote, "origin"), ("--branch", branch, "gh-pages")):
        if not value.strip() or value.startswith("-"):
            raise UserError(
                f"{flag} '{value}' is not a git remote or branch name",
                hint=f"e.g. {flag} {example}",
            )
    git = Git(root)
    git.check_repository()
    git.check_identity()
    remote_url = git.remote_url(remote)
    git.check_reachable(remote, remote_url, branch)
    if cname is not None and not re.fullmatch(r"[A-Za-z0-9.-]+", cname):
        raise UserError(
            f"--cname '{cname}' is not a domain name", hint="e.g. --cname circuits.example.org"
        )
    with tempfile.TemporaryDirectory(prefix="circuitpress-publish-") as tmp:
        out = Path(tmp) / "site"
        build = strict_build(root, out)
        build.writer.commit()
        git.sync_branch(remote, branch)
        before = git.head(branch)
        mesg = message or _default_message(git)
        with _cwd(git.top):
            try:
                ghp_import.ghp_import(
                    str(out),
                    mesg=mesg,
                    remote=remote,
                    branch=branch,
                    push=False,
                    nojekyll=True,
                    cname=cname,
                )
            except ghp_import.GhpError as exc:
                raise UserError(
                    f"could not commit the site to branch {branch}: {exc.message}"
                ) from None
            except TypeError:
                # ghp-import 2.1 reports a failed `git fast-import` by writing bytes to the text
                # stdout; git has already said why on stderr.
                raise UserError(
                    f"git could not commit the site to branch {branch}",
                    hint="see git's message above",
                ) from None
        after = git.head(branch)
        if after is None or after == before:
            raise UserError(
                f"could not commit the site to branch {branch}", hint="see git's message above"
            )
        if before is not None and git.tree(before) == git.tree(after):
            git.run(
                "update-ref", f"refs/heads/{branch}", before, after
            )  # nothing changed: no empty commit
            after = before
            changed = False
        else:
            changed = True
        git.push(remote, branch)
    if not quiet:
        state = f"committed {after[:7]}" if changed else "no change since the last publish"
        print(f"Published {len(build.writer.paths())} files to {remote} {branch} ({state}).")


def _default_message(git: "Git") -> str:
    source = git.run("rev-parse", "--short", "HEAD", check=False).strip()
    where = f" from {source}" if source else ""
    return f"Publish site{where} with circuitpress {__version__}"


@contextlib.contextmanager
def _cwd(path: Path) -> Iterator[None]:
    with _CWD_LOCK:
        old = os.getcwd()
        os.chdir(path)
        try:
            yield
        finally:
            os.chdir(old)


class Git:
    """The few git commands publishing needs; every failure becomes a one-line UserError."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.top = root
        if shutil.which("git") is None:
            raise UserError("git is not installed", hint="install git to publish to GitHub Pages")

    def run(self, *args: str, check: bool = True, timeout: float = GIT_TIMEOUT_S) -> str:
        env = dict(os.environ, GIT_TERMINAL_PROMPT="0", LC_ALL="C")  # fail, never prompt
        try:
            done = subprocess.run(
                ["git", *args],
                cwd=self.top,
                capture_output=True,
                text=True,
                timeout=timeout,
                env=env,
            )
        except subprocess.TimeoutExpired:
            raise UserError(
                f"git {args[0]} took longer than {timeout:.0f} s", hint="is the remote reachable?"
            ) from None
        if check and done.returncode != 0:
            raise GitFailed(_last_line(done.stderr) or f"git {args[0]} failed")
        return done.stdout if done.returncode == 0 else ""

    def check_repository(self) -> None:
        try:
            self.top = Path(self.run("rev-parse", "--show-toplevel").strip())
        except GitFailed:
            raise UserError(
                f"{self.root} is not in a git repository",
                hint="git init, then add a remote; or publish to a folder with --target DIR",
            ) from None

    def check_identity(self) -> None:
        # ghp-import writes the commit itself and reads exactly these settings.
        for key, env in (
            ("user.name", "GIT_COMMITTER_NAME"),
            ("user.email", "GIT_COMMITTER_EMAIL"),
        ):
            if not os.environ.get(env) and not self.run("config", key, check=False).strip():
                raise UserError(
                    f"git has no {key} to sign the publish commit with",
                    hint=f'git config {key} "…" (or --global)',
                )

    def remote_url(self, remote: str) -> str:
        url = self.run("remote", "get-url", remote, check=False).strip()
        if url:
            return url
        if (
            re.match(r"^([a-z][a-z0-9+.-]*://|[^/:]+@[^:]+:|/|\.{1,2}/|~)", remote, re.IGNORECASE)
            or Path(remote).exists()
        ):
            return remote  # a URL or a path, used as is
        names = self.run("remote", check=False).split()
        raise UserError(
            f"no git remote named '{remote}'",
            hint=("remotes: " + ", ".join(names))
            if names
            else "git remote add origin URL, or pass --remote URL",
        )

    def check_reachable(self, remote: str, url: str, branch: str) -> None:
        try:
            self.run("ls-remote", "--heads", remote, branch, timeout=30)
        except (GitFailed, UserError) as exc:
            shown = f"'{remote}'" if url == remote else f"'{remote}' ({url})"
            raise UserError(
                f"cannot reach the git remote {shown}: {exc}", hint="check the URL and your network"
            ) from None

    def sync_branch(self, remote: str, branch: str) -> None:
        """Start from the remote's branch when it has one, so the publish is a fast-forward."""
        if not self.run("ls-remote", "--heads", remote, branch, timeout=30).strip():
            return
        try:
            self.run("fetch", "--quiet", remote, f"refs/heads/{branch}", timeout=120)
        except GitFailed as exc:
            raise UserError(f"cannot fetch {branch} from '{remote}': {exc}") from None
        fetched = self.run("rev-parse", "FETCH_HEAD").strip()
        local = self.head(branch)
        # ghp-import rebases onto REMOTE/BRANCH only for named remotes; for a URL remote (or a
        # stale local branch) move the local branch to what was fetched. A local branch with
        # its own unpushed commits is left alone: the push then says what is wrong.
        if local is None or self._is_ancestor(local, fetched):
            self.run("update-ref", f"refs/heads/{branch}", fetched)

    def _is_ancestor(self, a: str, b: str) -> bool:
        done = subprocess.run(
            ["git", "merge-base", "--is-ancestor", a, b], cwd=self.top, capture_output=True
        )
        return done.returncode == 0

    def head(self, branch: str) -> str | None:
        out = self.run(
            "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", check=False
        ).strip()
        return out or None

    def tree(self, commit: str) -> str:
        return self.run("rev-parse", f"{commit}^{{tree}}").strip()

    def push(self, remote: str, branch: str) -> None:
        try:
            self.run(
                "push", "--quiet", remote, f"refs/heads/{branch}:refs/heads/{branch}", timeout=300
            )
        except GitFailed as exc:
            raise UserError(
                f"could not push {branch} to '{remote}': {exc}",
                hint="the site is committed locally; fix the remote and publish again",
            ) from None


class GitFailed(Exception):
    """A git command failed; the message is git's reason, in one line."""


def _last_line(text: str) -> str:
    """git's own reason in one line: its first 'fatal:'/'error:' line, else its last line."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    for line in lines:
        for prefix in ("fatal: ", "error: "):
            if line.startswith(prefix):
                return line[len(prefix) :]
    return lines[-1] if lines else ""
