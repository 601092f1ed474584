"""Circuit diagrams: the wide and tall layouts, when a figure carries both, and the media
queries of circuits.css that choose between them on a phone."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from circuitpress.render import svg

CSS = Path(__file__).resolve().parents[2] / "themes" / "distill" / "assets" / "css" / "circuits.css"


def tree(widths: list[int]) -> tuple[list[svg.Node], list[svg.Edge]]:
    """A root, then `widths[i]` units at level i + 1, each feeding the first unit above it."""
    nodes = [svg.Node(id="root", label="conv3:0", level=0)]
    edges = []
    parents = ["root"]
    for level, count in enumerate(widths, start=1):
        ids = [f"l{level}-{i}" for i in range(count)]
        nodes += [
            svg.Node(id=i, label=f"conv{3 - level}:{n}", level=level) for n, i in enumerate(ids)
        ]
        edges += [
            svg.Edge(src=i, dst=parents[n % len(parents)], weight=(-1.0) ** n)
            for n, i in enumerate(ids)
        ]
        parents = ids
    return nodes, edges


def inside(text: str) -> None:
    """Every thumbnail and label lies inside the drawing's viewBox."""
    root = ET.fromstring(text)
    _, _, width, height = map(float, root.get("viewBox", "").split())
    ns = "{http://www.w3.org/2000/svg}"
    for rect in root.iter(f"{ns}rect"):
        x, y = float(rect.get("x", 0)), float(rect.get("y", 0))
        w, h = float(rect.get("width", 0)), float(rect.get("height", 0))
        assert -2 <= x and x + w <= width + 2 and -2 <= y and y + h <= height + 2, rect.attrib
    for label in root.iter(f"{ns}text"):
        assert 0 <= float(label.get("y", 0)) <= height


def test_a_small_circuit_has_one_layout() -> None:
    nodes, edges = tree([3])
    html = svg.circuit_diagram(nodes, edges)
    assert html.count("<svg") == 1 and "cp-circuit-wide" in html and "data-fits" not in html
    inside(html)


@pytest.mark.parametrize("widths", [[6], [16], [4, 12], [3, 6, 12]])
def test_a_wide_circuit_also_comes_tall_and_the_tall_one_fits_a_phone(widths: list[int]) -> None:
    nodes, edges = tree(widths)
    html = svg.circuit_diagram(nodes, edges)
    wide, tall = re.findall(r"<svg .*?</svg>", html)
    assert "cp-circuit-wide" in wide and "cp-circuit-tall" in tall
    wide_w, _ = svg.circuit_size(nodes, "wide")
    step = re.search(r'data-fits="(\w+)"', wide)
    assert step and (step.group(1) == "never" or int(step.group(1)) >= wide_w * svg.MIN_SCALE)
    tall_w, tall_h = svg.circuit_size(nodes, "tall")
    assert tall_w <= svg.PHONE_COLUMN and tall_h > tall_w
    for text in (wide, tall):
        inside(text)
        # Never shrunk past MIN_SCALE: the figure scrolls instead.
        width = float(re.search(r'width="([\d.]+)"', text).group(1))  # type: ignore[union-attr]
        minimum = float(re.search(r"min-width:([\d.]+)px", text).group(1))  # type: ignore[union-attr]
        assert minimum == pytest.approx(width * svg.MIN_SCALE, abs=1)
    # Both drawings have every node and edge (one of them is hidden by CSS).
    assert wide.count('class="cp-edge ') == tall.count('class="cp-edge ') == len(edges)


def test_tall_edges_run_from_inputs_on_the_left_to_the_output_on_the_right() -> None:
    nodes, edges = tree([6])
    tall = svg.circuit_svg(nodes, edges, layout="tall")
    for d in re.findall(r'class="cp-edge-line" d="M([\d.]+),[\d.]+C[^"]* ([\d.]+),[\d.]+"', tall):
        assert float(d[0]) < float(d[1])


def test_every_fit_step_has_its_phone_media_query() -> None:
    css = CSS.read_text(encoding="utf-8")
    queried = re.findall(
        r'@media \(max-width: (\d+)px\) \{ \.cp-circuit-wide\[data-fits="(\d+)"\]', css
    )
    assert [int(step) for _, step in queried] == list(svg.FIT_STEPS)
    # Below 768 px the theme's column is the window less 32 px: the tall layout shows exactly
    # where that column is narrower than the step.
    for limit, step in queried:
        assert int(limit) == min(int(step) + 32, 768) - 1
