"""The command line: one thin function per command. Exit codes: 0 ok, 1 user error, 2 usage,
3 internal error."""

from __future__ import annotations

import functools
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import click

from circuitpress import __version__
from circuitpress.errors import UserError

DEVICE = click.Choice(["auto", "cpu", "cuda", "mps"])


def _err(message: str) -> None:
    click.echo(message, err=True)


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """User errors are one line and exit 1; anything unexpected is a short report and exit 3."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UserError as err:
            _err(err.format())
            sys.exit(1)
        except KeyboardInterrupt:
            _err("interrupted")
            sys.exit(130)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            _err(
                f"internal error: {type(exc).__name__}: {exc} "
                f"(at {Path(frame.filename).name}:{frame.lineno}; please report it)"
            )
            sys.exit(3)

    return wrapper


@contextmanager
def progress_bars(quiet: bool) -> Iterator[Any]:
    """A `progress(label, done, total)` callback drawing rich bars on stderr, or None.

    The bars appear only once there is progress to show: a build served from the cache
    prints nothing but its summary."""
    if quiet:
        yield None
        return
    state: dict[str, Any] = {"bars": None, "tasks": {}}

    def progress(label: str, done: int, total: int) -> None:
        if state["bars"] is None:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            state["bars"] = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
            )
            state["bars"].start()
        bars, tasks = state["bars"], state["tasks"]
        if label not in tasks:
            tasks[label] = bars.add_task(label, total=total)
        bars.update(tasks[label], completed=done, total=total)

    try:
        yield progress
    finally:
        if state["bars"] is not None:
            state["bars"].stop()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="circuitpress")
def cli() -> None:
    """Publish circuits-style interpretability articles as a static site."""


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--quiet", is_flag=True, help="Print nothing but errors.")
@handle_errors
def new(directory: Path, quiet: bool) -> None:
    """Make a new site in DIRECTORY that builds at once."""
    from circuitpress.scaffold import create_site

    create_site(directory)
    if not quiet:
        click.echo(f"Made a site in {directory}. Next: circuitpress serve {directory}")


@cli.command()
@click.argument("site", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder (default SITE/_site).",
)
@click.option(
    "--device", type=DEVICE, default=None, help="Where models run (default: [build] device, auto)."
)
@click.option("--strict", is_flag=True, help="Fail on warnings and failed claims.")
@click.option("--drafts", is_flag=True, help="Include articles marked draft.")
@click.option(
    "--jobs",
    type=click.IntRange(1, 256),
    default=None,
    help="CPU threads for the analysis (default: [build] jobs, one per core).",
)
@click.option("--quiet", is_flag=True, help="Print nothing but errors.")
@handle_errors
def build(
    site: Path,
    out: Path | None,
    device: str | None,
    strict: bool,
    drafts: bool,
    jobs: int | None,
    quiet: bool,
) -> None:
    """Build the site in SITE (default: the current folder)."""
    from circuitpress.build.pipeline import BuildOptions, build_site

    with progress_bars(quiet) as progress:
        report = build_site(
            site,
            BuildOptions(
                out=out, device=device, strict=strict, drafts=drafts, jobs=jobs, progress=progress
            ),
        )
    for warning in report.warnings:
        _err("warning: " + warning.format())
    if not quiet and report.up_to_date:
        click.echo(f"{report.out} is up to date ({report.pages} page(s), nothing changed).")
    elif not quiet:
        click.echo(
            f"Built {report.pages} page(s) and {report.unit_pages} unit page(s) into {report.out} "
            f"in {report.seconds:.2f} s ({report.computed} analyses computed, {report.cached} cached)."
        )


@cli.command()
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
    problems = 0
    try:
        from circuitpress.publish.linkcheck import check_links
    except ImportError:
        check_links = None  # type: ignore[assignment]
    if check_links is not None:
        for problem in check_links(build, external=external):
            _err(problem.format())
            problems += 1
    for warning in report.warnings:
        _err("warning: " + warning.format())
    if problems:
        sys.exit(1)
    if not quiet:
        click.echo(f"Checked {report.pages} page(s): no problems.")


@cli.command()
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


@cli.command()
@click.argument("site", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--target", required=True, help="gh-pages, or a folder to copy the site into.")
@click.option(
    "--remote", default="origin", show_default=True, help="Git remote name or URL (gh-pages)."
)
@click.option(
    "--branch", default="gh-pages", show_default=True, help="Branch to publish to (gh-pages)."
)
@click.option("--cname", default=None, help="Custom domain written to CNAME (gh-pages).")
@click.option("--message", default=None, help="Commit message (gh-pages).")
@click.option("--quiet", is_flag=True, help="Print nothing but errors.")
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


@cli.command()
@click.argument("site", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--device", type=DEVICE, default=None, help="Where models run (default: [build] device, auto)."
)
@click.option("--quiet", is_flag=True, help="Print nothing but errors.")
@handle_errors
def models(site: Path, device: str | None, quiet: bool) -> None:
    """List each model, its source, layers (name, output shape, units) and dataset."""
    from circuitpress.commands.models import describe_models

    text = describe_models(site, device=device)
    if not quiet:
        click.echo(text)


def main() -> None:
    cli(prog_name="circuitpress")
