"""A tiny seeded Hugging Face model made in the test (no download) and sites around it."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

N_CTX = 48


def make_model(folder: Path, layers: int = 2, seed: int = 0, tokenizer: bool = True) -> Path:
    """A GPT-2 shaped model (2 layers, 4 heads, d_model 32) with seeded random weights and the
    LM zoo's character-level tokenizer, written by save_pretrained."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from circuitpress.analysis.lm.train import build_tokenizer

    tok = build_tokenizer()
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(tok.get_vocab()),  # type: ignore[attr-defined]
        n_positions=N_CTX,
        n_embd=32,
        n_layer=layers,
        n_head=4,
        n_inner=64,
        bos_token_id=0,
        eos_token_id=0,
    )
    GPT2LMHeadModel(config).save_pretrained(folder, safe_serialization=True)
    if tokenizer:
        tok.save_pretrained(folder)  # type: ignore[attr-defined]
    return folder


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_model(tmp_path_factory.mktemp("hf") / "tiny")


CONFIG = """\
[site]
title = "LM"
[models.toy]
transformers = "{folder}"
{extra}
[build]
dataset_sample = 48
"""


@pytest.fixture
def lm_site(tmp_path: Path, tiny_model: Path) -> Callable[..., Path]:
    """A site whose model `toy` is the tiny model; `pages` maps content names to Markdown."""

    def make(pages: dict[str, str], extra: str = "", folder: Path | None = None) -> Path:
        site = tmp_path / "site"
        (site / "content").mkdir(parents=True, exist_ok=True)
        (site / "circuitpress.toml").write_text(
            CONFIG.format(folder=folder or tiny_model, extra=extra)
        )
        for name, text in pages.items():
            (site / "content" / name).write_text(text)
        return site

    return make
