"""How the `circuitpress` process ends: as Python's own exit would (status, streams, exit
functions), but without freeing what the command made, one object at a time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# A command run as `circuitpress ARGS` runs, with an exit function registered first and a
# last line on stdout left unflushed in the buffer of a pipe.
RUN = """
import atexit, sys
atexit.register(lambda: print("exit functions ran", file=sys.stderr))
sys.argv = ["circuitpress", *sys.argv[1:]]
from circuitpress.cli import run
run()
"""


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", RUN, *args], capture_output=True, text=True, timeout=120
    )


def test_a_build_exits_0_with_its_summary_flushed_and_the_exit_functions_run(prose_site) -> None:
    site = prose_site()
    out = run("build", str(site))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Built 1 page(s)")  # stdout is a pipe: block-buffered
    assert "exit functions ran" in out.stderr
    assert (site / "_site" / "prose" / "index.html").is_file()
    again = run("build", str(site))  # the stamp it recorded says: nothing changed
    assert again.returncode == 0 and "is up to date" in again.stdout


@pytest.mark.parametrize(
    ("args", "status", "said"),
    [
        (("build", "{site}/nowhere"), 1, "circuitpress.toml"),  # a user's mistake
        (("build", "--no-such-option"), 2, "No such option"),  # a usage error (click)
        (("--version",), 0, "circuitpress"),
    ],
)
def test_every_status_is_the_commands_own(
    prose_site, args: tuple[str, ...], status: int, said: str
) -> None:
    site: Path = prose_site()
    out = run(*(a.format(site=site) for a in args))
    assert out.returncode == status, out.stderr
    assert said in out.stdout + out.stderr
    assert "exit functions ran" in out.stderr


def test_with_another_thread_alive_python_joins_it_before_the_exit() -> None:
    """A thread that is still running (the preview server's, an analysis pool's) is never cut
    short: the process then ends through Python's own exit, which waits for it."""
    code = """
import sys, threading, time
from circuitpress.commands.console import exit_now
def late():
    time.sleep(0.3)
    print("thread finished", flush=True)
threading.Thread(target=late).start()
exit_now(4)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 4
    assert out.stdout.strip() == "thread finished"


def test_main_raises_systemexit_for_a_caller_in_the_process() -> None:
    """Only run() (the program, `python -m`) ends the process; main() ends with the status as
    a SystemExit that an embedding caller can catch."""
    import pytest as _pytest

    from circuitpress.cli import main

    argv = sys.argv
    sys.argv = ["circuitpress", "--version"]
    try:
        with _pytest.raises(SystemExit) as exit_info:
            main()
    finally:
        sys.argv = argv
    assert exit_info.value.code == 0


def test_a_closed_stdout_or_stderr_still_exits_with_the_commands_status() -> None:
    """Started with descriptor 1 or 2 closed, Python sets sys.stdout or sys.stderr to None:
    the exit skips it (Python's own exit gives 0 here too)."""
    import os

    for fd in (1, 2):
        out = subprocess.run(
            [sys.executable, "-c", RUN, "--version"],
            capture_output=True,
            timeout=60,
            preexec_fn=lambda fd=fd: os.close(fd),  # after the pipes are set up
        )
        assert out.returncode == 0, (fd, out.stdout, out.stderr)
