"""The command line: the `circuitpress` group and its commands, one module each in
circuitpress/commands/. Exit codes: 0 ok, 1 user error, 2 usage, 3 internal error."""

from __future__ import annotations

import gc

import click

from circuitpress import __version__
from circuitpress.commands import build, check, models, new, publish, serve
from circuitpress.commands.console import exit_now


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="circuitpress")
def cli() -> None:
    """Publish circuits-style interpretability articles as a static site."""


for command in (new.new, build.build, serve.serve, publish.publish, check.check, models.models):
    cli.add_command(command)


def main() -> None:
    """The command line, ending with the SystemExit of its status, for a caller in this
    process (a wrapper, runpy, a test)."""
    cli(prog_name="circuitpress")


def run() -> None:
    """The `circuitpress` program and `python -m circuitpress`: main(), then the end of the
    process (commands.console.exit_now)."""
    try:
        main()
        code: object = 0
    except SystemExit as exc:  # click ends every command with one, in standalone mode
        code = exc.code
    # Python's shutdown would run one more cyclic collection over every object left (the
    # markup, theme and directive modules a build loaded) only to free memory the OS takes
    # back anyway: frozen, they are left out of it, should Python's own exit run.
    gc.freeze()
    exit_now(code)
