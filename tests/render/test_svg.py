"""SVG figure pieces: what a reader sees must fit inside the drawing."""

from __future__ import annotations

import re

from circuitpress.render.svg import colorbar_svg


def test_colorbar_end_labels_grow_inwards_and_are_short() -> None:
    svg = colorbar_svg(-65.2234, 55.1187, diverge=True)
    labels = re.findall(r'<text x="([0-9.]+)" y="25" text-anchor="(\w+)">([^<]*)</text>', svg)
    assert [(anchor, text) for _x, anchor, text in labels] == [
        ("start", "-65.2"),
        ("middle", "-5.05"),
        ("end", "55.1"),
    ]
    width = float(re.search(r'width="([0-9.]+)"', svg).group(1))
    assert float(labels[0][0]) >= 0 and float(labels[-1][0]) <= width


def test_colorbar_labels_of_a_narrow_range_stay_distinct() -> None:
    svg = colorbar_svg(100.01, 100.04, diverge=False)
    labels = re.findall(r'text-anchor="\w+">([^<]*)</text>', svg)
    assert len(set(labels)) == 3, labels
