"""`circuitpress serve`: build in memory, serve it, rebuild on change, reload open pages.

Threads: the HTTP server (one thread per connection), the watcher (watchfiles → a queue), one
builder that turns each batch of changes into a new in-memory snapshot, and one computer that
runs the analyses. Requests that come in while a rebuild runs wait for it, so a half-built
site is never served; a failed build keeps the last good site on screen with the error over it.

Preview at once: the builder's builds never run an analysis (they take results from the cache,
as `check` does), so the first page answers in seconds even on a cold cache, each missing
figure a "computing" placeholder. The computer then runs a full build's analyses in the
background; the engine stores each group's results in the cache as the group finishes, and
each time the builder rebuilds from the cache and open pages reload, figures filling in as
they finish. Only the builder publishes snapshots, so what a URL shows is always a whole page
built from one state of the sources.
"""

from __future__ import annotations

import os
import queue
import secrets
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

from circuitpress.build.memo import BuildMemo
from circuitpress.build.options import BuildOptions
from circuitpress.build.plan import Progress
from circuitpress.config import CONFIG_NAME, load_config
from circuitpress.errors import UserError
from circuitpress.serve.inject import EVENTS_PATH, error_page, inject, sse
from circuitpress.serve.paths import content_type, inside, safe_relative
from circuitpress.serve.state import PreviewState, Snapshot, View, copies_stamp
from circuitpress.serve.watch import Watcher

Builder = Callable[[], Snapshot]

# The changes-queue entry of the computer: new results are in the cache.
RESULTS = "<analysis results>"
# At most this often does an open page hear how far the background computation is.
PROGRESS_EVERY_S = 0.5

# How long a request waits for a running rebuild before it gets the last good site: long
# enough for any prose rebuild, short enough that a first-time model run does not hang tabs.
REBUILD_WAIT_S = 120.0
KEEPALIVE_S = 10.0


class SiteBuilder:
    """Builds the site in memory (nothing written), keeping a BuildMemo across builds so a
    rebuild re-renders only what changed and a fully cached site never imports torch.

    Calling it is the quick build: results come from the cache only, and a figure whose
    result is missing is a placeholder (`Snapshot.pending` counts such pages). `fill_cache`
    is the slow part: a build that computes everything missing (and keeps nothing else)."""

    def __init__(
        self,
        root: Path,
        *,
        drafts: bool = True,
        progress: Progress | None = None,
        device: str | None = None,
        jobs: int | None = None,
        strict: bool = False,
    ) -> None:
        self.root = root
        self.drafts = drafts
        self.progress = progress
        self.device, self.jobs, self.strict = device, jobs, strict
        self.memo = BuildMemo()
        # The computer's own: builds in two threads share no parser, page or result memo.
        self.compute_memo = BuildMemo()

    def __call__(self) -> Snapshot:
        from circuitpress.build.pipeline import SiteBuild

        options = BuildOptions(
            drafts=self.drafts,
            write=False,
            compute=False,
            progress=self.progress,
            device=self.device,
            jobs=self.jobs,
            strict=self.strict,
        )
        build = SiteBuild(self.root, options, memo=self.memo)
        report = build.run()
        return Snapshot(
            files=dict(build.writer.files),
            copies=dict(build.writer.copies),
            base_path=build.config.base_path,
            warnings=tuple(w.format() for w in report.warnings),
            seconds=report.seconds,
            stamp=copies_stamp(build.writer.copies),
            pending=report.pending_pages,
        )

    def fill_cache(self, progress: Progress | None) -> int:
        """Compute every analysis of the site that is not in the cache; how many it ran."""
        from circuitpress.build.pipeline import SiteBuild

        options = BuildOptions(
            drafts=self.drafts, write=False, progress=progress, device=self.device, jobs=self.jobs
        )
        return SiteBuild(self.root, options, memo=self.compute_memo).run().computed


class PreviewServer:
    """The preview server; start()/stop() make it usable from tests in a thread."""

    def __init__(
        self,
        site: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 8000,
        drafts: bool = True,
        quiet: bool = False,
        builder: Builder | None = None,
        watch: bool = True,
        display: Callable[[], Any] | None = None,
    ) -> None:
        self.root = Path(site).resolve()
        self.host, self.port = host, port
        self.quiet = quiet
        self.builder: Builder = builder or SiteBuilder(self.root, drafts=drafts)
        self.watch = watch
        # The terminal's progress display of one background computation (None: nothing
        # shown); it has the engine listener's methods and a stop().
        self.display = display
        self.computes = 0  # finished background computations (tests wait on it)
        self.current_display: Any = None
        # The last background computation failed: refreshes keep its error up and do not ask
        # for it again; the next edit does.
        self._compute_failed = False
        self._compute_wanted = threading.Event()
        self.state = PreviewState(secrets.token_hex(4))
        self.changes: "queue.Queue[list[str]]" = queue.Queue()
        self.builds = 0  # finished builds, good or bad (tests wait on it)
        self._built = threading.Condition()
        self._httpd: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._watcher: Watcher | None = None
        self._last_warnings: tuple[str, ...] = ()

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the server is not started")
        host, port = self._httpd.server_address[:2]
        shown = str(host)
        if ":" in shown:
            shown = f"[{shown}]"
        view = self.state.peek()
        base = view.snapshot.base_path if view.snapshot else _configured_base(self.root)
        return f"http://{shown}:{port}{base}"

    def start(self) -> "PreviewServer":
        """Bind, build once (an error is shown, not raised), start watching and serving."""
        self._httpd = _bind(self.host, self.port)
        self._httpd.preview = self  # type: ignore[attr-defined]
        if self.watch:
            self._watcher = Watcher(self.root, self.changes)
            self._watcher.start()
            self._watcher.ready.wait(10)
        self._build(initial=True)
        serve = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="circuitpress-http",
            daemon=True,
        )
        builder = threading.Thread(target=self._build_loop, name="circuitpress-build", daemon=True)
        self._threads = [serve, builder]
        if hasattr(self.builder, "fill_cache"):
            computer = threading.Thread(
                target=self._compute_loop, name="circuitpress-compute", daemon=True
            )
            self._threads.append(computer)
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self.state.stop()
        self._compute_wanted.set()  # wake the computer
        if self._watcher is not None:
            self._watcher.stop()
        self.changes.put([])  # wake the builder
        if self._httpd is not None:
            if self._threads:  # shutdown() waits for serve_forever, so only once it runs
                self._httpd.shutdown()
            self._httpd.server_close()
        for thread in self._threads + ([self._watcher] if self._watcher else []):
            # The computer stops at its engine's next progress report (see _Cancelled).
            thread.join(5)

    @property
    def computing(self) -> bool:
        """Whether a background computation is still running (after stop: not yet ended)."""
        return any(t.name == "circuitpress-compute" and t.is_alive() for t in self._threads)

    def __enter__(self) -> "PreviewServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_for_builds(self, count: int, timeout: float = 30.0) -> bool:
        """Block until `count` builds have finished (tests and the benchmark use it)."""
        with self._built:
            return self._built.wait_for(lambda: self.builds >= count, timeout)

    def wait_until_complete(self, timeout: float) -> bool:
        """Block until the served site has no placeholder and no computation is wanted."""
        deadline = time.monotonic() + timeout
        with self._built:
            return self._built.wait_for(
                lambda: (
                    (snapshot := self.state.peek().snapshot) is not None
                    and snapshot.pending == 0
                    and not self._compute_wanted.is_set()
                ),
                max(0.0, deadline - time.monotonic()),
            )

    # -- building ------------------------------------------------------------------------------

    def _build_loop(self) -> None:
        while not self.state.stopping:
            batch = self.changes.get()
            if self.state.stopping:
                return
            while True:  # everything that piled up during the last build: one rebuild
                try:
                    batch = batch + self.changes.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._build(changed=batch)

    def _build(self, *, initial: bool = False, changed: list[str] | None = None) -> None:
        # A batch of only the computer's news (finished groups) is a refresh from the cache:
        # the computer's display tells what finished; sources did not change.
        sources = [c for c in changed if c != RESULTS] if changed is not None else None
        refresh = changed is not None and not sources
        if not refresh:
            self._compute_failed = False  # an edit may have fixed what the computation hit
        self.state.begin_build()
        start = time.perf_counter()
        snapshot, error = None, None
        try:
            snapshot = self.builder()
        except UserError as err:
            error = err.format()
        except Exception as exc:  # noqa: BLE001 - the server must outlive a broken build
            error = f"internal error: {type(exc).__name__}: {exc} (please report it)"
        # After a failed computation, a refresh shows what did finish and keeps the error up:
        # only an edit clears it (and asks for the computation again).
        reload = self.state.finish_build(
            snapshot, error, keep_error=refresh and self._compute_failed
        )
        seconds = time.perf_counter() - start
        if (
            snapshot is not None
            and snapshot.pending
            and hasattr(self.builder, "fill_cache")
            and not self._compute_failed
        ):
            self._compute_wanted.set()
        with self._built:
            self.builds += 1
            self._built.notify_all()
        if refresh:
            return
        self._report(initial, sources, snapshot, error, reload, seconds)

    # -- computing -----------------------------------------------------------------------------

    def _compute_loop(self) -> None:
        """Run the analyses that builds left as placeholders, one computation at a time; an
        edit during one that needs more asks for another, which starts when it ends."""
        while not self.state.stopping:
            self._compute_wanted.wait()
            if self.state.stopping:
                return
            self._compute_wanted.clear()
            display = self.display() if self.display is not None else None
            self.current_display = display
            listener = _PreviewProgress(self, display)
            start = time.perf_counter()
            try:
                computed = self.builder.fill_cache(listener)  # type: ignore[attr-defined]
            except _Cancelled:
                return
            except UserError as err:
                self._compute_failed = True
                self.state.report_error(err.format())
                _say(err.format(), err=True)
                computed = -1
            except Exception as exc:  # noqa: BLE001 - the server must outlive a broken run
                self._compute_failed = True
                message = f"internal error: {type(exc).__name__}: {exc} (please report it)"
                self.state.report_error(message)
                _say(message, err=True)
                computed = -1
            finally:
                if display is not None:
                    display.stop()
                self.state.set_progress(None)
            if computed >= 0:
                self.changes.put([RESULTS])  # the last results; the builder shows them all
                if computed and not self.quiet:
                    seconds = time.perf_counter() - start
                    _say(f"computed {computed} analyses in {_clock(seconds)}; pages reloaded")
            with self._built:
                self.computes += 1
                self._built.notify_all()

    def _report(
        self,
        initial: bool,
        changed: list[str] | None,
        snapshot: Snapshot | None,
        error: str | None,
        reload: bool,
        seconds: float,
    ) -> None:
        if error is not None:
            _say(error, err=True)  # always, even with --quiet: it is an error
            return
        if snapshot is not None and snapshot.warnings != self._last_warnings:
            for warning in snapshot.warnings:
                _say("warning: " + warning, err=True)
            self._last_warnings = snapshot.warnings
        if self.quiet or initial:
            return
        what = (
            ", ".join(changed[:3]) + (" …" if changed and len(changed) > 3 else "")
            if changed
            else "site"
        )
        outcome = "reloading pages" if reload else "no change in the output"
        _say(f"rebuilt after {what} in {seconds * 1000:.0f} ms; {outcome}")

    # -- answering requests --------------------------------------------------------------------

    def respond(self, handler: "PreviewHandler", head: bool) -> None:
        if handler.path.split("?", 1)[0] == EVENTS_PATH:
            self._events(handler, head)
            return
        view = self.state.current(REBUILD_WAIT_S)
        snapshot = view.snapshot
        if snapshot is None:
            # No build has ever succeeded: every page is the error, and it reloads once fixed.
            page = error_page(view.generation, view.error or "the site has not been built yet")
            handler.send_body(
                HTTPStatus.INTERNAL_SERVER_ERROR, "text/html; charset=utf-8", page, head
            )
            return
        resolved = safe_relative(handler.path, snapshot.base_path)
        if resolved.redirect is not None:
            handler.send_redirect(resolved.redirect)
            return
        rel = resolved.path
        if rel is not None and not snapshot.has(rel) and snapshot.has(rel + "/index.html"):
            handler.send_redirect(_directory_url(handler.path))
            return
        body = self._file(snapshot, rel) if rel is not None else None
        if body is None:
            self._not_found(handler, snapshot, view, head)
            return
        kind = content_type(rel or "")
        if kind.startswith("text/html"):
            body = inject(body, view.generation, view.error, view.progress)
        handler.send_body(HTTPStatus.OK, kind, body, head)

    def _file(self, snapshot: Snapshot, rel: str) -> bytes | None:
        if rel in snapshot.files:
            return snapshot.files[rel]
        source = snapshot.copies.get(rel)
        # A static file is read from the site folder at request time; a symbolic link that
        # points outside the site folder is refused rather than followed.
        if source is None or not inside(source, self.root):
            return None
        try:
            return source.read_bytes()
        except OSError:
            return None

    def _not_found(
        self, handler: "PreviewHandler", snapshot: Snapshot, view: View, head: bool
    ) -> None:
        page = snapshot.files.get("404.html")
        if page is None:
            body = b"<!doctype html><title>Not found</title><h1>Not found</h1></body>"
        else:
            body = page
        handler.send_body(
            HTTPStatus.NOT_FOUND,
            "text/html; charset=utf-8",
            inject(body, view.generation, view.error, view.progress),
            head,
        )

    def _events(self, handler: "PreviewHandler", head: bool) -> None:
        handler.send_response(HTTPStatus.OK)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Cache-Control", "no-store")
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.close_connection = True
        if head:
            return
        view = self.state.peek()
        try:
            handler.wfile.write(
                b"retry: 500\n\n"
                # `progress` in the hello too: a page served with the status box whose
                # computation ended before it connected must still remove the box.
                + sse(
                    "hello",
                    {
                        "generation": view.generation,
                        "message": view.error,
                        "progress": view.progress,
                    },
                )
            )
            handler.wfile.flush()
            seen, ticks = view.version, view.ticks
            while not self.state.stopping:
                nxt = self.state.next_change(seen, KEEPALIVE_S, ticks)
                if self.state.stopping:
                    return
                if nxt is None:
                    handler.wfile.write(b": keep-alive\n\n")  # also detects a closed tab
                elif nxt.version == seen:  # only the background computation moved on
                    handler.wfile.write(sse("progress", {"text": nxt.progress}))
                    ticks = nxt.ticks
                elif nxt.error is not None:
                    handler.wfile.write(sse("builderror", {"message": nxt.error}))
                    seen = nxt.version
                else:
                    handler.wfile.write(
                        sse("reload", {"generation": nxt.generation, "message": None})
                    )
                    seen = nxt.version
                handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, TimeoutError, OSError):
            return


class _Quiet:
    """A stream that keeps nothing: the page's progress text needs Display's arithmetic,
    not its lines."""

    def write(self, _text: str) -> int:
        return 0

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


class _Cancelled(BaseException):
    """Raised into the engine from the listener once the server stops: the computation
    ends at its next progress report rather than outlive the process (a BaseException, so
    that no handler's `except Exception` swallows it)."""


class _PreviewProgress:
    """The engine's listener during a background computation: the terminal's display, the
    pages' status box, and a rebuild from the cache after each finished group."""

    def __init__(self, server: PreviewServer, display: Any) -> None:
        from circuitpress.commands.console import Display

        self.server = server
        self.display = display
        self.counts = Display(stream=_Quiet(), terminal=False)
        self.shown = 0.0

    def planned(self, groups: Any) -> None:
        self._check()
        self.counts.planned(groups)
        if self.display is not None:
            self.display.planned(groups)
        self._show(force=True)

    def started(self, group: Any) -> None:
        self._check()
        self.counts.started(group)
        if self.display is not None:
            self.display.started(group)
        self._show(force=True)

    def advanced(self, done: float, total: float) -> None:
        self._check()
        self.counts.advanced(done, total)
        if self.display is not None:
            self.display.advanced(done, total)
        self._show()

    def finished(self, record: Any) -> None:
        self.counts.finished(record)
        if self.display is not None:
            self.display.finished(record)
        self._show(force=True)
        # The group's results are in the cache already (the engine delivers them first).
        self.server.changes.put([RESULTS])

    def _check(self) -> None:
        if self.server.state.stopping:
            raise _Cancelled

    def _show(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.shown >= PROGRESS_EVERY_S:
            self.shown = now
            current = self.counts.current
            text = self.counts.overall_text()
            if current is not None:
                text += f"; now {current.label}"
            self.server.state.set_progress(text)


class PreviewHandler(BaseHTTPRequestHandler):
    """GET and HEAD only; everything else is 405."""

    server_version = "circuitpress"
    protocol_version = "HTTP/1.1"  # keep-alive: a page's assets reuse one connection
    timeout = 60  # an idle keep-alive connection frees its thread

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.server.preview.respond(self, head=False)  # type: ignore[attr-defined]

    def do_HEAD(self) -> None:  # noqa: N802
        self.server.preview.respond(self, head=True)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> Any:
        # http.server looks up do_<METHOD>; every method but GET and HEAD is not allowed.
        if name.startswith("do_"):
            return self._not_allowed
        raise AttributeError(name)

    def _not_allowed(self) -> None:
        body = b"method not allowed\n"
        self.send_response(HTTPStatus.METHOD_NOT_ALLOWED)
        self.send_header("Allow", "GET, HEAD")
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True  # the request may carry a body we did not read

    def send_body(self, status: HTTPStatus, kind: str, body: bytes, head: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def send_redirect(self, location: str) -> None:
        self.send_response(HTTPStatus.FOUND)  # not 301: browsers cache those past no-store
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # the terminal shows builds and errors, not every asset request


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A reader who closes the tab, or a reload that cancels a download, ends the connection
        # mid-response: nothing went wrong, so no traceback in the author's terminal.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def _bind(host: str, port: int) -> ThreadingHTTPServer:
    try:
        if ":" in host:
            import socket

            class _Server6(_Server):
                address_family = socket.AF_INET6

            return _Server6((host, port), PreviewHandler)
        return _Server((host, port), PreviewHandler)
    except OSError as exc:
        raise UserError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            hint="pick another port with --port, or --port 0 for any free one",
        ) from None


def _directory_url(target: str) -> str:
    path, sep, query = target.partition("?")
    return path + "/" + sep + query


def _configured_base(root: Path) -> str:
    try:
        return load_config(root).base_path
    except UserError:
        return "/"


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def _say(message: str, *, err: bool = False) -> None:
    stream = sys.stderr if err else sys.stdout
    print(message, file=stream, flush=True)


def serve_site(
    site: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    drafts: bool = True,
    quiet: bool = False,
    device: str | None = None,
    jobs: int | None = None,
    strict: bool = False,
) -> None:
    """Serve SITE with live reload until Ctrl-C."""
    root = Path(site)
    if not root.is_dir():
        raise UserError(f"no site folder at {site}", hint="circuitpress new DIR makes one")
    if not (root / CONFIG_NAME).is_file():
        # Not a site at all (a typo in the path?): fail now rather than watch an empty folder.
        raise UserError(
            f"no {CONFIG_NAME} in {site}",
            hint="run circuitpress serve in a site folder, or circuitpress new DIR",
        )
    from circuitpress.commands.console import Display, progress_bars

    builder = SiteBuilder(root.resolve(), drafts=drafts, device=device, jobs=jobs, strict=strict)
    server = PreviewServer(
        root,
        host=host,
        port=port,
        drafts=drafts,
        quiet=quiet,
        builder=builder,
        display=None if quiet else Display,
    )
    # The first build runs no analysis, but it may load a model for its facts (a few
    # seconds): show that; the analyses then run in the background.
    try:
        if not quiet:
            _say(f"Building {root} …")
        with progress_bars(quiet) as progress:
            builder.progress = progress
            server.start()
        builder.progress = None
        if not quiet:
            _say(f"Serving {server.url} (watching for changes; Ctrl-C to stop)")
            snapshot = server.state.peek().snapshot
            if snapshot is not None and snapshot.pending:
                pages = f"{snapshot.pending} page{'s' if snapshot.pending != 1 else ''}"
                _say(
                    f"computing the figures of {pages} in the background: "
                    "open pages fill in as they finish"
                )
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        # Ctrl-C is how a preview ends, also during the first build: a clean exit, status 0.
        if not quiet:
            _say("stopped")
    finally:
        server.stop()
    if server.computing:
        # An analysis group that reports no progress for a while is still running: leave
        # now rather than wait for it. Nothing is lost (each finished group is in the cache;
        # cache entries are written to a temporary name and renamed), and exiting through the
        # interpreter's shutdown with torch's threads busy would abort the process.
        if server.current_display is not None:
            server.current_display.stop()  # give the terminal its cursor back
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
