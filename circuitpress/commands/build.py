"""`circuitpress build`: the whole site into SITE/_site (or --out), swapped in atomically."""

from __future__ import annotations

from pathlib import Path

import click

from circuitpress.commands.console import (
    device_option,
    err,
    handle_errors,
    jobs_option,
    leave_for_exit,
    progress_bars,
    quiet_option,
    site_argument,
)


@click.command()
@site_argument
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder (default SITE/_site).",
)
@device_option
@click.option("--strict", is_flag=True, help="Fail on warnings and failed claims.")
@click.option("--drafts", is_flag=True, help="Include articles marked draft.")
@jobs_option
@click.option(
    "--executor",
    type=click.Choice(["local", "ray"]),
    default=None,
    help="Where the analysis runs (default: [build] executor, local).",
)
@click.option(
    "--ray-address",
    default=None,
    metavar="ADDR",
    help="The Ray cluster for --executor ray: auto (the one 'ray start' made here) or "
    "HOST:PORT (default: [build] ray_address, else a local Ray for the build).",
)
@quiet_option
@handle_errors
def build(
    site: Path,
    out: Path | None,
    device: str | None,
    strict: bool,
    drafts: bool,
    jobs: int | None,
    executor: str | None,
    ray_address: str | None,
    quiet: bool,
) -> None:
    """Build the site in SITE (default: the current folder)."""
    from circuitpress.build.pipeline import BuildOptions, build_site
    from circuitpress.config import is_ray_address

    if ray_address is not None and not is_ray_address(ray_address):
        raise click.BadParameter(
            f"{ray_address!r} is not a Ray address (auto or HOST:PORT)", param_hint="--ray-address"
        )

    with progress_bars(quiet) as progress:
        report = build_site(
            site,
            BuildOptions(
                out=out,
                device=device,
                strict=strict,
                drafts=drafts,
                jobs=jobs,
                executor=executor,
                ray_address=ray_address,
                progress=progress,
            ),
        )
    leave_for_exit(report.made)
    for warning in report.warnings:
        err("warning: " + warning.format())
    if not quiet and report.up_to_date:
        click.echo(f"{report.out} is up to date ({report.pages} page(s), nothing changed).")
    elif not quiet:
        computed = (
            f"{report.computed} analyses computed in {report.groups} group(s), "
            f"CPU {report.analysis_cpu_seconds:.1f} s, {report.tasks} task(s) "
            f"on the {report.executor} executor"
            if report.computed
            else "0 analyses computed"
        )
        click.echo(
            f"Built {report.pages} page(s) and {report.unit_pages} unit page(s) into "
            f"{report.out} in {report.seconds:.2f} s ({computed}; {report.cached} cached)."
        )
