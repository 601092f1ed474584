"""{feature} on a language model's unit is one located line, not a probe picture passed off
as a feature visualization."""

from __future__ import annotations

from click.testing import CliRunner

from circuitpress.cli import cli

PAGE = (
    "---\ntitle: F\npublished: 2026-01-01\n---\n\nText.\n\n"
    ":::{feature} toy/blocks.0.mlp.hook_post:3\n:::\n"
)


def test_feature_of_a_language_model_unit_is_one_located_line(lm_site):
    site = lm_site({"f.md": PAGE})
    result = CliRunner().invoke(cli, ["build", str(site), "--quiet"])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("content/f.md:8: {feature} toy/blocks.0.mlp.hook_post:3")
    assert "language model" in lines[0] and "{examples}" in lines[0]
    assert not (site / "_site").exists()
