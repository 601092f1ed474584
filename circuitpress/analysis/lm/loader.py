"""Load language models offline through TransformerLens 4's `TransformerBridge`, and the token
windows they are analysed on.

The Hugging Face model and tokenizer are read from the local folder with `local_files_only`
and safetensors only (never a pickle), then handed to `TransformerBridge.boot_transformers`
(`hf_model=`, `tokenizer=`), which then makes no hub call either. Hook names are
TransformerLens' (`blocks.0.mlp.hook_post`, `blocks.1.attn.hook_pattern`); hooks live only as
long as a `bridge.hooks(...)` block or a `run_with_cache` call, so an ablation never leaks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from circuitpress.analysis.lm import sources
from circuitpress.config import ModelConfig, SiteConfig
from circuitpress.errors import UserError

PROBE_SEQUENCES = 16  # repeated random token sequences of the head scores and loss:repeated
PROBE_SEED = 0
MAX_PROBE_LENGTH = 24


def _offline() -> None:
    # Set before transformers is imported: no code path may reach a hub.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@dataclass
class LMModel:
    """A language model ready for analysis: the bridge in eval mode, no parameter gradients."""

    name: str
    config: ModelConfig
    bridge: Any  # transformer_lens.model_bridge.TransformerBridge
    tokenizer: Any
    device: torch.device
    site: SiteConfig
    _windows: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    _probes: np.ndarray | None = field(default=None, repr=False)
    _texts: dict[int, str] = field(default_factory=dict, repr=False)

    @property
    def cfg(self) -> Any:
        return self.bridge.cfg

    @property
    def n_layers(self) -> int:
        return int(self.cfg.n_layers)

    @property
    def n_heads(self) -> int:
        return int(self.cfg.n_heads)

    @property
    def n_ctx(self) -> int:
        return int(self.cfg.n_ctx)

    @property
    def bos(self) -> int:
        tok = self.tokenizer
        for value in (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id):
            if value is not None:
                return int(value)
        return 0

    def special_ids(self) -> set[int]:
        return {int(i) for i in getattr(self.tokenizer, "all_special_ids", [])} | {self.bos}

    def encode(self, text: str) -> list[int]:
        """The text's tokens after BOS, as the bridge's `to_tokens` gives them."""
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return [self.bos, *[int(i) for i in ids]]

    def token_texts(self, ids: Any) -> list[str]:
        """Each token as text (decoded alone, so byte-level markers become characters);
        memoised per token id: examples of every neuron of a layer decode ~30,000 tokens."""
        texts = self._texts
        out = []
        for raw in ids:
            i = int(raw)
            text = texts.get(i)
            if text is None:
                text = texts[i] = self.tokenizer.decode([i])
            out.append(text)
        return out

    def windows(self) -> tuple[np.ndarray, np.ndarray]:
        """The dataset as token windows: int64 [N, n_ctx] (each starting with BOS) and their
        lengths [N]; at most `[build] dataset_sample` windows, in the dataset's order."""
        if self._windows is None:
            limit = self.site.build.dataset_sample
            texts = sources.read_texts(self.config, self.site, limit)
            rows: list[list[int]] = []
            span = self.n_ctx - 1
            for text in texts:
                ids = self.encode(text)[1:]
                for start in range(0, len(ids), span):
                    chunk = ids[start : start + span]
                    if len(chunk) >= 2:
                        rows.append([self.bos, *chunk])
                    if len(rows) >= limit:
                        break
                if len(rows) >= limit:
                    break
            if not rows:
                raise sources.error(
                    self.config,
                    f"model '{self.name}': its text dataset gives no token window",
                    "the documents are empty after tokenisation",
                )
            lengths = np.array([len(r) for r in rows], dtype=np.int64)
            tokens = np.full((len(rows), self.n_ctx), self.bos, dtype=np.int64)
            for i, r in enumerate(rows):
                tokens[i, : len(r)] = r
            self._windows = (tokens, lengths)
        return self._windows

    def probe_length(self) -> int:
        return min(MAX_PROBE_LENGTH, (self.n_ctx - 1) // 2)

    def probes(self) -> np.ndarray:
        """Seeded repeated random token sequences: int64 [N, 1 + 2L], BOS then a random
        sequence of L ordinary tokens twice (TransformerLens' induction probe)."""
        if self._probes is None:
            vocab = int(self.cfg.d_vocab)
            special = self.special_ids()
            allowed = np.array([i for i in range(vocab) if i not in special], dtype=np.int64)
            rng = np.random.default_rng(PROBE_SEED)
            length = self.probe_length()
            seqs = allowed[rng.integers(0, len(allowed), size=(PROBE_SEQUENCES, length))]
            bos = np.full((PROBE_SEQUENCES, 1), self.bos, dtype=np.int64)
            self._probes = np.concatenate([bos, seqs, seqs], axis=1)
        return self._probes


def load(model: ModelConfig, site: SiteConfig, device: torch.device) -> LMModel:
    """The bridge of one `[models.NAME]` language model, offline."""
    folder = sources.model_folder(model, site)
    _offline()
    try:
        import transformers
        from transformer_lens.model_bridge import TransformerBridge
    except ImportError as exc:
        raise sources.error(
            model,
            f"model '{model.name}': TransformerLens is not installed ({exc})",
            "pip install 'circuitpress[lm]'",
        ) from None
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception as exc:
        raise _load_error(model, site, folder, "tokenizer", exc) from None
    try:
        hf = transformers.AutoModelForCausalLM.from_pretrained(
            str(folder),
            local_files_only=True,
            use_safetensors=True,
            attn_implementation="eager",
            dtype=torch.float32,
        )
    except Exception as exc:
        raise _load_error(model, site, folder, "model", exc) from None
    try:
        bridge = TransformerBridge.boot_transformers(
            str(folder), hf_model=hf, tokenizer=tokenizer, device=str(device)
        )
    except Exception as exc:
        raise _load_error(model, site, folder, "model", exc) from None
    bridge.eval()
    for p in bridge.parameters():
        p.requires_grad_(False)
    return LMModel(model.name, model, bridge, tokenizer, device, site)


def _load_error(
    model: ModelConfig, site: SiteConfig, folder: Any, what: str, exc: BaseException
) -> UserError:
    text = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
    return sources.error(
        model,
        f"model '{model.name}': cannot load the {what} in '{sources.display(folder, site)}' "
        f"({type(exc).__name__}: {text})",
        "the folder must be what save_pretrained() writes, for a causal LM TransformerLens knows",
    )


class LMRegistry:
    """Language models by name, loaded once each."""

    def __init__(self, site: SiteConfig, device: torch.device) -> None:
        self.site = site
        self.device = device
        self._loaded: dict[str, LMModel] = {}

    def get(self, name: str) -> LMModel:
        if name not in self._loaded:
            model = self.site.models[name]
            if not sources.is_lm(model):  # {logits}, {attention}, … of a vision model
                raise UserError(
                    f"model '{name}' is not a language model",
                    hint="{attention}, {heads}, {logits} and head references need "
                    'transformers = "FOLDER" or an LM zoo model',
                )
            self._loaded[name] = load(model, self.site, self.device)
        return self._loaded[name]


def lm_models(env: Any) -> LMRegistry:
    """The engine environment's language models (one registry per build)."""
    registry = getattr(env, "lm_registry", None)
    if registry is None:
        registry = LMRegistry(env.config, env.device)
        env.lm_registry = registry
    return registry


def head_output_norms(model: LMModel, z: torch.Tensor, layer: int) -> torch.Tensor:
    """|z_h W_O[h]| per token and head: [B, T, H] from hook_z [B, T, H, d_head]."""
    w_o = model.bridge.W_O[layer]  # [H, d_head, d_model]
    out = torch.einsum("bthd,hdm->bthm", z, w_o)
    return out.norm(dim=-1)


def attn_index(layer: str) -> int | None:
    """`blocks.1.attn` -> 1; None for any other layer."""
    parts = layer.split(".")
    if len(parts) == 3 and parts[0] == "blocks" and parts[1].isdigit() and parts[2] == "attn":
        return int(parts[1])
    return None
