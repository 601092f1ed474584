"""Watching a site folder for the edits that change the built site.

Watched: content/, static/, themes/, circuitpress.toml and every .bib file. Ignored: the output
and cache folders, hidden folders (.git, the build's temporary `._site.new-*`), and the
temporary files editors write beside the file being saved (vim's .swp and 4913, emacs' .#x and
#x#, backups ending in ~), so one save is one rebuild.
"""

from __future__ import annotations

import queue
import re
import threading
from pathlib import Path

import watchfiles

from circuitpress.config import CONFIG_NAME

WATCHED_DIRS = ("content", "static", "themes")
# Names editors and tools give the files they write beside the one being saved: vim (.swp,
# 4913, ~), emacs (.#x, #x#, flycheck_x), JetBrains (___jb_tmp___), Kate, LibreOffice, nano
# (.save), gedit (.goutputstream-X), sed -i (sedXXXXXX), atomic writers (x.tmp, x.tmp123,
# x.tmp.abc, tmpXXXXXXXX), merge tools (.orig, .rej), backups (.bak, x~, x.~1~), browsers'
# partial downloads and macOS' .DS_Store.
_EDITOR_TEMP = re.compile(
    r"(^\.#|^#.*#$|~$|\.sw[a-p]$|\.swx$|^4913$|\.tmp\d*$|\.tmp\.\w+$|^tmp[a-z0-9_]{8}$|"
    r"\.part$|\.crdownload$|^\.DS_Store$|\.kate-swp$|^\.~lock\.|___jb_(tmp|old)___$|"
    r"\.save$|\.bak$|\.orig$|\.rej$|goutputstream-|^sed[A-Za-z0-9]{6}$|^flycheck_)"
)


class SiteFilter:
    """A watchfiles filter accepting only paths that can change the built site."""

    def __init__(self, root: Path, ignore: tuple[Path, ...] = ()) -> None:
        self.root = root.resolve()
        self.ignore = tuple(p.resolve() for p in ignore)

    def __call__(self, change: watchfiles.Change, path: str) -> bool:
        return self.accepts(Path(path))

    def accepts(self, path: Path) -> bool:
        try:
            rel = path.relative_to(self.root)
        except ValueError:
            return False
        if any(path == p or p in path.parents for p in self.ignore):
            return False
        parts = rel.parts
        if not parts or any(part.startswith(".") or part == "__pycache__" for part in parts):
            return False
        # _site, _build at the top; content/_x is skipped by the build, so not worth a rebuild.
        if parts[0].startswith("_") or (
            parts[0] == "content" and any(p.startswith("_") for p in parts)
        ):
            return False
        if _EDITOR_TEMP.search(parts[-1]):
            return False
        if len(parts) == 1:
            return parts[0] == CONFIG_NAME or parts[0].endswith(".bib") or parts[0] in WATCHED_DIRS
        return parts[0] in WATCHED_DIRS or parts[-1].endswith(".bib")


class Watcher(threading.Thread):
    """Puts each batch of relevant changes (site-relative paths) on `changes`.

    `ready` is set once the OS watch is in place: edits made after that are never missed.
    """

    # Short steps keep the edit-to-reload latency low; a burst of writes (an editor's
    # save, `git checkout`) still arrives as one batch because watchfiles waits for `STEP_MS`
    # of quiet before yielding, up to `DEBOUNCE_MS`.
    STEP_MS = 10
    DEBOUNCE_MS = 400
    TIMEOUT_MS = 100

    def __init__(
        self, root: Path, changes: "queue.Queue[list[str]]", ignore: tuple[Path, ...] = ()
    ) -> None:
        super().__init__(name="circuitpress-watch", daemon=True)
        self.root = root.resolve()
        self.changes = changes
        self.filter = SiteFilter(self.root, ignore)
        self.stop_event = threading.Event()
        self.ready = threading.Event()
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            for batch in watchfiles.watch(
                self.root,
                watch_filter=self.filter,
                debounce=self.DEBOUNCE_MS,
                step=self.STEP_MS,
                rust_timeout=self.TIMEOUT_MS,
                yield_on_timeout=True,  # an empty first batch tells us the watch is in place
                stop_event=self.stop_event,
                raise_interrupt=False,
            ):
                self.ready.set()
                if batch:
                    rels = sorted({Path(p).relative_to(self.root).as_posix() for _, p in batch})
                    self.changes.put(rels)
        except BaseException as exc:  # noqa: BLE001 - reported by the server, never silent
            self.failure = exc
        finally:
            self.ready.set()

    def stop(self) -> None:
        self.stop_event.set()
