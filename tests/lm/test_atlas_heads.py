"""An atlas of an attention layer lists its heads: the same pages as `blocks.1.attn:H1`."""

from __future__ import annotations

from circuitpress.build.options import BuildOptions
from circuitpress.build.pipeline import SiteBuild

PAGE = "---\ntitle: Heads\npublished: 2026-01-01\n---\n\nSee {unit}`toy/blocks.1.attn:H1`.\n"


def test_an_attention_layer_atlas_links_head_pages(lm_site):
    site = lm_site({"heads.md": PAGE}, extra='\n[atlas]\nlayers = ["toy/blocks.1.attn"]\n')
    build = SiteBuild(site, BuildOptions(write=False, compute=False))
    build.run()
    files = set(build.writer.files)
    heads = sorted(f for f in files if f.startswith("units/toy/blocks.1.attn/"))
    assert heads and all(f.split("/")[3].startswith("H") for f in heads), heads
    assert "units/toy/blocks.1.attn/H1/index.html" in files
    grid = build.writer.files["atlas/toy/blocks.1.attn/index.html"].decode()
    assert 'href="/units/toy/blocks.1.attn/H1/"' in grid
