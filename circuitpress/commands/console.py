"""What every command shares: error handling (exit codes) and progress on stderr.

Exit codes: 0 ok, 1 a user error (one line `file:line: what is wrong (hint)`), 2 a usage error
(click's), 3 an internal error (a short report, never a traceback).
"""

from __future__ import annotations

import atexit
import functools
import os
import sys
import threading
import time
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, NoReturn, Sequence

import click

from circuitpress.errors import UserError

if TYPE_CHECKING:
    from rich.progress import Progress as RichProgress
    from rich.progress import TaskID

    from circuitpress.analysis.progress import GroupPlan, GroupRecord, Progress

DEVICE = click.Choice(["auto", "cpu", "cuda", "mps"])

# The argument and options several commands share, declared once.
site_argument = click.argument(
    "site", default=".", type=click.Path(file_okay=False, path_type=Path)
)
quiet_option = click.option("--quiet", is_flag=True, help="Print nothing but errors.")
device_option = click.option(
    "--device", type=DEVICE, default=None, help="Where models run (default: [build] device, auto)."
)
jobs_option = click.option(
    "--jobs",
    type=click.IntRange(0, 256),
    default=None,
    help="CPU threads for the analysis (default: [build] jobs, 1; 0: one per core).",
)


# What a command made that only the end of the process needs to free (see exit_now).
_LEFT_FOR_EXIT: list[object] = []


def leave_for_exit(made: object) -> None:
    """Keep `made` (a finished build: its pages, tokens and HTML) until the process ends,
    where exit_now drops it with the process instead of freeing its objects one by one."""
    _LEFT_FOR_EXIT.append(made)


def exit_now(code: object) -> NoReturn:
    """End the process with `code` (a SystemExit's) as Python's own exit would, without
    freeing the objects left: a 300-page build's ~10^6 objects cost ~25 ms of deallocation
    that the OS does at once. The exit functions still run (atexit: coverage, logging,
    temporary folders), and the streams are flushed. Where other threads are alive (the
    preview server's, an analysis's pools), Python's own exit runs instead, which joins them."""
    if threading.active_count() > 1:
        raise SystemExit(code)
    status = 0 if code is None else code if isinstance(code, int) else 1
    if not isinstance(code, int | None) and sys.stderr is not None:
        print(code, file=sys.stderr)  # as SystemExit("message") does
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        if stream is None:  # started with that descriptor closed (`>&-`): Python sets None
            continue
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`| head`) or stream
            status = status or 120  # Python's own status when it cannot flush stdout
    os._exit(status)


def err(message: str) -> None:
    """One line on stderr."""
    click.echo(message, err=True)


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """User errors are one line and exit 1; anything unexpected is a short report and exit 3."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UserError as error:
            err(error.format())
            sys.exit(1)
        except KeyboardInterrupt:
            err("interrupted")
            sys.exit(130)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            err(
                f"internal error: {type(exc).__name__}: {exc} "
                f"(at {Path(frame.filename).name}:{frame.lineno}; please report it)"
            )
            sys.exit(3)

    return wrapper


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


class Display:
    """The engine's progress for a person, on stderr: on a terminal, one overall line
    (analyses done of those planned, elapsed, an estimate of the time left) and the current
    group with its bar, and a line for each group as it finishes; elsewhere (a log, CI) only
    the plain line of each finished group, printed as it finishes. Nothing is drawn until the
    first group starts: a build served from the cache prints only its summary."""

    def __init__(self, stream: Any = None, terminal: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.terminal = self.stream.isatty() if terminal is None else terminal
        self.total_requests = self.done_requests = 0
        self.total_cost = self.done_cost = 0.0
        self.current: GroupPlan | None = None
        self.fraction = 0.0  # of the current group
        self.begun: float | None = None
        # Estimated cost still planned, and seconds and cost finished, per kind of analysis.
        self.waiting: dict[str, float] = {}
        self.seconds: dict[str, float] = {}
        self.costs: dict[str, float] = {}
        self.bars: RichProgress | None = None
        self.overall: TaskID | None = None
        self.group: TaskID | None = None

    # -- the engine's listener ------------------------------------------------------------------

    def planned(self, groups: Sequence[GroupPlan]) -> None:
        self.total_requests += sum(g.requests for g in groups)
        self.total_cost += sum(g.cost for g in groups)
        for g in groups:
            self.waiting[g.kind] = self.waiting.get(g.kind, 0.0) + g.cost

    def started(self, group: GroupPlan) -> None:
        if self.begun is None:
            self.begun = time.perf_counter()
        self.current, self.fraction = group, 0.0
        if self.terminal:
            bars, row = self._bars_started()
            bars.reset(row, total=1.0, description=f"{group.label} ({group.size})")
            self._update()

    def advanced(self, done: float, total: float) -> None:
        self.fraction = min(1.0, done / total) if total else 0.0
        if self.terminal:
            self._update()

    def finished(self, record: GroupRecord) -> None:
        plan = record.plan
        self.done_requests += plan.requests
        self.done_cost += plan.cost
        self.waiting[plan.kind] = self.waiting.get(plan.kind, 0.0) - plan.cost
        self.seconds[plan.kind] = self.seconds.get(plan.kind, 0.0) + record.wall_seconds
        self.costs[plan.kind] = self.costs.get(plan.kind, 0.0) + plan.cost
        self.current, self.fraction = None, 0.0
        batches = f" in {record.batches} batches" if record.batches > 1 else ""
        line = (
            f"{plan.label}: {plan.size}{batches}, {record.wall_seconds:.1f} s "
            f"(CPU {record.cpu_seconds:.1f} s) [{self.overall_text()}]"
        )
        if self.terminal and self.bars is not None:
            self.bars.console.print(line, highlight=False, markup=False)
            self._update()
        else:
            print(line, file=self.stream, flush=True)

    # -- text -------------------------------------------------------------------------------------

    def overall_text(self) -> str:
        elapsed = time.perf_counter() - self.begun if self.begun is not None else 0.0
        text = f"analyses {self.done_requests}/{self.total_requests}, {_clock(elapsed)} elapsed"
        left = self.seconds_left()
        if left is not None and elapsed > 2:
            text += f", about {_clock(left)} left"
        return text

    def seconds_left(self) -> float | None:
        """The planned groups still to run, each at the rate (seconds per unit of estimated
        cost) its kind has run at so far in this build, or the build's overall rate for a kind
        not seen yet: a dataset pass and an optimisation step do not cost the same."""
        spent = sum(self.seconds.values())
        costs = sum(self.costs.values())
        if costs <= 0 or spent <= 0:
            return None
        overall = spent / costs
        left = 0.0
        for kind, cost in self.waiting.items():
            rate = self.seconds[kind] / self.costs[kind] if self.costs.get(kind) else overall
            left += cost * rate
        if self.current is not None:
            kind = self.current.kind
            rate = self.seconds[kind] / self.costs[kind] if self.costs.get(kind) else overall
            left -= self.current.cost * self.fraction * rate
        return max(0.0, left)

    def _bars_started(self) -> tuple[RichProgress, TaskID]:
        """The bars (started on first use) and the current group's row."""
        if self.bars is not None and self.group is not None:
            return self.bars, self.group
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn

        self.bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            console=Console(file=self.stream),
        )
        self.overall = self.bars.add_task("", total=None)
        self.group = self.bars.add_task("", total=1.0)
        self.bars.start()
        return self.bars, self.group

    def _update(self) -> None:
        if self.bars is None or self.overall is None or self.group is None:
            return
        done = self.done_cost + (self.current.cost * self.fraction if self.current else 0.0)
        self.bars.update(
            self.overall,
            description=self.overall_text(),
            completed=done,
            total=max(self.total_cost, done, 1e-9),
        )
        self.bars.update(self.group, completed=self.fraction, visible=self.current is not None)

    def stop(self) -> None:
        if self.bars is not None:
            self.bars.stop()
            self.bars = None


@contextmanager
def progress_bars(quiet: bool) -> Iterator[Progress | None]:
    """The engine's listener drawing progress on stderr (see Display), or None when quiet."""
    if quiet:
        yield None
        return
    display = Display()
    try:
        yield display
    finally:
        display.stop()
