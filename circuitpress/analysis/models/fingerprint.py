"""Content fingerprints of models and datasets, WITHOUT importing torch.

A cached build must be able to decide "nothing changed" without paying torch's import, so these
read bytes and definitions only: a model's fingerprint hashes its weight bytes, its source
identity (zoo name and architecture / lucent name / factory and the factory's source file) and
its preprocessing; a dataset's hashes its definition (procedural: name, parameters, generator
version, seed, sample size) or its files (names and contents). File hashes are memoised per
(path, mtime, size), so repeated builds hash each weights file once per change.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

from circuitpress.analysis.lm import sources as lm_sources
from circuitpress.analysis.models import sources
from circuitpress.analysis.models.procedural import HELDOUT_SEED, get_dataset
from circuitpress.analysis.models.zoo.specs import ZOO
from circuitpress.config import ModelConfig, SiteConfig

_FILE_HASHES: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, streamed, memoised by path + mtime + size."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    digest = _FILE_HASHES.get(key)
    if digest is None:
        h = hashlib.sha256()
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        digest = _FILE_HASHES[key] = h.hexdigest()
    return digest


def _factory_source(model: ModelConfig, config: SiteConfig) -> str:
    """Hash of the factory module's file when it lives in the site folder (its architecture)."""
    module = (model.factory or "").partition(":")[0]
    base = config.root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return file_sha256(candidate)
    return "external"  # an installed package: its version is the user's to pin


def model_fingerprint(model: ModelConfig, config: SiteConfig) -> str:
    """Changes whenever the weights' bytes, the source, the architecture or the preprocessing do."""
    if lm_sources.is_lm(model):
        return lm_sources.model_fingerprint(model, config)
    parts: dict[str, object] = {"source": model.source}
    if model.zoo:
        spec = ZOO[sources.check_zoo_name(model)]
        parts["zoo"] = [list(spec.widths), spec.kernel1, list(spec.classes)]
    if model.lucent and model.weights is None:
        raise sources.missing_lucent_weights(model)
    if model.factory:
        parts["factory_source"] = _factory_source(model, config)
    weights = sources.weights_file(model)
    if weights is not None:
        if not weights.is_file():
            raise sources.model_error(
                model,
                f"model '{model.name}': weights file "
                f"'{sources.display(weights, config)}' not found",
                "check 'weights' (relative to the site folder)"
                if model.weights is not None
                else "reinstall circuitpress or run: "
                f"python -m circuitpress.analysis.models.zoo.train {model.zoo}",
            )
        parts["weights"] = file_sha256(weights)
    parts["preprocessing"] = asdict(sources.default_preprocessing(model))
    return _digest(parts)


def dataset_fingerprint(model: ModelConfig, config: SiteConfig) -> str:
    """Changes whenever the images the model is analysed on could change."""
    if lm_sources.is_lm(model):
        return lm_sources.dataset_fingerprint(model, config)
    kind, folder = sources.check_dataset(model, config)
    size = list(sources.default_preprocessing(model).input_size)
    sample = config.build.dataset_sample
    if kind == "procedural" or folder is None:
        dataset = get_dataset(sources.dataset_name(model))
        definition = dataset.fingerprint_text()
        return _digest(
            {"procedural": definition, "seed": HELDOUT_SEED, "sample": sample, "size": size}
        )
    files = sources.image_files(folder)[:sample]
    listing = [[p.relative_to(folder).as_posix(), file_sha256(p)] for p in files]
    return _digest({"folder": listing, "sample": sample, "size": size})


def _digest(parts: dict[str, object]) -> str:
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
