import pytest

from circuitpress.build.write import SiteWriter


def test_commit_swaps_in_whole_site(tmp_path):
    out = tmp_path / "_site"
    out.mkdir()
    (out / "old.html").write_text("old")
    w = SiteWriter(out)
    w.write("index.html", "<p>new</p>")
    rel = w.asset(b"\x89PNG...", "png", name="conv1 3")
    assert rel.startswith("assets/figures/conv1-3-") and rel.endswith(".png")
    w.commit()
    assert (out / "index.html").read_text() == "<p>new</p>"
    assert not (out / "old.html").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["_site"]


def test_failed_commit_leaves_previous_site(tmp_path, monkeypatch):
    out = tmp_path / "_site"
    out.mkdir()
    (out / "index.html").write_text("previous")
    w = SiteWriter(out)
    w.write("index.html", "next")
    w.copy("static/missing.png", tmp_path / "does-not-exist.png")
    with pytest.raises(FileNotFoundError):
        w.commit()
    assert (out / "index.html").read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["_site"]
