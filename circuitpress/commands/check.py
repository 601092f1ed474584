"""`circuitpress check`: parse, resolve every reference and link; write nothing."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from circuitpress.commands.console import err, handle_errors, progress_bars


@click.command()
@click.argument("site", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--external", is_flag=True, help="Also check external links (needs network).")
@click.option("--drafts", is_flag=True, help="Include articles marked draft.")
@click.option("--quiet", is_flag=True, help="Print nothing but errors.")
@handle_errors
def check(site: Path, external: bool, drafts: bool, quiet: bool) -> None:
    """Parse every page and resolve every reference and link; write nothing."""
    from circuitpress.build.pipeline import BuildOptions, SiteBuild

    with progress_bars(quiet) as progress:
        build = SiteBuild(site, BuildOptions(drafts=drafts, write=False, progress=progress))
        report = build.run()
    from circuitpress.publish.linkcheck import check_links

    problems = 0
    for problem in check_links(build, external=external):
        err(problem.format())
        problems += 1
    for warning in report.warnings:
        err("warning: " + warning.format())
    if problems:
        sys.exit(1)
    if not quiet:
        click.echo(f"Checked {report.pages} page(s): no problems.")
