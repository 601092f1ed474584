"""`circuitpress check`: parse, resolve every reference and link; run no analysis, write
nothing; report every mistake of the site, one line each."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from circuitpress.commands.console import (
    err,
    handle_errors,
    leave_for_exit,
    quiet_option,
    site_argument,
)


@click.command(short_help="Find every mistake in the site; compute and write nothing.")
@site_argument
@click.option("--external", is_flag=True, help="Also check external links (needs network).")
@click.option("--drafts", is_flag=True, help="Include articles marked draft.")
@quiet_option
@handle_errors
def check(site: Path, external: bool, drafts: bool, quiet: bool) -> None:
    """Parse every page, resolve every reference against the model facts and check every link;
    run no analysis, write nothing, and report every mistake, one line each."""
    from circuitpress.build.pipeline import BuildOptions, SiteBuild

    # No progress to show: no analysis runs (model facts take seconds).
    options = BuildOptions(drafts=drafts, write=False, compute=False, collect_errors=True)
    build = SiteBuild(site, options)
    report = build.run()
    leave_for_exit(build)
    from circuitpress.publish.linkcheck import check_links

    problems = sorted(build.errors, key=lambda e: (e.file or "", e.line or 0))
    lines = [p.format() for p in problems]
    lines += [problem.format() for problem in check_links(build, external=external)]
    for line in lines:
        err(line)
    for warning in report.warnings:
        err("warning: " + warning.format())
    if lines:
        sys.exit(1)
    if not quiet:
        waiting = len(build.planner.deferred)
        note = f" ({waiting} analyses not computed: `check` runs none)" if waiting else ""
        click.echo(f"Checked {report.pages} page(s): no problems{note}.")
