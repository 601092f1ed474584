"""The command line: the `circuitpress` group and its commands, one module each in
circuitpress/commands/. Exit codes: 0 ok, 1 user error, 2 usage, 3 internal error."""

from __future__ import annotations

import click

from circuitpress import __version__
from circuitpress.commands import build, check, models, new, publish, serve


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="circuitpress")
def cli() -> None:
    """Publish circuits-style interpretability articles as a static site."""


for command in (new.new, build.build, serve.serve, publish.publish, check.check, models.models):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="circuitpress")
