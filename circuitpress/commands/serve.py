"""`circuitpress serve`: preview with live reload (loopback unless asked)."""

from __future__ import annotations

from pathlib import Path

import click

from circuitpress.commands.console import handle_errors


@click.command()
@click.argument("site", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface to bind (loopback unless asked).",
)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--drafts/--no-drafts", default=True, help="Show drafts while previewing.")
@click.option("--quiet", is_flag=True, help="Print nothing but errors.")
@handle_errors
def serve(site: Path, host: str, port: int, drafts: bool, quiet: bool) -> None:
    """Preview the site with live reload."""
    from circuitpress.serve.server import serve_site

    serve_site(site, host=host, port=port, drafts=drafts, quiet=quiet)
