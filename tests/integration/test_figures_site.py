"""A real build (the zoo's shapes-a and shapes-b, a small dataset sample) of an article with a
grid of units, a single feature, examples, a 1-D and a 2-D tuning figure and chips of two
models; the built HTML shows what a Distill reader expects of its figures."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from circuitpress.cli import cli

CONFIG = """\
[site]
title = "A zoo site"
[models.shapes-a]
zoo = "shapes-a"
[models.shapes-b]
zoo = "shapes-b"
[build]
dataset_sample = 64
"""

ARTICLE = """\
---
title: Figures
---

Chips of two models: {unit}`shapes-a/conv2:3` and {unit}`shapes-b/conv2:3`.

:::{features} shapes-a/conv1:1, 2, 3
:steps: 16
Three early units.
:::

:::{feature} shapes-a/conv1:4
:steps: 16
One unit.
:::

:::{examples} shapes-a/conv1:4
:k: 4
Its examples.
:::

:::{tuning} shapes-a/conv1:4
:stimulus: orientation x frequency
:steps: 6
A 2-D sweep.
:::

:::{tuning} shapes-a/conv1:4
:steps: 12
A 1-D sweep.
:::
"""

HYPHEN_NUMBER = re.compile(r"(?<![\w.#/-])-\d")  # an ASCII hyphen used as a minus sign


def visible_text(html: str) -> str:
    """The text a reader sees: no tags, attributes or SVG (the colour bar belongs to the
    theme's SVG code)."""
    html = re.sub(r"<svg.*?</svg>", " ", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", html)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("figures") / "site"
    (root / "content").mkdir(parents=True)
    (root / "circuitpress.toml").write_text(CONFIG)
    (root / "content" / "figures.md").write_text(ARTICLE)
    result = CliRunner().invoke(
        cli, ["build", str(root), "--strict", "--quiet", "--jobs", "1", "--device", "cpu"]
    )
    assert result.exit_code == 0, result.output
    return root / "_site"


def article(site: Path) -> str:
    return (site / "figures" / "index.html").read_text(encoding="utf-8")


def figures(html: str) -> list[str]:
    return re.findall(r"<figure.*?</figure>", html, flags=re.S)


@pytest.mark.slow
def test_grid_figure_and_one_caption_per_figure(site: Path) -> None:
    found = figures(article(site))
    assert len(found) == 5
    for figure in found:
        assert figure.count("<figcaption") == 1, figure[:300]
        assert 'class="cp-figure-facts"' in figure  # the machine's facts inside it
        assert "cp-feature-label" not in figure and "cp-tuning-meta" not in figure
    grid = found[0]
    assert 'class="cp-feature cp-feature-grid"' in grid
    cells = re.findall(r'<div class="cp-feature-cell" data-unit="([^"]+)"', grid)
    assert cells == ["shapes-a/conv1:1", "shapes-a/conv1:2", "shapes-a/conv1:3"]
    imgs = re.findall(r"<img [^>]*>", grid)
    # The zoo's 64 px images at 2x in a grid and 3x alone, pixelated.
    assert len(imgs) == 3 and all('width="128"' in i and "cp-pixelated" in i for i in imgs)
    single = re.findall(r"<img [^>]*>", found[1])
    assert len(single) == 1 and 'width="192" height="192"' in single[0]
    assert "cp-pixelated" in single[0]
    for src in re.findall(r'src="(/assets/[^"]+)"', grid + found[1]):
        assert (site / src.lstrip("/")).is_file(), src


@pytest.mark.slow
def test_numbers_are_formatted_one_way(site: Path) -> None:
    html = article(site)
    text = visible_text(html)
    assert not HYPHEN_NUMBER.search(text), HYPHEN_NUMBER.search(text)
    # The examples' values share their decimals.
    values = re.findall(r'<span class="cp-example-value">([^<]+)</span>', figures(html)[2])
    assert len(values) == 4
    assert len({len(v.split(".")[1]) if "." in v else 0 for v in values}) == 1, values
    # The heat map's cell titles use the true minus sign where a response is negative.
    titles = re.findall(r"<rect [^>]*><title>[^<]*: ([^<]+)</title>", figures(html)[3])
    assert titles and not any(t.startswith("-") for t in titles)
    for page in (site / "units").rglob("index.html"):
        shown = visible_text(page.read_text(encoding="utf-8"))
        assert not HYPHEN_NUMBER.search(shown), (page, HYPHEN_NUMBER.search(shown))
        # A full page lists its connections' norms; a neighbour page lists none of its own.
        assert "norm\u202f" in shown or "Strongest" in shown or "No article mentions" in shown


@pytest.mark.slow
def test_heat_map_thumbnails_along_their_own_axes(site: Path) -> None:
    heat = figures(article(site))[3]
    rows = re.findall(
        r'<image class="cp-stimulus cp-stimulus-row"[^>]*x="([\d.]+)" y="([\d.]+)"', heat
    )
    cols = re.findall(
        r'<image class="cp-stimulus cp-stimulus-column"[^>]*x="([\d.]+)" y="([\d.]+)"', heat
    )
    assert rows and cols
    assert len({x for x, _ in rows}) == 1 and len({y for _, y in cols}) == 1
    cells = [
        (float(x), float(y))
        for x, y in re.findall(r'<rect x="([\d.]+)" y="([\d.]+)"[^>]*><title>', heat)
    ]
    left = min(x for x, _ in cells)
    assert all(float(x) < left for x, _ in rows)  # beside the rows
    bottom = max(y for _, y in cells)
    assert all(float(y) > bottom for _, y in cols)  # under the columns
    assert 'aria-label="stimuli along orientation"' in figures(article(site))[4]  # 1-D: a strip


@pytest.mark.slow
def test_unit_pages_link_every_unit_they_name_with_its_thumbnail(site: Path) -> None:
    for unit in ("shapes-a/conv2/3", "shapes-b/conv2/3", "shapes-a/conv1/4"):
        page = (site / "units" / unit / "index.html").read_text(encoding="utf-8")
        rows = re.findall(r'<li class="cp-unit-connection.*?</li>', page, flags=re.S)
        assert rows, unit
        for row in rows:
            assert "cp-unit-thumb-large" in row, row
            href = re.search(r'<a class="cp-unit-link" href="/([^"]+)"', row)
            assert href, row
            assert (site / href.group(1) / "index.html").is_file(), href.group(1)
            thumb = re.search(r'<img class="cp-unit-thumb-large" src="/([^"]+)"', row)
            assert thumb and (site / thumb.group(1)).is_file()
        # Positive and negative at the same size.
        sizes = re.findall(
            r'<figure class="cp-unit-vis-(?:main|negative)">\s*'
            r'<img[^>]*width="(\d+)" height="(\d+)"',
            page,
        )
        assert len(sizes) == 2 and sizes[0] == sizes[1], sizes
    # A neighbour page says where it was reached from and links back.
    neighbours = [
        p
        for p in (site / "units").rglob("index.html")
        if "No article mentions this unit" in p.read_text(encoding="utf-8")
    ]
    assert neighbours
    assert 'href="/units/' in neighbours[0].read_text(encoding="utf-8")
    # On every unit page of the site, every unit named is linked to a page, with a thumbnail.
    for path in (site / "units").rglob("index.html"):
        for row in re.findall(
            r'<li class="cp-unit-connection.*?</li>', path.read_text("utf-8"), flags=re.S
        ):
            href = re.search(r'<a class="cp-unit-link" href="/([^"]+)"', row)
            assert href and (site / href.group(1) / "index.html").is_file(), (path, row)
            assert "cp-unit-thumb-large" in row, (path, row)


@pytest.mark.slow
def test_chips_show_their_model_on_a_page_of_two_models(site: Path) -> None:
    html = article(site)
    chips = re.findall(r'<span class="cp-unit" data-unit="([^"]+)" data-model="([^"]+)">', html)
    assert chips == [("shapes-a/conv2:3", "shapes-a"), ("shapes-b/conv2:3", "shapes-b")]
    assert html.count('<span class="cp-unit-model">') == 2
