"""`circuitpress new DIR`: a starter site that builds at once."""

from __future__ import annotations

from pathlib import Path

import click

from circuitpress.commands.console import handle_errors


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--quiet", is_flag=True, help="Print nothing but errors.")
@handle_errors
def new(directory: Path, quiet: bool) -> None:
    """Make a new site in DIRECTORY that builds at once."""
    from circuitpress.scaffold import create_site

    create_site(directory)
    if not quiet:
        click.echo(f"Made a site in {directory}. Next: circuitpress serve {directory}")
