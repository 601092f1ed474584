"""`circuitpress.toml` into typed, frozen objects. Every error names the file, the line and
the key."""

from __future__ import annotations

import builtins
import math
import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from circuitpress.errors import CONTROL_HINT, UserError, choices_hint, control_character
from circuitpress.urls import BASE_URL_HINT, WEB_LINK_HINT, is_base_url, is_web_link

CONFIG_NAME = "circuitpress.toml"
DEVICES = ("auto", "cpu", "cuda", "mps")
EXECUTORS = ("local", "ray")
# The largest input side a model may declare: a batch of 64 images of 4096 x 4096 pixels is
# already 12 GB of float32.
MAX_INPUT_SIDE = 4096


@dataclass(frozen=True)
class Affiliation:
    """An author's institution, as MyST and Quarto describe one (markup/authors.py parses the
    front matter forms). `details` keeps the rest (city, country, ror, ...) for themes."""

    name: str
    url: str | None = None
    department: str | None = None
    id: str | None = None
    details: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Author:
    name: str
    url: str | None = None
    # The first affiliation, kept for themes and configs written before `affiliations`.
    affiliation: str | None = None
    affiliation_url: str | None = None
    affiliations: tuple[Affiliation, ...] = ()
    email: str | None = None
    orcid: str | None = None
    corresponding: bool = False
    # Keys circuitpress does not use (roles, note, github, ...), kept for themes.
    metadata: tuple[tuple[str, Any], ...] = ()

    def all_affiliations(self) -> tuple[Affiliation, ...]:
        """`affiliations`, or the single `affiliation` of a config table, as a tuple."""
        if self.affiliations:
            return self.affiliations
        if self.affiliation:
            return (Affiliation(self.affiliation, self.affiliation_url),)
        return ()


def is_organisation(name: str) -> bool:
    """'The circuitpress authors', 'OpenAI Clarity Team': a group, not a person's name.

    Citations must not invert such a name into 'authors, The circuitpress'."""
    words = name.split()
    return bool(words) and (words[0].lower() == "the" or len(words) >= 4)


@dataclass(frozen=True)
class Preprocessing:
    """How images reach a model: pixel range, normalisation, input size (height, width)."""

    input_range: tuple[float, float] = (0.0, 1.0)
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    input_size: tuple[int, int] = (64, 64)


@dataclass(frozen=True)
class ModelConfig:
    """One `[models.NAME]` table. Exactly one of zoo, lucent, factory, transformers is set."""

    name: str
    zoo: str | None = None
    lucent: str | None = None
    factory: str | None = None
    # A local Hugging Face folder (config, safetensors, tokenizer), absolute: a language model.
    transformers: Path | None = None
    weights: Path | None = None  # absolute path, resolved against the site folder
    dataset: str | None = None  # a procedural dataset name, or a folder (absolute) of images
    preprocessing: Preprocessing | None = None  # None: the source's defaults
    line: int = 1  # line of the table header, for errors
    # The preprocessing keys the table declares: the others keep the source's defaults (a
    # lucent model declaring only input_size keeps lucent's pixel range).
    preprocessing_keys: frozenset[str] = frozenset()

    @property
    def source(self) -> str:
        if self.zoo:
            return f"zoo:{self.zoo}"
        if self.lucent:
            return f"lucent:{self.lucent}"
        if self.transformers is not None:
            return f"transformers:{self.transformers.name}"
        return f"factory:{self.factory}"


@dataclass(frozen=True)
class SiteSettings:
    title: str = "Untitled site"
    base_url: str = "/"  # path or full URL; only its path is used for internal links
    description: str = ""
    authors: tuple[Author, ...] = ()
    language: str = "en"
    license: str = ""  # no licence is claimed for a site that never chose one
    repository: str | None = None  # for "updates and corrections" links


@dataclass(frozen=True)
class BuildSettings:
    device: str = "auto"
    theme: str = "distill"
    # torch CPU threads per analysis group; 0: one per core. One by default: on a machine
    # whose cores are busy with anything else, torch's threads wait for each other (a
    # shapes-branch feature-vis batch measured 2.4 ms an image-step with one thread and 17.8
    # with two on this project's shared 2-core machine: bench/RESULTS.md).
    jobs: int = 1
    dataset_sample: int = 2048  # images per model used by examples / universality / claims
    executor: str = "local"  # where the analysis runs: "local" or "ray" (issue #15)
    # The Ray cluster to join: None starts a local Ray for the build, "auto" joins the one
    # `ray start` made on this machine, HOST:PORT any other.
    ray_address: str | None = None


@dataclass(frozen=True)
class AtlasLayer:
    """One `[atlas] layers` entry: every unit of MODEL/LAYER gets a page (structure/atlas.py)."""

    model: str
    layer: str
    line: int = 1  # of the entry in circuitpress.toml, for errors


@dataclass(frozen=True)
class SiteConfig:
    root: Path  # the site folder (absolute)
    path: Path  # the config file (absolute)
    site: SiteSettings = field(default_factory=SiteSettings)
    models: dict[str, ModelConfig] = field(default_factory=dict)
    build: BuildSettings = field(default_factory=BuildSettings)
    atlas: tuple[AtlasLayer, ...] = ()

    @property
    def base_path(self) -> str:
        """The URL path the site lives under, always starting and ending with '/'."""
        return base_path_of(self.site.base_url)

    @property
    def host(self) -> str | None:
        """`scheme://host[:port]` of base_url when it names one (feeds, Open Graph and Scholar
        need full URLs), else None."""
        return host_of(self.site.base_url)

    def display_path(self) -> str:
        return CONFIG_NAME


@lru_cache(maxsize=64)  # asked for by every URL a page shows (2,400 times in 300 pages)
def base_path_of(base_url: str) -> str:
    path = re.sub(r"^[a-z][a-z0-9+.-]*://[^/]*", "", base_url.strip(), flags=re.I)
    path = "/" + path.strip("/")
    return path if path == "/" else path + "/"


@lru_cache(maxsize=64)
def host_of(base_url: str) -> str | None:
    match = _HOST.match(base_url.strip())
    return match.group(1) if match else None


_HOST = re.compile(r"^([a-z][a-z0-9+.-]*://[^/]+)", re.I)


def _line_of(text: str, table: str | None, key: str | None) -> int:
    """Best-effort line number of `key` inside `[table]` (tomllib gives no positions)."""
    lines = text.splitlines()
    start = 0
    if table is not None:
        header = re.compile(r"^\s*\[\s*" + re.escape(table).replace(r"\.", r"\s*\.\s*") + r"\s*\]")
        quoted = re.compile(
            r"^\s*\[\s*"
            + r"\s*\.\s*".join(f'"?{re.escape(p)}"?' for p in table.split(".", 1))
            + r"\s*\]"
        )
        for i, line in enumerate(lines):
            if header.match(line) or quoted.match(line):
                start = i
                break
        else:
            return 1
        if key is None:
            return start + 1
    if key is not None:
        pat = re.compile(r"^\s*\"?" + re.escape(key) + r"\"?\s*=")
        for i in range(start, len(lines)):
            if i > start and table is not None and lines[i].lstrip().startswith("["):
                break
            if pat.match(lines[i]):
                return i + 1
    return start + 1


class _Reader:
    """Type-checked access to one TOML table, raising located UserErrors."""

    def __init__(
        self, text: str, path: Path, table: str | None, data: dict[str, Any], allowed: set[str]
    ):
        self.text, self.path, self.table, self.data = text, path, table, data
        for key in data:
            if key not in allowed:
                where = f"[{table}]" if table else "the top level"
                raise self.error(key, f"unknown key '{key}' in {where}", choices_hint(key, allowed))

    def error(self, key: str | None, message: str, hint: str | None = None) -> UserError:
        return UserError(
            message, file=CONFIG_NAME, line=_line_of(self.text, self.table, key), hint=hint
        )

    def str(self, key: str, default: str | None = None) -> str | None:
        value = self.data.get(key, default)
        if value is not None and not isinstance(value, str):
            raise self.error(key, f"'{key}' must be a string", f"got {type(value).__name__}")
        bad = control_character(value) if value else None
        if bad is not None:
            raise self.error(
                key, f"'{key}' holds control character U+{ord(bad.group()):04X}", CONTROL_HINT
            )
        return value

    # From here on `str` and `int` in annotations would name the methods (class scope).
    def int(
        self, key: builtins.str, default: builtins.int, lo: builtins.int, hi: builtins.int
    ) -> builtins.int:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise self.error(
                key, f"'{key}' must be a whole number from {lo} to {hi}", f"got {value!r}"
            )
        return value

    def ints(
        self, key: builtins.str, n: builtins.int, lo: builtins.int, hi: builtins.int
    ) -> tuple[builtins.int, ...] | None:
        value = self.data.get(key)
        if value is None:
            return None
        # A TOML float such as 32.0 is a whole number; 32.5 pixels, nan and true are not.
        if (
            not isinstance(value, list)
            or len(value) != n
            or not all(_whole(v) and lo <= v <= hi for v in value)
        ):
            raise self.error(
                key,
                f"'{key}' must be a list of {n} whole numbers from {lo} to {hi}",
                f"got {value!r}",
            )
        return tuple(int(v) for v in value)

    def link(self, key: builtins.str, url: builtins.str | None) -> builtins.str | None:
        """An http(s) URL or a site path: the value is an href on every page."""
        if url is not None and not is_web_link(url):
            raise self.error(key, f"'{key}' {url!r} is not a web link", WEB_LINK_HINT)
        return url

    def floats(self, key: builtins.str, n: builtins.int) -> tuple[float, ...] | None:
        value = self.data.get(key)
        if value is None:
            return None
        if (
            not isinstance(value, list)
            or len(value) != n
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        ):
            raise self.error(key, f"'{key}' must be a list of {n} numbers", f"got {value!r}")
        return tuple(float(v) for v in value)


def _whole(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value == int(value)
    )


def load_config(site_dir: str | Path) -> SiteConfig:
    """Read `SITE/circuitpress.toml`. A missing file is an error with a hint to run `new`."""
    root = Path(site_dir).resolve()
    path = root / CONFIG_NAME
    if not path.is_file():
        raise UserError(
            f"no {CONFIG_NAME} in {root}",
            file=CONFIG_NAME,
            line=1,
            hint="run 'circuitpress new DIR' to make a site, or pass the site folder",
        )
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise UserError(
            "the file is not UTF-8 text", file=CONFIG_NAME, line=line, hint="save it as UTF-8"
        ) from None
    return parse_config(text, root, path)


def parse_config(text: str, root: Path, path: Path) -> SiteConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        line = int(match.group(1)) if match else 1
        detail = re.sub(r" \(at line.*", "", str(exc))  # (py3.11: no backslash inside f-string)
        raise UserError(
            f"invalid TOML: {detail}",
            file=CONFIG_NAME,
            line=line,
            hint="see https://toml.io for the syntax",
        ) from None
    top = _Reader(text, path, None, data, {"site", "models", "build", "atlas"})
    for section in ("site", "models", "build", "atlas"):
        if section in data and not isinstance(data[section], dict):
            raise top.error(section, f"'{section}' must be a table", f"write [{section}]")
    site = _parse_site(text, path, data.get("site", {}))
    models = {
        name: _parse_model(text, path, root, name, table)
        for name, table in data.get("models", {}).items()
    }
    build = _parse_build(text, path, data.get("build", {}))
    atlas = _parse_atlas(text, path, data.get("atlas", {}))
    return SiteConfig(root=root, path=path, site=site, models=models, build=build, atlas=atlas)


def _parse_site(text: str, path: Path, data: dict[str, Any]) -> SiteSettings:
    keys = {"title", "base_url", "description", "authors", "language", "license", "repository"}
    r = _Reader(text, path, "site", data, keys)
    authors = tuple(
        parse_authors(data.get("authors", []), lambda msg, hint: r.error("authors", msg, hint))
    )
    for author in authors:
        # The site's authors are linked on every page that names no authors of its own.
        for what, url in (("url", author.url), ("affiliation_url", author.affiliation_url)):
            if url is not None and not is_web_link(url):
                raise UserError(
                    f"[site] author {what} {url!r} is not a web link",
                    file=CONFIG_NAME,
                    line=_value_line(text, "site", "authors", url),
                    hint=WEB_LINK_HINT,
                )
    base_url = r.str("base_url", "/") or "/"
    if not is_base_url(base_url):
        raise r.error("base_url", f"'base_url' {base_url!r} is not a web address", BASE_URL_HINT)
    return SiteSettings(
        title=r.str("title", SiteSettings.title) or SiteSettings.title,
        base_url=base_url,
        description=r.str("description", "") or "",
        authors=authors,
        language=r.str("language", "en") or "en",
        license=r.str("license", SiteSettings.license) or SiteSettings.license,
        repository=r.link("repository", r.str("repository")),
    )


def _value_line(text: str, table: str, key: str, value: str) -> int:
    """The line, from `key` on, that holds `value` (an author table spread over lines), else the
    line of `key`."""
    start = _line_of(text, table, key)
    lines = text.splitlines()
    for i in range(start - 1, len(lines)):
        if i >= start and lines[i].lstrip().startswith("[") and "=" not in lines[i]:
            break  # the next table
        if value in lines[i]:
            return i + 1
    return start


def parse_authors(value: Any, error: Any) -> list[Author]:
    """Authors as strings or tables {name, url, affiliation, affiliation_url}; shared with
    front matter."""
    if not isinstance(value, list):
        raise error("'authors' must be a list", 'e.g. authors = ["Ada Lovelace"]')
    out = []
    for item in value:
        texts = (
            [item]
            if isinstance(item, str)
            else list(item.values())
            if isinstance(item, dict)
            else []
        )
        bad = next(
            (m for m in (control_character(t) for t in texts if isinstance(t, str)) if m), None
        )
        if bad is not None:
            raise error(
                f"author entry holds control character U+{ord(bad.group()):04X}", CONTROL_HINT
            )
        if isinstance(item, str):
            out.append(Author(name=item))
        elif isinstance(item, dict):
            unknown = set(item) - {"name", "url", "affiliation", "affiliation_url"}
            if unknown or not isinstance(item.get("name"), str):
                bad_key = sorted(unknown)[0] if unknown else "name"
                raise error(
                    f"author entry has a bad key '{bad_key}'",
                    "an author is a name, or a table with name, url, affiliation, affiliation_url",
                )
            out.append(
                Author(
                    name=item["name"],
                    url=_opt_str(item.get("url")),
                    affiliation=_opt_str(item.get("affiliation")),
                    affiliation_url=_opt_str(item.get("affiliation_url")),
                )
            )
        else:
            raise error("an author must be a name or a table", f"got {item!r}")
    return out


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _parse_model(text: str, path: Path, root: Path, name: str, data: Any) -> ModelConfig:
    table = f"models.{name}"
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name) or "/" in name:
        raise UserError(
            f"bad model name '{name}'",
            file=CONFIG_NAME,
            line=_line_of(text, table, None),
            hint="use letters, digits, '-', '_' and '.'",
        )
    if not isinstance(data, dict):
        raise UserError(
            f"[models.{name}] must be a table", file=CONFIG_NAME, line=_line_of(text, None, name)
        )
    keys = {
        "zoo",
        "lucent",
        "factory",
        "transformers",
        "weights",
        "dataset",
        "input_range",
        "mean",
        "std",
        "input_size",
    }
    r = _Reader(text, path, table, data, keys)
    sources = [k for k in ("zoo", "lucent", "factory", "transformers") if k in data]
    line = _line_of(text, table, None)
    if len(sources) != 1:
        raise UserError(
            f"model '{name}' needs exactly one of zoo, lucent, factory, transformers"
            + (f" (has {', '.join(sources)})" if sources else ""),
            file=CONFIG_NAME,
            line=line,
            hint='e.g. zoo = "shapes-a"',
        )
    factory = r.str("factory")
    if factory is not None and not re.fullmatch(r"[\w.]+:[\w.]+", factory):
        raise r.error(
            "factory", f"factory '{factory}' must be 'module:callable'", 'e.g. "mypkg.nets:build"'
        )
    weights = r.str("weights")
    folder = r.str("transformers")
    if folder is not None and weights is not None:
        raise r.error(
            "weights",
            "a transformers model reads its weights from its folder",
            "drop 'weights'; the folder holds model.safetensors",
        )
    dataset = r.str("dataset")
    if dataset is not None and ("/" in dataset or dataset.startswith(".")):
        dataset = str((root / dataset).resolve())
    pre = None
    declared = frozenset(k for k in PREPROCESSING_KEYS if k in data)
    if declared:
        default = Preprocessing()
        size = r.ints("input_size", 2, 1, MAX_INPUT_SIDE)
        pre = Preprocessing(
            input_range=r.floats("input_range", 2) or default.input_range,  # type: ignore[arg-type]
            mean=r.floats("mean", 3) or default.mean,  # type: ignore[arg-type]
            std=r.floats("std", 3) or default.std,  # type: ignore[arg-type]
            input_size=(int(size[0]), int(size[1])) if size else default.input_size,
        )
        _check_preprocessing(r, pre, declared)
    return ModelConfig(
        name=name,
        zoo=r.str("zoo"),
        lucent=r.str("lucent"),
        factory=factory,
        transformers=(root / folder).resolve() if folder else None,
        weights=(root / weights).resolve() if weights else None,
        dataset=dataset,
        preprocessing=pre,
        line=line,
        preprocessing_keys=declared,
    )


PREPROCESSING_KEYS = ("input_range", "mean", "std", "input_size")


def _check_preprocessing(r: _Reader, pre: Preprocessing, declared: frozenset[str]) -> None:
    """Numbers that would turn every image into NaN, infinity or one flat value."""
    for key in ("input_range", "mean", "std"):
        if key in declared and not all(math.isfinite(v) for v in getattr(pre, key)):
            raise r.error(key, f"'{key}' must be finite numbers", f"got {list(getattr(pre, key))}")
    if "std" in declared and not all(v > 0 for v in pre.std):
        raise r.error("std", "'std' must be positive", "it divides each channel")
    lo, hi = pre.input_range
    if "input_range" in declared and lo == hi:
        raise r.error(
            "input_range", "'input_range' is empty", "give the pixel values of black and white"
        )


def _parse_build(text: str, path: Path, data: dict[str, Any]) -> BuildSettings:
    r = _Reader(
        text,
        path,
        "build",
        data,
        {"device", "theme", "jobs", "dataset_sample", "executor", "ray_address"},
    )
    device = r.str("device", "auto") or "auto"
    if device not in DEVICES:
        raise r.error("device", f"unknown device '{device}'", choices_hint(device, DEVICES))
    theme = r.str("theme", "distill") or "distill"
    # A name, never a path: `themes/NAME/` is looked up in the site and among the built-in
    # themes, and a path ("/elsewhere", "../..") would publish a folder outside the site.
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}", theme) or ".." in theme:
        raise r.error(
            "theme",
            f"bad theme name '{theme[:80]}'",
            "a theme is a name such as distill: a built-in theme or the folder themes/NAME/",
        )
    return BuildSettings(
        device=device,
        theme=theme,
        jobs=r.int("jobs", BuildSettings.jobs, 0, 256),
        dataset_sample=r.int("dataset_sample", BuildSettings.dataset_sample, 16, 1_000_000),
        executor=_executor(r),
        ray_address=_ray_address(r),
    )


def _executor(r: _Reader) -> str:
    executor = r.str("executor", "local") or "local"
    if executor not in EXECUTORS:
        raise r.error(
            "executor", f"unknown executor '{executor}'", choices_hint(executor, EXECUTORS)
        )
    return executor


def _ray_address(r: _Reader) -> str | None:
    address = r.str("ray_address")
    if address is not None and not is_ray_address(address):
        raise r.error(
            "ray_address",
            f"'ray_address' {address[:80]!r} is not a Ray address",
            'use "auto" (the cluster `ray start` made on this machine) or HOST:PORT',
        )
    return address


def is_ray_address(address: str) -> bool:
    """ "auto", HOST:PORT or ray://HOST:PORT (a Ray client server)."""
    if address == "auto":
        return True
    return bool(re.fullmatch(r"(ray://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}", address))


def _parse_atlas(text: str, path: Path, data: dict[str, Any]) -> tuple[AtlasLayer, ...]:
    """`[atlas] layers = ["MODEL/LAYER", ...]`: layers are checked against the model facts by
    the build (structure/atlas.py); here only their form."""
    r = _Reader(text, path, "atlas", data, {"layers"})
    value = data.get("layers", [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise r.error(
            "layers", "'layers' must be a list of \"MODEL/LAYER\" strings", f"got {value!r}"
        )
    out: list[AtlasLayer] = []
    for entry in value:
        line = _value_line(text, "atlas", "layers", f'"{entry}"')
        model, sep, layer = entry.partition("/")
        if not sep or not model or not layer or control_character(entry):
            raise UserError(
                f"atlas layer {entry[:80]!r} is not MODEL/LAYER",
                file=CONFIG_NAME,
                line=line,
                hint='e.g. layers = ["shapes-a/conv2"]',
            )
        item = AtlasLayer(model, layer, line)
        if any((a.model, a.layer) == (model, layer) for a in out):
            raise UserError(f"atlas layer '{entry}' is listed twice", file=CONFIG_NAME, line=line)
        out.append(item)
    return tuple(out)
