"""Dataset examples: one streaming pass over a model's dataset serves every examples request.

Hooks on every requested layer record activations batch by batch; per requested unit a running
top-k is merged with the batch maxima (a stable sort of the running top-k concatenated with the
batch, so ties keep the earlier image), and the activations are dropped: memory is
O(units x k), never O(images). The forward pass stops at the deepest requested layer.

After the pass, only the winning images are fetched again and run once more to draw heatmaps
(the unit's map upsampled to the image) and to crop each example around the receptive field of
its maximum. Receptive fields are measured once per layer from input gradients, which works for
any architecture (branches, dilations) without parsing its modules. A token layer [B, T, C] (a
ViT's blocks) ranks each channel's strongest token and crops that token's image patch
(`TokenPatches`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from circuitpress.analysis.models.capture import as_maps, capture, token_grid
from circuitpress.analysis.models.modes import channels_last, frozen
from circuitpress.requests import ExamplesRequest, Result, UnitRef

if TYPE_CHECKING:
    from circuitpress.analysis.engine import EngineEnv

Batch = tuple[int, torch.Tensor, Any]  # (index of the first image, float NCHW in 0..1, labels)
Progress = Callable[[int, int], None]
MIN_CROP_FRACTION = 0.25  # crops never smaller than a quarter of the image: tiny RFs stay legible
REFETCH_BATCH = 256


@dataclass
class _LayerUnits:
    """The units of one layer, split by how their value is read, with running top-k state."""

    units: list[UnitRef] = field(default_factory=list)
    k: int = 1
    tokens: bool = False  # a token sequence [B, T, C]: positions are tokens (t, 0)

    def prepare(self, channels: int, device: torch.device) -> None:
        plain = [
            (i, u.channel)
            for i, u in enumerate(self.units)
            if u.channel is not None and u.position is None
        ]
        neurons = [
            (i, u.channel, u.position)
            for i, u in enumerate(self.units)
            if u.channel is not None and u.position is not None
        ]
        dirs = [(i, u) for i, u in enumerate(self.units) if u.channel is None]
        self.plain_rows = [i for i, _ in plain]
        self.plain_channels = torch.tensor([c for _, c in plain], dtype=torch.long, device=device)
        # Every channel in order (the common "all units of a layer" case) needs no gather.
        self.all_channels = [c for _, c in plain] == list(range(channels))
        self.dir_rows = [i for i, _ in dirs]
        weights = torch.zeros(len(dirs), channels)
        for r, (_, u) in enumerate(dirs):
            for ch, coef in u.terms:
                weights[r, ch] = coef
        self.dir_weights = weights.to(device)
        self.neuron_rows = [i for i, _, _ in neurons]
        self.neuron_index = [(c, p) for _, c, p in neurons]
        order = self.plain_rows + self.dir_rows + self.neuron_rows
        # Maps from the concatenated [plain, directions, neurons] order back to unit order.
        self.unorder = torch.argsort(torch.tensor(order, dtype=torch.long)).to(device)
        n = len(self.units)
        self.values = torch.full((n, self.k), -float("inf"), device=device)
        self.indices = torch.full((n, self.k), -1, dtype=torch.long, device=device)
        self.positions = torch.zeros((n, self.k), dtype=torch.long, device=device)

    def unit_maps(self, acts: torch.Tensor) -> torch.Tensor:
        """[B, U, H, W] maps of every unit (neurons: their channel's map), in unit order."""
        parts = []
        if self.plain_rows:
            parts.append(acts if self.all_channels else acts.index_select(1, self.plain_channels))
        if self.dir_rows:
            parts.append(torch.einsum("bchw,uc->buhw", acts, self.dir_weights))
        if self.neuron_rows:
            channels = torch.tensor([c for c, _ in self.neuron_index], device=acts.device)
            parts.append(acts.index_select(1, channels))
        maps = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        return maps.index_select(1, self.unorder) if len(parts) > 1 else maps

    def batch_maxima(self, acts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, U] values and flat positions of each unit's maximum in each image."""
        maps = self.unit_maps(acts)
        b, u, h, w = maps.shape
        flat = maps.reshape(b, u, h * w)
        values, positions = flat.max(dim=2)
        for row, (_, (y, x)) in zip(self.neuron_rows, self.neuron_index, strict=True):
            values[:, row] = flat[:, row, y * w + x]
            positions[:, row] = y * w + x
        return values, positions

    def merge(self, values: torch.Tensor, positions: torch.Tensor, start: int) -> None:
        """Merge a batch's maxima into the running top-k (earlier images win ties)."""
        b = values.shape[0]
        index = torch.arange(start, start + b, device=values.device).expand(len(self.units), b)
        all_values = torch.cat([self.values, values.T], dim=1)
        order = torch.sort(all_values, dim=1, descending=True, stable=True).indices[:, : self.k]
        self.values = all_values.gather(1, order)
        self.indices = torch.cat([self.indices, index], dim=1).gather(1, order)
        self.positions = torch.cat([self.positions, positions.T], dim=1).gather(1, order)


def stream_topk(
    module: nn.Module,
    units: dict[str, tuple[list[UnitRef], int]],
    batches: Iterable[Batch],
    *,
    normalize: Callable[[torch.Tensor], torch.Tensor] | None = None,
    device: torch.device | str = "cpu",
    total: int | None = None,
    progress: Progress | None = None,
) -> tuple[dict[str, _LayerUnits], dict[str, tuple[int, int]]]:
    """The streaming pass: per layer (`units` maps layer names to their units and k), the
    top-k (values, dataset indices, flat positions) of each unit, and each layer's map size
    (H, W)."""
    device = torch.device(device)
    norm = normalize or (lambda x: x)
    names = list(units)
    state = {name: _LayerUnits(list(units[name][0]), units[name][1]) for name in names}
    grids: dict[str, tuple[int, int]] = {}
    module = module.to(device)
    seen = 0
    with (
        frozen(module),
        torch.no_grad(),
        channels_last(module) as nhwc,
        capture(module, names) as cap,
    ):
        layout = torch.channels_last if nhwc else torch.contiguous_format
        for start, images, _labels in batches:
            images = images.to(device, non_blocking=True).float().contiguous(memory_format=layout)
            outs = cap.run(norm(images))
            for name, out in zip(names, outs, strict=True):
                acts = as_maps(out)
                layer = state[name]
                if name not in grids:
                    grids[name] = (acts.shape[2], acts.shape[3])
                    layer.tokens = (out[0] if isinstance(out, (tuple, list)) else out).dim() == 3
                    layer.prepare(acts.shape[1], device)
                values, positions = layer.batch_maxima(acts)
                layer.merge(values, positions, start)
            seen += images.shape[0]
            if progress is not None:
                progress(seen, total or seen)
    return state, grids


@dataclass(frozen=True)
class ReceptiveField:
    """Where a layer position looks in the input: size, and the centre of position (0, 0)."""

    height: float
    width: float
    center_y0: float
    center_x0: float
    stride_y: float
    stride_x: float

    def box(
        self, y: int, x: int, image: tuple[int, int], minimum: int
    ) -> tuple[int, int, int, int]:
        """A crop [y0, x0, y1, x1) of constant size around position (y, x), inside the image."""
        ih, iw = image
        h = int(min(ih, max(round(self.height), minimum)))
        w = int(min(iw, max(round(self.width), minimum)))
        cy = self.center_y0 + y * self.stride_y
        cx = self.center_x0 + x * self.stride_x
        y0 = int(min(max(round(cy - h / 2), 0), ih - h))
        x0 = int(min(max(round(cx - w / 2), 0), iw - w))
        return y0, x0, y0 + h, x0 + w


def receptive_field(
    module: nn.Module,
    layer: str,
    image_size: tuple[int, int],
    *,
    normalize: Callable[[torch.Tensor], torch.Tensor] | None = None,
    device: torch.device | str = "cpu",
) -> ReceptiveField:
    """Measure the receptive field of the layer's central position from input gradients.

    Eight random inputs, gradients of |activations| at the centre, union of the pixels that
    receive any gradient: max pooling routes gradient to one pixel per window, and several
    random inputs spread those choices over the whole window.
    """
    device = torch.device(device)
    norm = normalize or (lambda x: x)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand((8, 3, *image_size), generator=gen).to(device).requires_grad_(True)
    with frozen(module), capture(module, [layer]) as cap:
        (out,) = cap.run(norm(x))
        acts = as_maps(out)
        h, w = acts.shape[2:]
        yc, xc = h // 2, w // 2
        acts[:, :, yc, xc].abs().sum().backward()
    if x.grad is None:
        raise RuntimeError("the layer does not depend on the input")
    support = (x.grad.abs().sum(dim=(0, 1)) > 0).cpu().numpy()
    ih, iw = image_size
    stride_y, stride_x = ih / h, iw / w
    if not support.any():  # a dead centre: fall back to the grid cell
        return ReceptiveField(stride_y, stride_x, stride_y / 2, stride_x / 2, stride_y, stride_x)
    ys, xs = np.nonzero(support)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    return ReceptiveField(
        height=float(y1 - y0),
        width=float(x1 - x0),
        center_y0=(y0 + y1) / 2 - yc * stride_y,
        center_x0=(x0 + x1) / 2 - xc * stride_x,
        stride_y=stride_y,
        stride_x=stride_x,
    )


@dataclass(frozen=True)
class TokenPatches:
    """Where the tokens of a sequence layer lie in the image: the first `prefix` tokens (a
    class token) are the whole image, the others a rows x cols grid of patches (`token_grid`).
    Without a grid (tokens that do not tile the image) every token is the whole image."""

    tokens: int
    prefix: int
    rows: int
    cols: int
    image: tuple[int, int]

    @classmethod
    def of(cls, tokens: int, image: tuple[int, int]) -> "TokenPatches":
        grid = token_grid(tokens, image)
        prefix, rows, cols = grid if grid is not None else (tokens, 0, 0)
        return cls(tokens, prefix, rows, cols, image)

    def box(self, token: int, minimum: int) -> tuple[int, int, int, int]:
        """The crop [y0, x0, y1, x1) of the token's patch, grown about its centre to at least
        `minimum` pixels a side (inside the image); the whole image for prefix tokens."""
        ih, iw = self.image
        if token < self.prefix or not self.rows:
            return 0, 0, ih, iw
        ph, pw = ih // self.rows, iw // self.cols
        r, c = divmod(token - self.prefix, self.cols)
        cy, cx = r * ph + ph / 2, c * pw + pw / 2
        h, w = min(ih, max(ph, minimum)), min(iw, max(pw, minimum))
        y0 = int(min(max(round(cy - h / 2), 0), ih - h))
        x0 = int(min(max(round(cx - w / 2), 0), iw - w))
        return y0, x0, y0 + h, x0 + w

    def heatmap(self, values: torch.Tensor) -> torch.Tensor:
        """[H, W]: each patch token's value over its patch (prefix tokens have no place; with
        no grid, the mean of all tokens everywhere)."""
        ih, iw = self.image
        flat = values.reshape(-1)
        if not self.rows:
            return flat.mean().expand(ih, iw).clone()
        grid = flat[self.prefix :].reshape(1, 1, self.rows, self.cols)
        return F.interpolate(grid, size=(ih, iw), mode="nearest")[0, 0]


def _as_nchw(images: Any) -> torch.Tensor:
    """Dataset images as a float NCHW tensor in 0..1 (accepts tensors or NumPy, NCHW or NHWC)."""
    t = images if isinstance(images, torch.Tensor) else torch.as_tensor(np.asarray(images))
    if t.dtype == torch.uint8:
        t = t.float() / 255.0
    t = t.float()
    if t.dim() == 4 and t.shape[1] not in (1, 3) and t.shape[3] in (1, 3):
        t = t.permute(0, 3, 1, 2)
    return t


def top_examples(
    module: nn.Module,
    requests: Sequence[ExamplesRequest],
    batches: Iterable[Batch],
    fetch: Callable[[list[int]], Any],
    *,
    normalize: Callable[[torch.Tensor], torch.Tensor] | None = None,
    device: torch.device | str = "cpu",
    total: int | None = None,
    progress: Progress | None = None,
) -> dict[ExamplesRequest, Result]:
    """Every request's top-k examples from one pass over `batches`; `fetch(indices)` returns
    those dataset images again (for crops and heatmaps)."""
    if not requests:
        return {}
    device = torch.device(device)
    norm = normalize or (lambda x: x)
    units: dict[str, tuple[list[UnitRef], int]] = {}
    for req in requests:
        listed, k = units.get(req.ref.layer, ([], 1))
        if req.ref not in listed:
            listed.append(req.ref)
        units[req.ref.layer] = (listed, max(k, req.k))
    state, grids = stream_topk(
        module,
        units,
        batches,
        normalize=norm,
        device=device,
        total=total,
        progress=progress,
    )

    # Per unit, the largest k any request asked for; those winners are all that is fetched.
    wanted_k: dict[tuple[str, int], int] = {}
    for req in requests:
        key = (req.ref.layer, state[req.ref.layer].units.index(req.ref))
        wanted_k[key] = max(wanted_k.get(key, 0), req.k)
    winners = {
        key: [int(i) for i in state[key[0]].indices[key[1], :k].tolist() if i >= 0]
        for key, k in wanted_k.items()
    }
    order = sorted({i for found in winners.values() for i in found})
    if not order:
        raise RuntimeError("the dataset yielded no images")
    where = {idx: n for n, idx in enumerate(order)}
    pictures = _as_nchw(fetch(order))
    names = list(units)
    maps = {
        n: _winner_maps(module, state[n], winners, n, pictures, where, norm, device) for n in names
    }
    image_size = (pictures.shape[2], pictures.shape[3])
    fields: dict[str, ReceptiveField | TokenPatches] = {
        n: receptive_field(module, n, image_size, normalize=norm, device=device)
        for n in names
        if grids[n] != (1, 1) and not state[n].tokens
    }
    for n in names:
        if state[n].tokens:
            fields[n] = TokenPatches.of(grids[n][0], image_size)

    results: dict[ExamplesRequest, Result] = {}
    for req in requests:
        layer = state[req.ref.layer]
        row = layer.units.index(req.ref)
        results[req] = _result(
            req,
            layer,
            row,
            where,
            pictures,
            maps[req.ref.layer],
            grids[req.ref.layer],
            fields.get(req.ref.layer),
        )
    return results


def _winner_maps(
    module: nn.Module,
    units: _LayerUnits,
    winners: dict[tuple[str, int], list[int]],
    name: str,
    pictures: torch.Tensor,
    where: dict[int, int],
    norm: Callable[[torch.Tensor], torch.Tensor],
    device: torch.device,
) -> dict[tuple[int, int], torch.Tensor]:
    """(dataset index, unit row) -> the unit's map on that image, for the winners of layer
    `name` only.

    Only the images this layer needs are run again, and only up to this layer.
    """
    mine = {key[1]: found for key, found in winners.items() if key[0] == name}
    images = sorted({i for found in mine.values() for i in found})
    wanted = {i: [row for row, found in mine.items() if i in found] for i in images}
    out: dict[tuple[int, int], torch.Tensor] = {}
    with frozen(module), torch.no_grad(), capture(module, [name]) as cap:
        for s in range(0, len(images), REFETCH_BATCH):
            chunk = images[s : s + REFETCH_BATCH]
            x = pictures[[where[i] for i in chunk]].to(device)
            (acts,) = cap.run(norm(x))
            unit_maps = units.unit_maps(as_maps(acts))
            for j, i in enumerate(chunk):
                for row in wanted[i]:
                    out[(i, row)] = unit_maps[j, row].cpu()
    return out


def _result(
    req: ExamplesRequest,
    layer: _LayerUnits,
    row: int,
    where: dict[int, int],
    pictures: torch.Tensor,
    maps: dict[tuple[int, int], torch.Tensor],
    grid: tuple[int, int],
    rf: ReceptiveField | TokenPatches | None,
) -> Result:
    """Crops, heatmaps and numbers for one request."""
    found = [
        (v, int(i), int(p))
        for v, i, p in zip(
            layer.values[row, : req.k].tolist(),
            layer.indices[row, : req.k].tolist(),
            layer.positions[row, : req.k].tolist(),
            strict=True,
        )
        if i >= 0
    ]
    ih, iw = pictures.shape[2:]
    top = max(found[0][0], 1e-8) if found else 1.0
    minimum = int(round(MIN_CROP_FRACTION * min(ih, iw)))
    crops, heats, boxes = [], [], []
    for _value, index, flat in found:
        n = where[index]
        if isinstance(rf, TokenPatches):
            heat = rf.heatmap(maps[(index, row)])
        else:
            unit_map = maps[(index, row)][None, None]
            heat = F.interpolate(unit_map, size=(ih, iw), mode="bilinear", align_corners=False)
            heat = heat[0, 0]
        if found[0][0] > 0:
            # One scale for all k examples (the top value), so their heatmaps compare.
            heat = (heat / top).clamp(0.0, 1.0)
        else:  # a unit that never goes above zero: show where it is least negative
            heat = (heat - heat.min()) / (heat.max() - heat.min()).clamp_min(1e-8)
        if req.crop and isinstance(rf, TokenPatches):
            y0, x0, y1, x1 = rf.box(flat, minimum)  # the strongest token's patch
        elif req.crop and isinstance(rf, ReceptiveField):
            y0, x0, y1, x1 = rf.box(flat // grid[1], flat % grid[1], (ih, iw), minimum)
        else:
            y0, x0, y1, x1 = 0, 0, ih, iw
        crops.append(pictures[n, :, y0:y1, x0:x1].permute(1, 2, 0).numpy())
        heats.append(heat[y0:y1, x0:x1].numpy())
        boxes.append([y0, x0, y1, x1])
    return Result(
        data={
            "values": [float(v) for v, _, _ in found],
            "indices": [i for _, i, _ in found],
            "boxes": boxes,
            "positions": [[p // grid[1], p % grid[1]] for _, _, p in found],
        },
        arrays={
            "images": np.ascontiguousarray(np.stack(crops), dtype=np.float32),
            "heatmaps": np.ascontiguousarray(np.stack(heats), dtype=np.float32),
        },
    )


def compute_group(
    requests: list[ExamplesRequest], env: "EngineEnv"
) -> dict[ExamplesRequest, Result]:
    """Engine handler: every examples request of one model, one pass over its dataset."""
    name = requests[0].ref.model
    model = env.models.get(name)
    dataset = model.dataset()
    for layer in dict.fromkeys(r.ref.layer for r in requests):
        model.layer(layer)  # a clear error, naming the model, for a layer it does not have
    limit = min(env.sample_size, len(dataset))
    label = f"examples {name} ({len(requests)})"
    return top_examples(
        model.module,
        requests,
        dataset.batches(env.batch_size, limit),
        lambda indices: dataset.images(indices),
        normalize=model.normalize,
        device=env.device,
        total=limit,
        progress=lambda done, total: env.progress(label, done, total),
    )
