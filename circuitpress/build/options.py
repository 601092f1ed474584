"""What a build is asked to do (BuildOptions) and what it did (BuildReport)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from circuitpress.build.plan import Progress
from circuitpress.errors import BuildWarning


@dataclass
class BuildOptions:
    out: Path | None = None  # default SITE/_site
    device: str | None = None  # default: [build] device
    strict: bool = False
    drafts: bool = False
    jobs: int | None = None
    executor: str | None = None  # default: [build] executor ("local" or "ray")
    ray_address: str | None = None  # default: [build] ray_address (None: a local Ray)
    progress: Progress | None = None
    write: bool = True  # False for `check`: parse, resolve, render in memory, write nothing
    # False for `check`: no analysis runs (model facts may load a model); figures whose
    # results are not in the cache render as placeholders.
    compute: bool = True
    # True for `check`: every mistake of the site is collected in `SiteBuild.errors` (one per
    # reference, page or directive) instead of the first one ending the build.
    collect_errors: bool = False


@dataclass
class BuildReport:
    out: Path
    pages: int = 0
    unit_pages: int = 0
    requests: int = 0
    computed: int = 0
    cached: int = 0
    seconds: float = 0.0
    engine_imported: bool = False
    groups: int = 0  # analysis groups computed
    # Pages (articles and unit pages) with a placeholder figure: only where nothing computes
    # (check, the preview server's quick builds) and a result is not in the cache yet.
    pending_pages: int = 0
    analysis_cpu_seconds: float = 0.0
    executor: str = "local"  # where the analysis ran
    tasks: int = 0  # groups (or chunks of one) the executor ran
    warnings: list[BuildWarning] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    up_to_date: bool = False  # nothing had changed: the previous output was kept
    # What the build wrote, as stamp.manifest_of would list it (see SiteWriter._write_tree).
    manifest: dict[str, list[int]] | None = None
    # The SiteBuild (build_site's): its pages live as long as the report, so that a command
    # about to exit can leave them to the exit (commands.console.exit_now).
    made: Any = field(default=None, repr=False, compare=False)
