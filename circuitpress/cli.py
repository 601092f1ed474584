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
    try:
        cli(prog_name="circuitpress")
        code: object = 0
    except SystemExit as exc:  # click ends every command with one, in standalone mode
        code = exc.code
    # The process ends here. Python's shutdown runs one more cyclic collection over every
    # object left (the markup, theme and directive modules a build loaded) only to free
    # memory the OS takes back anyway: 0.06 of a 300-page build's 1.4 CPU s. Frozen
    # objects are left out of it (reference counting still frees what it can).
    gc.freeze()
    exit_now(code)
