"""What every command shares: error handling (exit codes) and progress bars on stderr.

Exit codes: 0 ok, 1 a user error (one line `file:line: what is wrong (hint)`), 2 a usage error
(click's), 3 an internal error (a short report, never a traceback).
"""

from __future__ import annotations

import functools
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import click

from circuitpress.errors import UserError

if TYPE_CHECKING:
    from rich.progress import Progress as RichProgress
    from rich.progress import TaskID

    from circuitpress.build.plan import Progress

DEVICE = click.Choice(["auto", "cpu", "cuda", "mps"])
QUIET_HELP = "Print nothing but errors."


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


class _Bars:
    """rich progress bars on stderr, started at the first report: a build served from the
    cache prints nothing but its summary."""

    def __init__(self) -> None:
        self.bars: RichProgress | None = None
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, label: str, done: int, total: int) -> None:
        if self.bars is None:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self.bars = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
            )
            self.bars.start()
        if label not in self.tasks:
            self.tasks[label] = self.bars.add_task(label, total=total)
        self.bars.update(self.tasks[label], completed=done, total=total)

    def stop(self) -> None:
        if self.bars is not None:
            self.bars.stop()


@contextmanager
def progress_bars(quiet: bool) -> Iterator[Progress | None]:
    """A `progress(label, done, total)` callback drawing bars on stderr, or None when quiet."""
    if quiet:
        yield None
        return
    bars = _Bars()
    try:
        yield bars
    finally:
        bars.stop()
