"""The package's layout keeps its promises: a short root, no import cycles, torch only in
analysis, every package shipped, and the top-level theme inside an installed wheel."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "circuitpress"
HEAVY = ("torch", "torchvision", "lucent", "transformer_lens", "transformers", "kornia")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imported(tree: ast.Module, *, top_level_only: bool) -> list[tuple[str, int]]:
    """(module, line) of each import; with top_level_only, the imports that run when the module
    is imported (not those inside functions or under `if TYPE_CHECKING:`)."""
    found: list[tuple[str, int]] = []

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                found.extend((alias.name, node.lineno) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    found.append((sub if sub in MODULES else node.module, node.lineno))
            elif isinstance(node, ast.If):
                if "TYPE_CHECKING" not in ast.unparse(node.test):
                    visit(node.body)
                    visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                visit(node.finalbody)
                for handler in node.handlers:
                    visit(handler.body)
            elif not top_level_only:
                visit([n for n in ast.iter_child_nodes(node) if isinstance(n, ast.stmt)])

    visit(tree.body)
    return found


def parents(name: str) -> list[str]:
    """Importing a.b.c imports a and a.b first."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def test_at_most_eight_modules_at_the_package_root() -> None:
    root_modules = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(root_modules) <= 8, root_modules


def test_no_module_level_import_cycles() -> None:
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(), str(path))
        targets = set()
        for target, _ in imported(tree, top_level_only=True):
            targets.update(p for p in parents(target) if p in MODULES and p != name)
        graph[name] = targets

    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []
    cycles: list[list[str]] = []

    def walk(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            # A package's __init__ importing its own submodules is how packages work.
            if node.startswith(nxt + ".") and MODULES[nxt].name == "__init__.py":
                continue
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                walk(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            walk(node)
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_torch_is_imported_only_in_analysis() -> None:
    offenders = []
    for name, path in MODULES.items():
        if name.startswith("circuitpress.analysis"):
            continue
        for target, line in imported(ast.parse(path.read_text()), top_level_only=False):
            if target.split(".")[0] in HEAVY:
                offenders.append(f"{path.relative_to(REPO)}:{line}: imports {target}")
    assert not offenders, "\n".join(offenders)


def test_markup_and_directives_never_import_analysis() -> None:
    offenders = []
    for name, path in MODULES.items():
        if not name.startswith(("circuitpress.markup", "circuitpress.directives")):
            continue
        for target, line in imported(ast.parse(path.read_text()), top_level_only=False):
            if target.startswith("circuitpress.analysis"):
                offenders.append(f"{path.relative_to(REPO)}:{line}: imports {target}")
    assert not offenders, "\n".join(offenders)


def test_pyproject_lists_every_package() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {module_name(p) for p in PACKAGE.rglob("__init__.py")}
    assert set(config["packages"]) == on_disk | {"circuitpress.themes"}
    assert config["package-dir"] == {"circuitpress.themes": "themes"}
    assert (REPO / "themes" / "distill" / "templates" / "page.html").is_file()
    assert not (PACKAGE / "themes").exists()


def test_builtin_directives_register_through_entry_points() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    points = config["project"]["entry-points"]["circuitpress.directives"]
    directive_modules = {
        p.stem for p in (PACKAGE / "directives").glob("*.py") if "def register(" in p.read_text()
    }
    assert set(points) == directive_modules
    assert all(v == f"circuitpress.directives.{k}:register" for k, v in points.items())


@pytest.mark.slow
def test_installed_wheel_finds_the_theme(tmp_path: Path) -> None:
    """`pip wheel .`, installed in a fresh virtual environment, builds a site with the theme."""
    # Built from a copy: setuptools writes build/ and *.egg-info/ beside the sources.
    source = tmp_path / "source"
    skip = {".git", "_site", ".circuitpress", "__pycache__", "bench", "tests"}

    def ignore(folder: str, names: list[str]) -> set[str]:
        top = Path(folder) == REPO
        return {n for n in names if n in skip or n.endswith(".egg-info") or (top and n == "build")}

    shutil.copytree(REPO, source, ignore=ignore)
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("circuitpress-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "circuitpress/themes/distill/templates/page.html" in names
    assert "circuitpress/themes/distill/assets/css/distill.css" in names
    assert "circuitpress/analysis/models/zoo/weights/shapes-a.safetensors" in names
    assert "circuitpress/scaffold/site/circuitpress.toml" in names

    env_dir = tmp_path / "venv"
    # The dependencies (torch, Jinja2, ...) come from this interpreter's site-packages; the
    # package itself only from the wheel.
    venv.create(env_dir, system_site_packages=True, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "-q", str(wheel)],
        check=True,
        capture_output=True,
    )
    site = tmp_path / "site"
    script = (
        "import sys, circuitpress; from pathlib import Path; "
        "from circuitpress.scaffold import create_site; "
        "from circuitpress.build.pipeline import build_site; "
        f"assert Path(circuitpress.__file__).is_relative_to({str(env_dir)!r}), "
        "circuitpress.__file__; "
        f"create_site({str(site)!r}); "
        f"(Path({str(site)!r}) / 'content' / 'first-article.md').write_text("
        "'---\\ntitle: Hello\\n---\\nProse only.\\n'); "
        f"print(build_site({str(site)!r}).pages)"
    )
    run = subprocess.run([str(python), "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    out = site / "_site"
    assert (out / "hello" / "index.html").is_file() or any(out.glob("*/index.html"))
    css = list((out / "assets" / "theme" / "css").glob("distill*.css"))
    assert css, sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))[:20]
    page = next(out.glob("*/index.html")).read_text()
    assert "assets/theme/css/distill.css" in page
