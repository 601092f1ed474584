"""What the up-to-date check looks at: every file a build may publish, never a folder outside."""

from __future__ import annotations

import time
from pathlib import Path

from circuitpress.build.stamp import input_stamp


def stamp(root: Path) -> str:
    return input_stamp(root, root / "_site", {}, [])


def test_any_file_beside_a_page_counts_by_content(tmp_path: Path) -> None:
    (tmp_path / "content").mkdir()
    picture = tmp_path / "content" / "pic.webp"
    picture.write_bytes(b"one")
    before = stamp(tmp_path)
    picture.write_bytes(b"two")  # same size, any image type
    assert stamp(tmp_path) != before


def test_a_linked_folder_outside_the_site_is_not_walked(tmp_path: Path) -> None:
    site, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    (site / "data").mkdir(parents=True)
    elsewhere.mkdir()
    for i in range(200):
        (elsewhere / f"{i}.png").write_bytes(b"x" * 10)
    (site / "data" / "big").symlink_to(elsewhere, target_is_directory=True)
    before = stamp(site)
    (elsewhere / "0.png").write_bytes(b"changed")  # never read: not published
    start = time.perf_counter()
    assert stamp(site) == before
    assert time.perf_counter() - start < 1.0
    (site / "data" / "big").unlink()
    (site / "data" / "big").symlink_to(tmp_path, target_is_directory=True)
    assert stamp(site) != before  # where the link points still counts


def test_a_broken_link_does_not_crash_it(tmp_path: Path) -> None:
    (tmp_path / "content").mkdir()
    (tmp_path / "content" / "gone.md").symlink_to(tmp_path / "nowhere.md")
    assert stamp(tmp_path)


def test_a_page_named_cname_is_part_of_the_output_check(prose_site) -> None:
    """Only a CNAME *file* is the user's: the folder a page `CNAME.md` builds is the site's, so
    removing its page from the output makes the next build write it again."""
    from click.testing import CliRunner

    from circuitpress.cli import cli

    site = prose_site({"content/CNAME.md": "---\ntitle: C\n---\n\nText.\n"})
    assert CliRunner().invoke(cli, ["build", str(site), "--quiet"]).exit_code == 0
    page = site / "_site" / "CNAME" / "index.html"
    page.unlink()
    result = CliRunner().invoke(cli, ["build", str(site)])
    assert result.exit_code == 0, result.output
    assert "up to date" not in result.output and page.is_file()
