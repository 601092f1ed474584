"""Facts about a language model's source that need no torch: which tables are language models,
their folders, the files a folder must hold, the text a model is analysed on, fingerprints.

A language model is `[models.NAME] transformers = "FOLDER"` (a local Hugging Face folder) or
`zoo = NAME` for a model of the LM zoo (`LM_ZOO`), shipped as such a folder under `weights/`.
Every problem a user can fix is one line at the model's table (or at the dataset's line).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from circuitpress.analysis.lm import corpus
from circuitpress.config import CONFIG_NAME, ModelConfig, SiteConfig
from circuitpress.errors import UserError

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "tokenizer.model", "vocab.txt")
TEXT_SUFFIXES = (".txt", ".md")


@dataclass(frozen=True)
class LMZooSpec:
    """A model of the LM zoo: a GPT-2 shaped transformer on the character-level corpus."""

    layers: int
    heads: int = 4
    d_model: int = 64
    d_mlp: int = 128
    n_ctx: int = 64
    seed: int = 0
    steps: int = 2000
    about: str = ""


LM_ZOO: dict[str, LMZooSpec] = {
    "induction-2l": LMZooSpec(layers=2, seed=0, about="two layers: induction heads form"),
    "induction-2l-b": LMZooSpec(layers=2, seed=1, about="the same, a second seed"),
    "attn-1l": LMZooSpec(layers=1, seed=0, about="one layer: the control, no induction heads"),
}


def is_lm(model: ModelConfig) -> bool:
    """A language model: a transformers folder, or a model of the LM zoo."""
    return model.transformers is not None or (model.zoo is not None and model.zoo in LM_ZOO)


def error(model: ModelConfig, message: str, hint: str | None = None) -> UserError:
    return UserError(message, file=CONFIG_NAME, line=model.line, hint=hint)


def display(path: Path, config: SiteConfig) -> str:
    try:
        return path.resolve().relative_to(config.root).as_posix()
    except ValueError:
        return str(path)


def model_folder(model: ModelConfig, config: SiteConfig) -> Path:
    """The Hugging Face folder a language model loads, checked: config.json, safetensors
    weights (never a pickle) and tokenizer files. A missing piece is one located line."""
    if model.transformers is not None:
        folder = model.transformers
        fix = "check 'transformers' (a folder relative to the site folder)"
    else:
        folder = WEIGHTS_DIR / str(model.zoo)
        fix = f"reinstall circuitpress or run: python -m circuitpress.analysis.lm.train {model.zoo}"
    shown = display(folder, config)
    if not folder.is_dir():
        raise error(model, f"model '{model.name}': model folder '{shown}' not found", fix)
    if not (folder / "config.json").is_file():
        raise error(
            model,
            f"model '{model.name}': '{shown}' has no config.json",
            "save the model with save_pretrained(FOLDER)",
        )
    if not weight_files(folder):
        pickled = [p.name for p in folder.glob("*.bin")] + [p.name for p in folder.glob("*.pt")]
        raise error(
            model,
            f"model '{model.name}': '{shown}' has no .safetensors weights"
            + (f" (refusing {pickled[0]}: unpickling it would execute code)" if pickled else ""),
            "save the model with save_pretrained(FOLDER, safe_serialization=True)",
        )
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise error(
            model,
            f"model '{model.name}': '{shown}' has no tokenizer (no tokenizer.json or vocab file)",
            "save the tokenizer too: tokenizer.save_pretrained(FOLDER)",
        )
    return folder


def weight_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.safetensors"))


def folder_files(folder: Path) -> list[Path]:
    """The files that decide a model: configs, weights and tokenizer, by name."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix in (".json", ".safetensors", ".txt", ".model")
    )


# --- text datasets ------------------------------------------------------------------------------


def dataset_source(model: ModelConfig, config: SiteConfig) -> tuple[str, Path | None]:
    """('corpus', None) for the built-in corpus, ('folder', DIR) of .txt documents, or
    ('jsonl', FILE) with a `text` field per line."""
    name = model.dataset
    if not name or name == corpus.CORPUS_NAME:
        return "corpus", None
    path = Path(name)
    if not path.is_absolute():
        path = (config.root / name).resolve()
    if path.is_file() and path.suffix == ".jsonl":
        return "jsonl", path
    if path.is_dir():
        return "folder", path
    raise error(
        model,
        f"model '{model.name}': text dataset '{display(path, config)}' is neither a folder of "
        ".txt documents nor a .jsonl file",
        f"use a folder, a .jsonl file with a 'text' field, or '{corpus.CORPUS_NAME}'",
    )


def text_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in TEXT_SUFFIXES)


def read_texts(model: ModelConfig, config: SiteConfig, limit: int) -> list[str]:
    """The documents a model is analysed on, in a fixed order (at most `limit`)."""
    kind, path = dataset_source(model, config)
    if kind == "corpus" or path is None:
        return corpus.documents(limit)
    shown = display(path, config)
    if kind == "folder":
        files = text_files(path)
        texts = [f.read_text(encoding="utf-8", errors="replace") for f in files[:limit]]
        texts = [t for t in texts if t.strip()]
        if not texts:
            raise error(
                model,
                f"model '{model.name}': text dataset '{shown}' holds no .txt document with text",
                "put UTF-8 .txt files in the folder",
            )
        return texts
    texts = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(
                f"not a JSON object ({exc.msg})", file=shown, line=number, hint="one object a line"
            ) from None
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise UserError(
                "a line without a 'text' string",
                file=shown,
                line=number,
                hint='write {"text": "..."} on each line',
            )
        texts.append(record["text"])
        if len(texts) >= limit:
            break
    if not texts:
        raise error(model, f"model '{model.name}': '{shown}' holds no line of text")
    return texts


def dataset_description(model: ModelConfig, config: SiteConfig) -> str:
    kind, path = dataset_source(model, config)
    if kind == "corpus" or path is None:
        return f"{corpus.CORPUS_NAME} (built-in procedural text)"
    return f"{display(path, config)} ({'.jsonl' if kind == 'jsonl' else 'folder of .txt'})"


# --- fingerprints -------------------------------------------------------------------------------


def _sha(path: Path) -> str:
    from circuitpress.analysis.models.fingerprint import file_sha256

    return file_sha256(path)


def model_fingerprint(model: ModelConfig, config: SiteConfig) -> str:
    """Changes whenever any file of the folder that decides the model does."""
    folder = model_folder(model, config)
    parts: dict[str, object] = {
        "source": "transformers",
        "zoo": model.zoo,
        "files": [[p.name, _sha(p)] for p in folder_files(folder)],
    }
    return _digest(parts)


def dataset_fingerprint(model: ModelConfig, config: SiteConfig) -> str:
    kind, path = dataset_source(model, config)
    sample = config.build.dataset_sample
    if kind == "corpus" or path is None:
        return _digest({"corpus": corpus.fingerprint_text(sample)})
    if kind == "jsonl":
        listing = [[path.name, _sha(path)]]
    else:
        listing = [[p.relative_to(path).as_posix(), _sha(p)] for p in text_files(path)[:sample]]
    return _digest({kind: listing, "sample": sample})


def _digest(parts: dict[str, object]) -> str:
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
