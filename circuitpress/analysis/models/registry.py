"""Load the models of `[models.NAME]` tables safely, and the images they are analysed on.

Three sources: `zoo` (the built-in models), `lucent` (lucent.modelzoo, with a local weights
file), and `factory = "module:callable"` (site folder on sys.path). Weights are safetensors, or a
torch state dict read with `torch.load(weights_only=True)`: nothing here ever runs code from a
model file. Every problem a user can fix is a one-line UserError at the model's table.
"""

from __future__ import annotations

import importlib
import pickle
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from circuitpress.analysis.models import sources
from circuitpress.analysis.models.datasets import ImageDataset, open_dataset
from circuitpress.analysis.models.zoo.specs import ZOO
from circuitpress.config import CONFIG_NAME, ModelConfig, Preprocessing, SiteConfig
from circuitpress.errors import UserError, choices_hint

__all__ = ["ModelRegistry", "LoadedModel", "ImageDataset", "resolve_device", "load_state_dict"]


def resolve_device(device: str = "auto") -> torch.device:
    """auto: CUDA when available, then Apple's MPS, else CPU. An unavailable choice is an error."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError(
            "device 'cuda' is not available on this machine", hint="use --device auto or cpu"
        )
    if device == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise UserError(
            "device 'mps' is not available on this machine", hint="use --device auto or cpu"
        )
    if device not in ("cpu", "cuda", "mps"):
        raise UserError(f"unknown device '{device}'", hint="use auto, cpu, cuda or mps")
    return torch.device(device)


@dataclass
class LoadedModel:
    """A model ready for analysis: eval mode, on the registry's device, no parameter gradients."""

    name: str
    config: ModelConfig
    module: nn.Module
    preprocessing: Preprocessing
    classes: list[str]
    device: torch.device
    site: SiteConfig
    _dataset: ImageDataset | None = field(default=None, repr=False)
    # The registry's datasets by what they are: models analysed on the same images share one
    # (decoded once per build, see ImageDataset).
    _shared: dict[tuple[object, ...], ImageDataset] = field(default_factory=dict, repr=False)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Float NCHW images in 0..1 -> the model's input (pixel range, then mean/std)."""
        pre = self.preprocessing
        lo, hi = pre.input_range
        x = x * (hi - lo) + lo
        mean = torch.tensor(pre.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(pre.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        return (x - mean) / std

    @property
    def input_size(self) -> tuple[int, int]:
        return self.preprocessing.input_size

    def visualization_size(self) -> int:
        """The side of the square images a feature visualization optimises when its request
        asks for the model's own size (`FeatureVisRequest.size` 0): the input size (its
        smaller side when it is not square). One place decides it, so a per-model choice of
        display and optimisation size (issue #13) changes only this."""
        return min(self.input_size)

    def layer(self, name: str) -> nn.Module:
        """The module named `name` in named_modules() (dotted names like features.2.0 work)."""
        modules = dict(self.module.named_modules())
        if name not in modules or name == "":
            raise UserError(
                f"model '{self.name}' has no layer '{name}'",
                hint=choices_hint(name, [n for n in modules if n]),
            )
        return modules[name]

    def dataset(self) -> ImageDataset:
        """The images this model is analysed on (cached)."""
        if self._dataset is None:
            kind, folder = sources.check_dataset(self.config, self.site)
            what = str(folder) if folder is not None else sources.dataset_name(self.config)
            key = (kind, what, self.site.build.dataset_sample, self.preprocessing.input_size)
            if key not in self._shared:
                self._shared[key] = open_dataset(self.config, self.site, self.input_size)
            self._dataset = self._shared[key]
        return self._dataset


class ModelRegistry:
    """Models by name from the site config, loaded once each on one device."""

    def __init__(self, config: SiteConfig, device: str = "auto") -> None:
        self.config = config
        self.device = resolve_device(device)
        self._loaded: dict[str, LoadedModel] = {}
        self._datasets: dict[tuple[object, ...], ImageDataset] = {}

    def names(self) -> list[str]:
        return list(self.config.models)

    def get(self, name: str) -> LoadedModel:
        if name not in self._loaded:
            if name not in self.config.models:
                raise UserError(
                    f"unknown model '{name}'",
                    file=CONFIG_NAME,
                    line=1,
                    hint=choices_hint(name, self.config.models)
                    + (
                        f"; declare it as [models.{name}]" if name not in self.config.models else ""
                    ),
                )
            self._loaded[name] = self._load(self.config.models[name])
        return self._loaded[name]

    def _load(self, model: ModelConfig) -> LoadedModel:
        if model.zoo:
            module, classes = _load_zoo(model, self.config)
        elif model.lucent:
            module, classes = _load_lucent(model, self.config), []
        else:
            module, classes = _load_factory(model, self.config), []
        module.eval()
        for p in module.parameters():
            p.requires_grad_(False)
        module.to(self.device)
        preprocessing = sources.default_preprocessing(model)
        if "input_size" not in model.preprocessing_keys and model.factory:
            # A factory's model may say what it takes (torchvision's VisionTransformer
            # asserts its `image_size`): better than a default it cannot run on.
            own = module_input_size(module)
            if own is not None:
                preprocessing = replace(preprocessing, input_size=own)
        return LoadedModel(
            name=model.name,
            config=model,
            module=module,
            preprocessing=preprocessing,
            classes=classes,
            device=self.device,
            site=self.config,
            _shared=self._datasets,
        )


def module_input_size(module: nn.Module) -> tuple[int, int] | None:
    """The image size a module declares as an attribute: `image_size` (torchvision's
    VisionTransformer, many ViTs) or `input_size`, an int or an (H, W) pair; None without one."""
    for attr in ("image_size", "input_size", "img_size"):
        value = getattr(module, attr, None)
        if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 4096:
            return value, value
        if (
            isinstance(value, (tuple, list))
            and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 4096 for v in value)
        ):
            return int(value[0]), int(value[1])
    return None


# --- sources -------------------------------------------------------------------------------------


def _load_zoo(model: ModelConfig, config: SiteConfig) -> tuple[nn.Module, list[str]]:
    from circuitpress.analysis.models.zoo.models import build_model

    name = sources.check_zoo_name(model)
    path = sources.weights_file(model)
    if path is None or not path.is_file():
        raise sources.model_error(
            model,
            f"model '{model.name}': the weights of zoo model '{name}' are missing ({path})",
            "reinstall circuitpress or run: "
            f"python -m circuitpress.analysis.models.zoo.train {name}",
        )
    module = build_model(name)
    _fit(module, load_state_dict(path, model, config), path, model, config)
    return module, list(ZOO[name].classes)


def _load_lucent(model: ModelConfig, config: SiteConfig) -> nn.Module:
    try:
        from lucent import modelzoo
    except ImportError as exc:  # pragma: no cover - lucent is a dependency
        raise sources.model_error(
            model, f"lucent is not installed ({exc})", "pip install torch-lucent"
        ) from None
    builder = getattr(modelzoo, model.lucent or "", None)
    names = [
        n
        for n in dir(modelzoo)
        if not n.startswith("_") and n[0].islower() and callable(getattr(modelzoo, n))
    ]
    if not callable(builder):
        raise sources.model_error(
            model,
            f"model '{model.name}': lucent has no model '{model.lucent}'",
            choices_hint(model.lucent or "", names),
        )
    if model.weights is None:
        raise sources.missing_lucent_weights(model)
    # Build without pretrained weights (that would download), then load the local file.
    try:
        module = (
            builder(pretrained=False) if model.lucent == "inceptionv1" else builder(weights=None)
        )
    except TypeError:
        module = builder()
    _fit(module, load_state_dict(model.weights, model, config), model.weights, model, config)
    return module


def _load_factory(model: ModelConfig, config: SiteConfig) -> nn.Module:
    spec = model.factory or ""
    module_name, _, attr = spec.partition(":")
    root = str(config.root)
    if root not in sys.path:
        sys.path.insert(0, root)  # the site folder's own modules are importable by the factory
    _forget_foreign(module_name.split(".")[0], config.root)
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as exc:  # any failure inside the user's module is the user's to fix
        raise sources.model_error(
            model,
            f"model '{model.name}': cannot import factory '{spec}' "
            f"({type(exc).__name__}: {_short(exc)})",
            "the module path is relative to the site folder; check its name and that it imports",
        ) from None
    if not callable(obj):
        raise sources.model_error(
            model,
            f"model '{model.name}': factory '{spec}' is not callable",
            "point factory at a function (or class) that returns the nn.Module",
        )
    try:
        module = obj()
    except Exception as exc:
        raise sources.model_error(
            model,
            f"model '{model.name}': factory '{spec}' failed ({type(exc).__name__}: {_short(exc)})",
            "the factory is called with no arguments and must return the model",
        ) from None
    if not isinstance(module, nn.Module):
        raise sources.model_error(
            model,
            f"model '{model.name}': factory '{spec}' returned {type(module).__name__}, "
            "not a torch nn.Module",
            "return the model itself (an nn.Module instance)",
        )
    if model.weights is not None:
        _fit(module, load_state_dict(model.weights, model, config), model.weights, model, config)
    return module


def _forget_foreign(top: str, root: Path) -> None:
    """Drop an already imported `top` package that lives outside this site when the site has its
    own: another site (or an earlier serve rebuild) must not shadow this site's module."""
    existing = sys.modules.get(top)
    if existing is None or not ((root / top).is_dir() or (root / f"{top}.py").is_file()):
        return
    origin = getattr(existing, "__file__", None)
    if origin is not None and Path(origin).resolve().is_relative_to(root):
        return
    for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
        del sys.modules[name]
    importlib.invalidate_caches()


# --- weights ------------------------------------------------------------------------------------


def load_state_dict(path: Path, model: ModelConfig, config: SiteConfig) -> dict[str, torch.Tensor]:
    """Read a state dict from safetensors or a torch file, never executing code from it."""
    shown = sources.display(path, config)
    if not path.is_file():
        raise sources.model_error(
            model,
            f"model '{model.name}': weights file '{shown}' not found",
            "check 'weights' (relative to the site folder)",
        )
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as exc:  # SafetensorError, OSError, …: the file is not valid safetensors
            raise sources.model_error(
                model,
                f"model '{model.name}': weights file '{shown}' is not a valid safetensors file "
                f"({_short(exc)})",
                "re-export it with safetensors.torch.save_file(model.state_dict(), ...)",
            ) from None
    if suffix in (".pt", ".pth", ".bin", ".ckpt"):
        try:
            data = torch.load(str(path), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            # weights_only refuses any global outside tensors and plain containers: the file
            # would run code when unpickled, so it is never opened any other way.
            raise sources.model_error(
                model,
                f"model '{model.name}': refusing to load '{shown}': "
                "unpickling it would execute code",
                "save a plain state dict (torch.save(model.state_dict(), f)) or use safetensors",
            ) from None
        except Exception as exc:
            raise sources.model_error(
                model,
                f"model '{model.name}': weights file '{shown}' cannot be read ({_short(exc)})",
                "is it a torch.save()d state dict? re-save it, or use safetensors",
            ) from None
        return _as_state_dict(data, model, shown)
    raise sources.model_error(
        model,
        f"model '{model.name}': weights file '{shown}' has an unknown format "
        f"'{suffix or '(none)'}'",
        "use .safetensors, or a torch state dict saved as .pt or .pth",
    )


def _as_state_dict(data: Any, model: ModelConfig, shown: str) -> dict[str, torch.Tensor]:
    # Training checkpoints often wrap the weights: {"state_dict": {...}} or {"model": {...}}.
    if isinstance(data, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if isinstance(data.get(key), dict):
                data = data[key]
                break
    if isinstance(data, dict) and data and all(isinstance(v, torch.Tensor) for v in data.values()):
        return data
    raise sources.model_error(
        model,
        f"model '{model.name}': '{shown}' does not hold a state dict "
        "(a mapping of names to tensors)",
        "save model.state_dict(), not the model object",
    )


def _fit(
    module: nn.Module,
    state: dict[str, torch.Tensor],
    path: Path,
    model: ModelConfig,
    config: SiteConfig,
) -> None:
    """load_state_dict(strict) with a one-line explanation when the shapes or names disagree."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"missing {_few(missing)}")
        if unexpected:
            parts.append(f"unexpected {_few(unexpected)}")
        if mismatched:
            parts.append(f"shape mismatch {_few(mismatched)}")
        raise sources.model_error(
            model,
            f"model '{model.name}': weights '{sources.display(path, config)}' "
            f"do not fit the module ({'; '.join(parts)})",
            "the weights must come from the same architecture as the factory/zoo model builds",
        )
    module.load_state_dict(state, strict=True)


def _few(items: list[str], n: int = 3) -> str:
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:160]
