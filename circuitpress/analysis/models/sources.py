"""Facts about a model's source that need no torch: default preprocessing, dataset, weights file.

Shared by `registry.py` (which loads models) and `fingerprint.py` (which must not import torch),
so both agree on which file and which preprocessing a `[models.NAME]` table means.
"""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path

from circuitpress.analysis.models.procedural import DATASETS
from circuitpress.analysis.models.zoo import weights_path
from circuitpress.analysis.models.zoo.specs import ZOO, ZOO_PREPROCESSING
from circuitpress.config import CONFIG_NAME, ModelConfig, Preprocessing, SiteConfig
from circuitpress.errors import UserError, choices_hint

# Lucid's InceptionV1 (lucent.modelzoo.inceptionv1) expects pixels in -117..138, 224x224.
LUCID_INCEPTION = Preprocessing(input_range=(-117.0, 138.0), input_size=(224, 224))
# torchvision models re-exported by lucent.modelzoo expect ImageNet normalisation.
IMAGENET = Preprocessing(
    input_range=(0.0, 1.0),
    mean=(0.485, 0.456, 0.406),
    std=(0.229, 0.224, 0.225),
    input_size=(224, 224),
)
INCEPTION_URL = (
    "https://github.com/ProGamerGov/pytorch-old-tensorflow-models/raw/master/inception5h.pth"
)
DEFAULT_DATASET = "shapes"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff")


def model_error(model: ModelConfig, message: str, hint: str | None = None) -> UserError:
    """A UserError located at the model's `[models.NAME]` table in circuitpress.toml."""
    return UserError(message, file=CONFIG_NAME, line=model.line, hint=hint)


def check_zoo_name(model: ModelConfig) -> str:
    name = model.zoo or ""
    if name not in ZOO:
        raise model_error(
            model, f"model '{model.name}': unknown zoo model '{name}'", choices_hint(name, ZOO)
        )
    return name


def source_preprocessing(model: ModelConfig) -> Preprocessing:
    """The preprocessing a model's source expects (zoo, lucent, a factory's plain 0..1)."""
    if model.zoo:
        return ZOO_PREPROCESSING
    if model.lucent:
        return LUCID_INCEPTION if model.lucent == "inceptionv1" else IMAGENET
    return Preprocessing()


def default_preprocessing(model: ModelConfig) -> Preprocessing:
    """The source's defaults with the keys the table declares in their place: declaring only
    `input_size` for lucent's InceptionV1 keeps its pixel range -117..138."""
    base = source_preprocessing(model)
    if model.preprocessing is None:
        return base
    # A config built in code (tests, plugins) may carry a whole Preprocessing, keys unlisted.
    keys = model.preprocessing_keys or frozenset(f.name for f in fields(Preprocessing))
    return replace(base, **{k: getattr(model.preprocessing, k) for k in keys})


def weights_file(model: ModelConfig) -> Path | None:
    """The weights file a model loads: the declared one, or the zoo's shipped file."""
    if model.weights is not None:
        return model.weights
    if model.zoo:
        return weights_path(check_zoo_name(model))
    return None


def missing_lucent_weights(model: ModelConfig) -> UserError:
    url = INCEPTION_URL if model.lucent == "inceptionv1" else "the torchvision weights URL"
    return model_error(
        model,
        f"model '{model.name}': lucent model '{model.lucent}' needs a local weights file "
        "(no network at build time)",
        f'download {url} into the site folder and set weights = "FILE" in [models.{model.name}]',
    )


def dataset_name(model: ModelConfig) -> str:
    """The model's dataset: a procedural name, or an absolute folder path."""
    if model.dataset:
        return model.dataset
    if model.zoo and model.zoo in ZOO:
        return ZOO[model.zoo].dataset
    return DEFAULT_DATASET


def check_dataset(model: ModelConfig, config: SiteConfig) -> tuple[str, Path | None]:
    """('procedural', None) or ('folder', path); a UserError when it is neither."""
    name = dataset_name(model)
    if name in DATASETS:
        return "procedural", None
    path = Path(name)
    if not path.is_absolute():
        path = (config.root / name).resolve()
    if not path.is_dir():
        raise model_error(
            model,
            f"model '{model.name}': dataset '{display(path, config)}' is neither a procedural "
            "dataset nor a folder of images",
            choices_hint(name, DATASETS)
            if "/" not in name
            else "check the path (relative to the site folder)",
        )
    return "folder", path


def display(path: Path, config: SiteConfig) -> str:
    """A path as the user wrote it: site-relative when inside the site folder."""
    try:
        return path.resolve().relative_to(config.root).as_posix()
    except ValueError:
        return str(path)


def image_files(folder: Path) -> list[Path]:
    """Image files under `folder`, recursively, sorted by path (the dataset's fixed order)."""
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
