"""Content-addressed store of analysis results, safe to commit (like Quarto's `_freeze`).

An entry's key hashes the request, the fingerprints of its models and their datasets, the
analysis code's version and the torch and lucent versions. Entries are `.npz` files read with
`allow_pickle=False` (a cache file never executes code), written to a temporary file and renamed
into place, so a killed build never leaves a half-written entry. A corrupt entry is a miss with a
warning. Nothing here imports torch.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Iterable

from circuitpress.errors import BuildWarning
from circuitpress.requests import Request, Result

CACHE_DIR = Path(".circuitpress") / "cache"
_META = "__meta__"
FORMAT_VERSION = "1"


ANALYSIS_SOURCE = Path(__file__).resolve().parents[1] / "analysis"


@lru_cache(maxsize=1)
def analysis_code_version() -> str:
    """Hash of the analysis package's source and of requests.py (the request vocabulary it
    parses, such as stimulus names): any change to either invalidates results.

    Read as bytes from disk, never imported, so computing it costs no torch import.
    """
    root = ANALYSIS_SOURCE
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel in ("models/zoo/train.py", "lm/train.py"):
            continue  # the training scripts do not change what analyses compute
        digest.update(rel.encode())
        digest.update(path.read_bytes())
    digest.update(b"requests.py")
    digest.update((root.parent / "requests.py").read_bytes())
    return digest.hexdigest()[:16]


@lru_cache(maxsize=1)
def library_versions() -> str:
    """Versions of the libraries results are computed with, from package metadata (no
    import): language models run through transformers and TransformerLens, and tokenize
    with tokenizers, so a new version of any of them can change a result."""
    parts = []
    for name in (
        "torch",
        "torch-lucent",
        "numpy",
        "transformers",
        "transformer-lens",
        "tokenizers",
    ):
        try:
            parts.append(f"{name}={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{name}=none")
    return ";".join(parts)


def cache_key(request: Request, fingerprints: Iterable[str]) -> str:
    """The content key of one request; `fingerprints` are those of its models and datasets."""
    digest = hashlib.sha256()
    for part in (
        FORMAT_VERSION,
        request.key(),
        *fingerprints,
        analysis_code_version(),
        library_versions(),
    ):
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


@dataclass
class Cache:
    """Results on disk under `root/xx/KEY.npz`. `warnings` collects corrupt-entry notices."""

    root: Path
    warnings: list[BuildWarning] = field(default_factory=list)
    hits: int = 0
    misses: int = 0
    read_only: bool = False  # `check` writes nothing, not even model facts

    def path_of(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npz"

    def get(self, key: str) -> Result | None:
        path = self.path_of(key)
        if not path.is_file():
            self.misses += 1
            return None
        try:
            result = _read(path)
        except (
            OSError,
            ValueError,
            KeyError,
            zipfile.BadZipFile,
            EOFError,
            json.JSONDecodeError,
        ) as exc:
            self.warnings.append(
                BuildWarning(
                    f"corrupt cache entry {path.name} ignored and recomputed "
                    f"({type(exc).__name__})",
                    file=str(CACHE_DIR / key[:2] / path.name),
                    line=1,
                )
            )
            self.misses += 1
            return None
        self.hits += 1
        return result

    def put(self, key: str, result: Result) -> None:
        if self.read_only:
            return
        path = self.path_of(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        import numpy as np  # here, not at the top: a prose build never reads or writes results

        buf = io.BytesIO()
        meta = json.dumps(result.data, sort_keys=True, separators=(",", ":")).encode("utf-8")
        arrays = {name: np.ascontiguousarray(arr) for name, arr in result.arrays.items()}
        if _META in arrays:
            raise ValueError(f"array name {_META} is reserved")
        arrays = {_META: np.frombuffer(meta, dtype=np.uint8), **arrays}
        np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as bool
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(buf.getvalue())
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _read(path: Path) -> Result:
    import numpy as np

    with np.load(path, allow_pickle=False) as npz:
        meta = json.loads(bytes(npz[_META]).decode("utf-8"))
        arrays = {name: npz[name] for name in npz.files if name != _META}
    if not isinstance(meta, dict):
        raise ValueError("metadata is not an object")
    return Result(data=meta, arrays=arrays)
