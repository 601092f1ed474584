"""`circuitpress publish`: a strict build, then GitHub Pages or a folder."""

from __future__ import annotations

from pathlib import Path

import click

from circuitpress.commands.console import handle_errors, quiet_option, site_argument


@click.command()
@site_argument
@click.option("--target", required=True, help="gh-pages, or a folder to copy the site into.")
@click.option(
    "--remote", default="origin", show_default=True, help="Git remote name or URL (gh-pages)."
)
@click.option(
    "--branch", default="gh-pages", show_default=True, help="Branch to publish to (gh-pages)."
)
@click.option("--cname", default=None, help="Custom domain written to CNAME (gh-pages).")
@click.option("--message", default=None, help="Commit message (gh-pages).")
@quiet_option
@handle_errors
def publish(
    site: Path,
    target: str,
    remote: str,
    branch: str,
    cname: str | None,
    message: str | None,
    quiet: bool,
) -> None:
    """Build strictly and publish to GitHub Pages or a folder."""
    from circuitpress.publish.deploy import publish_site

    publish_site(
        site, target=target, remote=remote, branch=branch, cname=cname, message=message, quiet=quiet
    )
