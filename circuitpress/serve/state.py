"""What the preview server serves: the last good build, the current error, and the rebuild gate.

One builder thread publishes snapshots; many request threads read them. A request that arrives
while a rebuild runs waits for it (a half-built site is never served), and the server-sent-event
threads wait here for the next change.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Snapshot:
    """One complete build, in memory: generated files and static files copied as they are."""

    files: dict[str, bytes]
    copies: dict[str, Path]
    base_path: str = "/"
    warnings: tuple[str, ...] = ()
    seconds: float = 0.0
    # (path, size, mtime) of the static files when built: they are read at request time, so an
    # edited image changes the site without changing `copies`.
    stamp: tuple[tuple[str, int, int], ...] = ()
    # Pages with a "computing" placeholder: their analyses are not in the cache yet.
    pending: int = 0

    def has(self, rel: str) -> bool:
        return rel in self.files or rel in self.copies

    def same_output(self, other: "Snapshot") -> bool:
        """True when serving `other` instead of self shows exactly the same site."""
        return (
            self.base_path == other.base_path
            and self.files == other.files
            and self.copies == other.copies
            and self.stamp == other.stamp
        )


def copies_stamp(copies: dict[str, Path]) -> tuple[tuple[str, int, int], ...]:
    """(path, size, mtime) of every static file, so an edited image counts as a change."""
    stamp = []
    for rel, source in sorted(copies.items()):
        try:
            st = os.stat(source)
            stamp.append((rel, st.st_size, st.st_mtime_ns))
        except OSError:
            stamp.append((rel, -1, -1))
    return tuple(stamp)


@dataclass(frozen=True)
class View:
    """What one request sees: consistent, taken under the lock."""

    snapshot: Snapshot | None
    error: str | None
    generation: str
    version: int
    progress: str | None = None  # what the background computation is doing, in words
    ticks: int = 0  # changes of `progress`


class PreviewState:
    """The shared state of the preview server, guarded by one condition variable."""

    def __init__(self, token: str) -> None:
        self._cond = threading.Condition()
        self._token = token  # differs per server process, so a restarted server reloads pages
        self._snapshot: Snapshot | None = None
        self._error: str | None = None
        self._good = 0  # successful builds that changed the output
        self._version = 0  # any change a browser should hear about (reload or error)
        self._building = False
        self._progress: str | None = None
        self._ticks = 0
        self.stopping = False

    def _view(self) -> View:
        generation = f"{self._token}-{self._good}"
        return View(
            self._snapshot, self._error, generation, self._version, self._progress, self._ticks
        )

    def begin_build(self) -> None:
        with self._cond:
            self._building = True

    def finish_build(
        self, snapshot: Snapshot | None, error: str | None, *, keep_error: bool = False
    ) -> bool:
        """Publish a build's outcome (a snapshot, or an error); True when pages must reload.
        With `keep_error`, a good snapshot is published under the error already shown (the
        background computation's, which this build did not fix)."""
        with self._cond:
            self._building = False
            reload = False
            if error is None and keep_error and self._error is not None and snapshot is not None:
                reload = self._snapshot is None or not self._snapshot.same_output(snapshot)
                self._snapshot = snapshot
                if reload:
                    self._good += 1
                    self._version += 1
                self._cond.notify_all()
                return reload
            if error is not None:
                changed = error != self._error
                self._error = error
            else:
                if snapshot is None:
                    raise ValueError("a good build needs a snapshot")
                # A fix that restores the last good output still reloads: the overlay must go.
                reload = (
                    self._snapshot is None
                    or self._error is not None
                    or not self._snapshot.same_output(snapshot)
                )
                self._snapshot = snapshot
                self._error = None
                if reload:
                    self._good += 1
                changed = reload
            if changed:
                self._version += 1
            self._cond.notify_all()
            return reload

    def report_error(self, error: str) -> None:
        """An error from outside a build (the background computation): shown over the last
        good site until the next build succeeds."""
        with self._cond:
            if error != self._error:
                self._error = error
                self._version += 1
                self._cond.notify_all()

    def set_progress(self, text: str | None) -> None:
        """What the background computation is doing; open pages show it."""
        with self._cond:
            if text != self._progress:
                self._progress = text
                self._ticks += 1
                self._cond.notify_all()

    def current(self, timeout: float) -> View:
        """The state once no rebuild is running (or after `timeout` seconds: the last good site)."""
        with self._cond:
            self._cond.wait_for(lambda: not self._building or self.stopping, timeout)
            return self._view()

    def peek(self) -> View:
        with self._cond:
            return self._view()

    def next_change(self, seen: int, timeout: float, ticks: int | None = None) -> View | None:
        """The state after the next change past version `seen` (or past progress `ticks`,
        when given); None on timeout or stop."""
        with self._cond:
            ok = self._cond.wait_for(
                lambda: (
                    self._version != seen
                    or (ticks is not None and self._ticks != ticks)
                    or self.stopping
                ),
                timeout,
            )
            if self.stopping or not ok:
                return None
            return self._view()

    def stop(self) -> None:
        with self._cond:
            self.stopping = True
            self._cond.notify_all()
