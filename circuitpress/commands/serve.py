"""`circuitpress serve`: preview with live reload (loopback unless asked)."""

from __future__ import annotations

from pathlib import Path

import click

from circuitpress.commands.console import (
    device_option,
    handle_errors,
    jobs_option,
    quiet_option,
    site_argument,
)


@click.command(short_help="Preview with live reload; figures fill in as they finish.")
@site_argument
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface to bind (loopback unless asked).",
)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--drafts/--no-drafts", default=True, help="Show drafts while previewing.")
@device_option
@jobs_option
@click.option("--strict", is_flag=True, help="Show warnings and failed claims as errors.")
@quiet_option
@handle_errors
def serve(
    site: Path,
    host: str,
    port: int,
    drafts: bool,
    device: str | None,
    jobs: int | None,
    strict: bool,
    quiet: bool,
) -> None:
    """Preview the site with live reload; figures fill in as they compute."""
    from circuitpress.serve.server import serve_site

    serve_site(
        site,
        host=host,
        port=port,
        drafts=drafts,
        quiet=quiet,
        device=device,
        jobs=jobs,
        strict=strict,
    )
