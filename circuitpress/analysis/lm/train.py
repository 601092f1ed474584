"""Train the LM zoo reproducibly on the procedural corpus and repeated random token sequences.

    python -m circuitpress.analysis.lm.train induction-2l [attn-1l ...] [--out DIR]
    python -m circuitpress.analysis.lm.train induction-2l --check    # retrain, compare sha256

Each model is a GPT-2 shaped transformer (Hugging Face `GPT2LMHeadModel`, no dropout) over a
character-level tokenizer built here. Half of every batch is windows of the corpus
(`corpus.TRAIN_SEED`), half is BOS and a random token sequence repeated to the window's end:
the second copy is predictable only by copying, so a two-layer model forms induction heads
(a previous-token head in layer 0 that an induction head in layer 1 K-composes with), and the
one-layer control cannot. Reproducible by construction: seeded init and batches, deterministic
algorithms, one thread; same seed -> byte-identical weights on CPU. Writes the folder
`weights/NAME/` (config, model.safetensors, tokenizer) and `weights/NAME.json` (the record).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from circuitpress.analysis.lm import corpus
from circuitpress.analysis.lm.sources import LM_ZOO, WEIGHTS_DIR, LMZooSpec

BOS, UNK = "<|bos|>", "<|unk|>"
CHARS = " .,;:!?'-\n" + corpus.LETTERS + corpus.LETTERS.upper() + "0123456789"
BATCH = 32
LR = 3e-3


def build_tokenizer() -> object:
    """A character-level fast tokenizer: BOS (also EOS and padding), UNK, then CHARS."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {BOS: 0, UNK: 1, **{c: i + 2 for i, c in enumerate(CHARS)}}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=BOS, pad_token=BOS, unk_token=UNK
    )


def build_model(spec: LMZooSpec, vocab: int) -> torch.nn.Module:
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(spec.seed)
    config = GPT2Config(
        vocab_size=vocab,
        n_positions=spec.n_ctx,
        n_embd=spec.d_model,
        n_layer=spec.layers,
        n_head=spec.heads,
        n_inner=spec.d_mlp,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=0,
    )
    return GPT2LMHeadModel(config)


def corpus_windows(spec: LMZooSpec, encode: dict[str, int], count: int) -> np.ndarray:
    """Training windows of the corpus (TRAIN_SEED): BOS and n_ctx - 1 characters."""
    rows: list[list[int]] = []
    span = spec.n_ctx - 1
    i = 0
    while len(rows) < count:
        ids = [encode.get(c, 1) for c in corpus.document(i, corpus.TRAIN_SEED, length=span + 40)]
        rows.append([0, *ids[:span]])
        i += 1
    return np.array(rows, dtype=np.int64)


def repeated_batch(spec: LMZooSpec, rng: np.random.Generator, count: int, vocab: int) -> np.ndarray:
    """BOS, then a random sequence of ordinary tokens (length 6-24) repeated to the end."""
    rows = np.zeros((count, spec.n_ctx), dtype=np.int64)
    for r in range(count):
        length = int(rng.integers(6, 25))
        seq = rng.integers(2, vocab, size=length)
        reps = np.tile(seq, spec.n_ctx // length + 1)[: spec.n_ctx - 1]
        rows[r, 1:] = reps
    return rows


def train(name: str, out: Path, steps: int | None = None) -> dict[str, object]:
    spec = LM_ZOO[name]
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    random.seed(spec.seed)
    tokenizer = build_tokenizer()
    encode = tokenizer.get_vocab()  # type: ignore[attr-defined]
    vocab = len(encode)
    model = build_model(spec, vocab)
    model.train()
    steps = steps or spec.steps
    half = BATCH // 2
    texts = corpus_windows(spec, encode, steps * half // 4 + half)
    rng = np.random.default_rng(spec.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.01)
    start = time.perf_counter()
    losses = []
    for step in range(steps):
        pick = rng.integers(0, len(texts), size=half)
        batch = np.concatenate([texts[pick], repeated_batch(spec, rng, half, vocab)])
        x = torch.from_numpy(batch)
        for group in opt.param_groups:  # linear warm-up, then constant
            group["lr"] = LR * min(1.0, (step + 1) / 100)
        loss = model(input_ids=x, labels=x).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(float(loss.detach()))
    seconds = time.perf_counter() - start
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    model.eval()
    model.save_pretrained(folder, safe_serialization=True)  # type: ignore[operator]
    tokenizer.save_pretrained(folder)  # type: ignore[attr-defined]
    digest = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    record: dict[str, object] = {
        "name": name,
        "about": spec.about,
        "layers": spec.layers,
        "heads": spec.heads,
        "d_model": spec.d_model,
        "d_mlp": spec.d_mlp,
        "n_ctx": spec.n_ctx,
        "seed": spec.seed,
        "steps": steps,
        "final_loss": float(np.mean(losses[-50:])),
        "params": int(sum(p.numel() for p in model.parameters())),
        "seconds": round(seconds, 1),
        "command": f"python -m circuitpress.analysis.lm.train {name}",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "sha256": digest,
    }
    (out / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m circuitpress.analysis.lm.train",
        description="Train the LM zoo reproducibly (character-level GPT-2 shaped models).",
    )
    parser.add_argument("names", nargs="*", default=list(LM_ZOO), help="models (default: all)")
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR, help="output folder")
    parser.add_argument("--check", action="store_true", help="retrain and compare the sha256")
    parser.add_argument("--steps", type=int, help="override the steps (quick runs)")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in LM_ZOO]
    if unknown:
        parser.error(f"unknown LM zoo model {unknown[0]!r} (choose from {', '.join(LM_ZOO)})")
    failed = 0
    for name in args.names:
        if args.check:
            shipped = json.loads((WEIGHTS_DIR / f"{name}.json").read_text())["sha256"]
            with tempfile.TemporaryDirectory() as tmp:
                record = train(name, Path(tmp), args.steps)
            same = record["sha256"] == shipped
            failed += not same
            print(f"{name}: {'identical' if same else 'DIFFERENT'} sha256 {record['sha256']}")
        else:
            record = train(name, args.out, args.steps)
            print(f"{name}: loss {record['final_loss']:.3f} in {record['seconds']} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
