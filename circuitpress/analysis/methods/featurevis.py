"""Feature visualization: one batched optimisation per group of requests.

Every request of a group (same model, layer, size, lr) gets its own image(s) in one batch,
parameterised as lucent does it (`lucent.optvis.param.image`: FFT spectrum with 1/f scaling,
colour decorrelation, sigmoid). A single vectorised objective reads each image's own unit from
the hooked layer output with index tensors, and weighs it with the image's own objective
(positive part or lucent's plain mean), so the backward pass costs one batch, not one graph per
unit (summing per-unit lucent objectives is slow in backprop, lucent PR #5).

Batching never changes an image: each image's initial spectrum and its transform parameters
come from generators seeded by its own request seed, the objective of image i depends only on
image i (eval mode, no batch statistics), and Adam is element-wise. So an image computed alone
equals the same image computed in any batch, within floating-point noise.

Transforms follow lucent's `standard_transforms` (constant pad, jitter, random scale, random
rotation, jitter) with magnitudes suited to small 64px models; they are fused into one affine
resampling per step, with parameters drawn per image.
"""

from __future__ import annotations

import hashlib
import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from circuitpress.analysis.methods.fast_layers import fast_local_response_norms
from circuitpress.analysis.methods.image_conv import fast_image_gradients
from circuitpress.analysis.methods.relu_gradient import lucent_redirected_relus, redirected_relus
from circuitpress.analysis.methods.relu_pool import pooled_relus
from circuitpress.analysis.methods.unit_conv import applies as unit_conv_applies
from circuitpress.analysis.methods.unit_conv import unit_filters, unit_maps_only
from circuitpress.analysis.models.capture import as_maps, capture
from circuitpress.analysis.models.modes import channels_last, frozen, kept_memory
from circuitpress.requests import FeatureVisRequest, Result, UnitRef

if TYPE_CHECKING:
    from circuitpress.analysis.engine import EngineEnv

# lucent's tutorial uses `channel(...) - 1e2 * diversity(...)` on InceptionV1. On the zoo's
# small layers that weight drowns the unit (shapes-a conv2:5, 4 images, 128 steps: peak
# activations 3.6/13/0.0/2.1 at 1e2 against 28/27/28/31 at 1.0, and the images differ more
# at 1.0: mean pixel distance 0.44 against 0.17), so the penalty weighs 1.
DIVERSITY_WEIGHT = 1.0
INIT_SD = 0.01  # lucent's default spectrum standard deviation

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class TransformSpec:
    """Magnitudes of the robustness transforms, as in lucent's `standard_transforms`.

    lucent's defaults (pad 12, jitter 8, scale ±10%, rotate ±10°) are tuned for 224px
    ImageNet models; for 64px inputs they would move the image by a fifth of its width.
    """

    pad: int = 4
    jitter: int = 4  # lucent: jitter(8) before scaling
    scales: tuple[float, ...] = tuple(1 + (i - 5) / 100.0 for i in range(11))  # 0.95 … 1.05
    angles: tuple[float, ...] = tuple(float(a) for a in range(-5, 6)) + (0.0,) * 3
    jitter2: int = 2  # lucent: jitter(4) after rotation

    @classmethod
    def for_size(cls, size: int) -> "TransformSpec":
        unit = max(1, round(size / 64))
        return cls(pad=4 * unit, jitter=4 * unit, jitter2=2 * unit)

    def lucent_transforms(self) -> list[Callable[[torch.Tensor], torch.Tensor]]:
        """The same magnitudes as lucent transform functions (for the benchmark's peer)."""
        from lucent.optvis import transform

        return [
            transform.pad(self.pad, mode="constant", constant_value=0.5),
            transform.jitter(self.jitter),
            transform.random_scale(list(self.scales)),
            transform.random_rotate(list(self.angles)),
            transform.jitter(self.jitter2),
        ]


def _seed(*parts: object) -> int:
    """A 63-bit seed from parts; stable across runs and platforms (no Python hash())."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


@dataclass(frozen=True)
class ImageSpec:
    """One image of the batch: which unit, which sign, which seed (request seed, image index),
    which objective (`requests.OBJECTIVES`)."""

    ref: UnitRef
    negative: bool
    seed: int
    index: int = 0
    objective: str = "positive"


def _initial_spectrum(spec: ImageSpec, size: int) -> torch.Tensor:
    """The image's own initial FFT spectrum, shaped as lucent's `fft_image` parameter."""
    width = size // 2 + 2 if size % 2 else size // 2 + 1
    gen = torch.Generator().manual_seed(_seed("init", spec.seed, spec.index))
    return torch.randn((1, 3, size, width, 2), generator=gen) * INIT_SD


TRANSFORM_BLOCK = 64  # steps drawn per generator: an image's draws never depend on its total


def _transform_params(specs: Sequence[ImageSpec], steps: int, tf: TransformSpec) -> torch.Tensor:
    """Per image and step: [B, steps, 6] = (dx1, dy1, scale, angle in degrees, dx2, dy2).

    Drawn up front from each image's own generators, one per block of `TRANSFORM_BLOCK`
    steps, so a batch draws exactly what each image alone would draw, and the first 64 steps
    of a 256-step image are those of a 64-step one (a batch may mix step counts).
    """
    rows = []
    scales = torch.tensor(tf.scales)
    angles = torch.tensor(tf.angles)
    blocks = max(1, -(-steps // TRANSFORM_BLOCK))
    n = TRANSFORM_BLOCK
    for spec in specs:
        parts = []
        for block in range(blocks):
            gen = torch.Generator().manual_seed(_seed("transform", spec.seed, spec.index, block))
            j1 = torch.randint(0, tf.jitter, (n, 2), generator=gen).float() - (tf.jitter - 1) / 2
            s = scales[torch.randint(0, len(scales), (n,), generator=gen)]
            a = angles[torch.randint(0, len(angles), (n,), generator=gen)]
            j2 = torch.randint(0, tf.jitter2, (n, 2), generator=gen).float() - (tf.jitter2 - 1) / 2
            parts.append(torch.cat([j1, s[:, None], a[:, None], j2], dim=1))
        rows.append(torch.cat(parts)[:steps])
    return torch.stack(rows)  # [B, steps, 6]


def lucent_image(size: int, batch: int) -> tuple[torch.Tensor, Callable[[], torch.Tensor]]:
    """lucent's `param.image(size, batch=batch, fft=True, decorrelate=True)`: its `fft_image`
    (a spectrum parameter, 1/f scaling, inverse FFT, divided by 4), its colour decorrelation
    matrix, then a sigmoid, with the same values bit for bit (the tests compare). Three things
    run differently, none changing a bit:
    - the 1/f scale is stored expanded over the (real, imaginary) pairs: broadcast over a
      trailing dimension of 2, the multiplication (forward and backward) runs a slow scalar loop;
    - the division by 4 is folded into the colour matrix (a power of two: (x / 4) * m equals
      x * (m / 4) exactly);
    - lucent multiplies every pixel's [3] vector by the 3x3 matrix (`pixel @ M.T` on a
      channels-last permutation), which torch runs as a batched matmul of tiny matrices; here
      each image is one [3, 3] @ [3, H*W] product, the same sums, a tenth of the time of a 1x1
      convolution (oneDNN runs those slowly for 3 channels: 13 ms of a 60 ms shapes-a step).
    The spectrum starts at zero (the engine sets each image's own); it lives on lucent's device.
    """
    from lucent.optvis.param.color import color_correlation_normalized
    from lucent.optvis.param.spatial import device, rfft2d_freqs

    freqs = rfft2d_freqs(size, size)
    spectrum = torch.zeros((batch, 3) + freqs.shape + (2,), device=device, requires_grad=True)
    # lucent's scale, computed as lucent computes it.
    scale_np = 1.0 / np.maximum(freqs, 1.0 / max(size, size)) ** 1
    scale = torch.tensor(scale_np).float()[None, None, ..., None]
    scale = scale.expand(1, 1, *freqs.shape, 2).contiguous().to(device)
    # lucent computes pixel @ M.T, i.e. out[j] = sum_c M[j, c] * in[c]: M @ pixels.
    mix = torch.from_numpy(np.ascontiguousarray(color_correlation_normalized)) / 4.0

    def image() -> torch.Tensor:
        scaled = torch.view_as_complex(scale * spectrum)
        x = torch.fft.irfftn(scaled, s=(size, size), norm="ortho")[:batch, :3, :size, :size]
        b, c, h, w = x.shape
        mixed = torch.matmul(mix.to(x.device, x.dtype), x.reshape(b, c, h * w))
        return torch.sigmoid(mixed.reshape(b, c, h, w))

    return spectrum, image


class Transforms:
    """lucent's pad → jitter → scale → rotate → jitter, fused into one `grid_sample` per step.

    The output has the input's size: the padded, moved image is cropped back to the centre, so
    neuron positions `@Y,X` keep meaning the model's own output grid.
    """

    def __init__(
        self,
        specs: Sequence[ImageSpec],
        size: int,
        steps: int,
        tf: TransformSpec,
        device: torch.device,
    ):
        self.size = size
        self.pad = tf.pad
        self.params = _transform_params(specs, steps, tf).to(device)
        # Pixel centres of the output in normalised coordinates (affine_grid's,
        # align_corners=False).
        self.base = (torch.arange(size, dtype=torch.float32, device=device) * 2 + 1) / size - 1

    def keep(self, rows: torch.Tensor) -> None:
        """Only these images go on (the others reached their steps)."""
        self.params = self.params[rows]

    def __call__(self, images: torch.Tensor, step: int) -> torch.Tensor:
        p = self.params[:, step]
        full = self.size + 2 * self.pad
        # Pixel offsets to normalised [-1, 1] coordinates of the padded image.
        unit = 2.0 / full
        theta_rad = p[:, 3] * (math.pi / 180.0)
        cos, sin = torch.cos(theta_rad) / p[:, 2], torch.sin(theta_rad) / p[:, 2]
        # Output pixel u maps to input: R(-angle)/scale · (u - j2) - j1, cropped to the centre.
        crop = self.size / full
        a11, a12 = cos * crop, sin * crop
        a21, a22 = -sin * crop, cos * crop
        tx = -(cos * p[:, 4] + sin * p[:, 5]) * unit - p[:, 0] * unit
        ty = -(-sin * p[:, 4] + cos * p[:, 5]) * unit - p[:, 1] * unit
        # affine_grid's sampling grid, by broadcasting: `affine_grid` builds it with a batched
        # matmul of tiny matrices, which cost more than the sampling itself. Each coordinate is
        # (a_x * x + a_y * y + t) * (full / size), computed in place in its half of the grid.
        # The rescaling maps sampling coordinates of the padded frame to the unpadded image:
        # sampling `image - 0.5` with zeros outside and adding 0.5 back is lucent's constant
        # 0.5 pad without materialising the padded image (or its gradient).
        a11, a12, a21, a22, tx, ty = (v[:, None, None] for v in (a11, a12, a21, a22, tx, ty))
        xs, ys = self.base[None, None, :], self.base[None, :, None]
        grid = torch.empty(len(p), self.size, self.size, 2, device=p.device, dtype=p.dtype)
        for coord, a_x, a_y, t in ((grid[..., 0], a11, a12, tx), (grid[..., 1], a21, a22, ty)):
            torch.add(a_x * xs, a_y * ys, out=coord)
            coord.add_(t).mul_(full / self.size)
        return (
            F.grid_sample(
                images - 0.5, grid, mode="bilinear", padding_mode="zeros", align_corners=False
            )
            + 0.5
        )


LEAK = 0.1  # weight of the raw mean in a map objective: a gradient even where nothing fires

# Per objective (`requests.OBJECTIVES`): the weights of (mean of the positive part, plain mean)
# in the loss of a channel or direction.
OBJECTIVE_WEIGHTS = {"positive": (1.0, LEAK), "mean": (0.0, 1.0)}


class Objective:
    """Each image's own unit, vectorised over the batch with index tensors.

    A unit is a weighted sum of channels (a plain channel has one term of weight 1), padded to
    the longest direction with weight 0; `negative` flips its sign. A neuron `@Y,X` maximises
    its value. A channel or direction maximises, by default (objective "positive"), the mean
    over the map of its positive part (plus `LEAK` x the raw mean): the zoo's `convN` are
    pre-activation outputs, and the plain mean of a linear map depends only on the image's mean
    colour, so an edge detector's visualization would be a flat colour; the positive part is
    what the ReLU passes on. Objective "mean" maximises the plain mean, lucent's `channel`
    objective (a direction's weighted sum: lucent's `channel_weight` up to the channel count;
    lucent's `direction` is a cosine similarity instead). Each image has its own pair of
    weights (`OBJECTIVE_WEIGHTS`), so one batch mixes objectives with one vectorised loss.

    The reported activation is the unit's peak over the map (its trough for `negative`), the
    number dataset examples report, so a visualization and its examples compare.
    """

    def __init__(
        self,
        specs: Sequence[ImageSpec],
        device: torch.device,
        native: tuple[int, int] | None = None,
        direct: nn.Conv2d | None = None,
    ):
        width = max(len(s.ref.terms) for s in specs)
        channels = torch.zeros(len(specs), width, dtype=torch.long)
        weights = torch.zeros(len(specs), width)
        for i, spec in enumerate(specs):
            for j, (ch, coef) in enumerate(spec.ref.terms):
                channels[i, j] = ch
                weights[i, j] = coef
        self.channels = channels.to(device)
        self.weights = weights.to(device)
        self.sign = torch.tensor([-1.0 if s.negative else 1.0 for s in specs], device=device)
        # [B, 2]: each image's weights of (mean positive part, plain mean).
        self.objective_weights = torch.tensor(
            [OBJECTIVE_WEIGHTS[s.objective] for s in specs], device=device
        )
        self.positions = [s.ref.position for s in specs]
        self.neurons = [i for i, p in enumerate(self.positions) if p is not None]
        self.neuron_positions = [p for p in self.positions if p is not None]  # in that order
        self.checked = False
        self.native = native  # the layer grid the positions refer to (model's own input size)
        # The visualized conv when it computes each image's unit map alone (`unit_conv`): the
        # layer output is then [B, 1, H, W], the unit maps themselves.
        self.direct = direct
        self._filters: tuple[torch.Tensor, torch.Tensor] | None = None

    def filters(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Each image's unit as one filter of the direct conv (made once per batch)."""
        if self.direct is None:
            raise ValueError("filters() is for a batch whose layer computes unit maps alone")
        if self._filters is None:
            self._check(self.direct.out_channels)
            self._filters = unit_filters(self.direct, self.channels, self.weights)
        return self._filters

    def _check(self, c: int) -> None:
        if not self.checked:  # once: references were validated, this guards direct callers
            if int(self.channels.max()) >= c:
                raise ValueError(
                    f"unit {int(self.channels.max())} out of range: the layer has {c} channels"
                )
            self.checked = True

    def unit_maps(self, acts: torch.Tensor) -> torch.Tensor:
        """[B, H, W]: image i's unit map (the weighted sum of its channels), unsigned."""
        maps = as_maps(acts)
        b, c, h, w = maps.shape
        if self.direct is not None:
            return maps[:, 0]
        self._check(c)
        if maps.is_contiguous(memory_format=torch.channels_last):
            # Gathered from the channels-last memory as it lies ([B, H*W, C], a view): the
            # gradient then arrives channels-last, where a gather on the NCHW view gives an NCHW
            # gradient that had to be copied back to the layer's layout (~5% of a shapes-a step).
            # The terms are added one after another, in the order the NCHW path's sum over
            # dim 1 adds them (a sum over the contiguous last dimension would be vectorised
            # in another order, and its result would depend on the padding of the batch's
            # widest direction): the same values bit for bit for units of up to 17 channels
            # (past that, torch's NCHW sum groups its additions otherwise; equal to rounding).
            flat = maps.permute(0, 2, 3, 1).reshape(b, h * w, c)
            index = self.channels[:, None, :].expand(-1, h * w, -1)
            picked = flat.gather(2, index) * self.weights[:, None, :]
            unit = picked[:, :, 0]
            for term in range(1, picked.shape[2]):
                unit = unit + picked[:, :, term]
            return unit.reshape(b, h, w)
        picked = maps.gather(1, self.channels[:, :, None, None].expand(-1, -1, h, w))
        return (picked * self.weights[:, :, None, None]).sum(dim=1)

    def _neuron_values(self, unit_maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = unit_maps.shape[1:]
        at = [self._scaled(p, h, w) for p in self.neuron_positions]
        rows = torch.tensor(self.neurons, device=unit_maps.device)
        ys = torch.tensor([y for y, _ in at], device=unit_maps.device)
        xs = torch.tensor([x for _, x in at], device=unit_maps.device)
        return rows, unit_maps[rows, ys, xs]

    def activation(self, acts: torch.Tensor) -> torch.Tensor:
        """[B]: each image's peak unit value (trough when negative; a neuron's own value)."""
        maps = self.unit_maps(acts)
        um = maps.flatten(1)
        values = torch.where(self.sign > 0, um.max(dim=1).values, um.min(dim=1).values)
        if self.neurons:
            rows, neuron = self._neuron_values(maps)
            values = values.index_put((rows,), neuron)
        return values

    def loss(self, acts: torch.Tensor) -> torch.Tensor:
        """[B]: per-image loss to minimise."""
        signed = self.unit_maps(acts) * self.sign[:, None, None]
        positive, plain = self.objective_weights.unbind(1)
        loss = -(positive * signed.clamp_min(0).mean(dim=(1, 2)) + plain * signed.mean(dim=(1, 2)))
        if self.neurons:
            rows, neuron = self._neuron_values(signed)
            loss = loss.index_put((rows,), -neuron)
        return loss

    def _scaled(self, pos: tuple[int, int], h: int, w: int) -> tuple[int, int]:
        """A neuron position on this run's grid (the image size may differ from the model's)."""
        y, x = pos
        if self.native is not None and self.native != (h, w):
            y = int(round((y + 0.5) * h / self.native[0] - 0.5))
            x = int(round((x + 0.5) * w / self.native[1] - 0.5))
        return min(max(y, 0), h - 1), min(max(x, 0), w - 1)


def diversity_penalty(acts: torch.Tensor, blocks: torch.Tensor, n_blocks: int) -> torch.Tensor:
    """lucent's `objectives.diversity`, per block of images, vectorised; returns [n_blocks].

    For the images of one block: the Gram matrices of their activations, L2-normalised, and
    the sum over ordered pairs i != j of their dot products, divided by the block size — the
    quantity lucent's diversity objective negates. Here it is returned positive (a penalty).
    """
    maps = as_maps(acts)
    b, c = maps.shape[:2]
    flat = maps.reshape(b, c, -1)
    grams = torch.matmul(flat, flat.transpose(1, 2)).reshape(b, -1)
    grams = F.normalize(grams, p=2, dim=1)
    sums = torch.zeros(n_blocks, grams.shape[1], device=grams.device).index_add(0, blocks, grams)
    sizes = torch.zeros(n_blocks, device=grams.device).index_add(
        0, blocks, torch.ones(b, device=grams.device)
    )
    # sum_{i != j} <g_i, g_j> = |sum g|^2 - sum |g|^2 (each |g| = 1).
    pair_sum = (sums * sums).sum(dim=1) - sizes
    return pair_sum / sizes


def _expand(requests: Sequence[FeatureVisRequest]) -> tuple[list[ImageSpec], list[int]]:
    """One ImageSpec per image (diversity N gives N images) and each image's request index."""
    specs, owner = [], []
    for r_index, req in enumerate(requests):
        for j in range(req.diversity):
            specs.append(ImageSpec(req.ref, req.negative, req.seed, j, req.objective))
            owner.append(r_index)
    return specs, owner


def _adam(param: torch.Tensor, lr: float) -> torch.optim.Adam:
    """Adam on the spectrum: the fused kernel (one pass over the parameter instead of a dozen
    element-wise ops; the same update up to float rounding) where the device has it."""
    try:
        return torch.optim.Adam([param], lr=lr, fused=True)
    except RuntimeError:  # a device without the fused kernel
        return torch.optim.Adam([param], lr=lr)


class _Batch:
    """The images still optimising: their parameter, optimiser state, transforms and objective.

    Images of a batch may ask for different step counts. When some reach theirs, `keep`
    shrinks every per-image tensor to the others, so an image costs only its own steps.
    Nothing an image computes depends on the other images (per-image generators, an objective
    per image or per diversity block, Adam element-wise), so shrinking changes no image."""

    def __init__(
        self,
        specs: list[ImageSpec],
        owner: list[int],
        requests: Sequence[FeatureVisRequest],
        tf: TransformSpec,
        device: torch.device,
        native: tuple[int, int] | None,
        size: int,
    ):
        self.size, self.lr, self.device, self.native = (size, requests[0].lr, device, native)
        self.requests = list(requests)
        self.specs, self.owner = specs, owner  # owner: index into self.requests
        steps = max(r.steps for r in requests)
        self.spectrum, self.image = lucent_image(self.size, len(specs))
        # lucent's parameterisation; its random init is replaced by each image's seeded spectrum.
        with torch.no_grad():
            self.spectrum.copy_(
                torch.cat([_initial_spectrum(s, self.size) for s in specs]).to(self.spectrum.device)
            )
        self.optimizer = _adam(self.spectrum, self.lr)
        self.transform = Transforms(specs, self.size, steps, tf, device)
        self._index()

    direct: nn.Conv2d | None = None  # the visualized conv, computing unit maps alone

    def _index(self) -> None:
        """Index tensors of the current images: each image's request, and the diversity rows."""
        self.objective = Objective(self.specs, self.device, self.native, self.direct)
        self.owner_t = torch.tensor(self.owner, device=self.device)
        diverse = [i for i, o in enumerate(self.owner) if self.requests[o].diversity > 1]
        self.diverse_rows = torch.tensor(diverse, dtype=torch.long, device=self.device)
        self.diverse_blocks = self.owner_t[self.diverse_rows]

    def request_losses(self, acts: torch.Tensor) -> torch.Tensor:
        """[len(requests)]: each request's loss (the sum of its images' losses, plus the
        diversity penalty of its images when it asks for several)."""
        per_image = self.objective.loss(acts)
        n = len(self.requests)
        per_request = torch.zeros(n, device=self.device).index_add(0, self.owner_t, per_image)
        if len(self.diverse_rows):
            # Only the images of diverse requests: a penalty over one image is 0 in exact
            # arithmetic but not in floating point, and its Gram matrices cost a matmul.
            penalty = diversity_penalty(acts[self.diverse_rows], self.diverse_blocks, n)
            counts = torch.zeros(n, device=self.device).index_add(
                0, self.diverse_blocks, torch.ones_like(self.diverse_blocks, dtype=torch.float32)
            )
            per_request = per_request + DIVERSITY_WEIGHT * torch.where(counts > 0, penalty, 0.0)
        return per_request

    @contextmanager
    def unit_maps_only(self, module: nn.Module, layer: str) -> Iterator[bool]:
        """Inside the block the visualized layer computes each image's unit map alone, where
        it can (`unit_conv`: a plain conv, and no request asking for diversity, whose penalty
        reads every channel); yields whether it does."""
        conv = dict(module.named_modules()).get(layer)
        if (
            not isinstance(conv, nn.Conv2d)
            or not unit_conv_applies(conv)
            or any(r.diversity > 1 for r in self.requests)
        ):
            yield False
            return
        self.direct = conv
        self._index()
        try:
            self.objective.filters()  # a unit out of range is an error here, not in a forward
            with unit_maps_only(conv, lambda: self.objective.filters()):
                yield True
        finally:
            self.direct = None
            self._index()

    def keep(self, rows: list[int]) -> None:
        """Go on with these images only (indices into the current images)."""
        index = torch.tensor(rows, dtype=torch.long)
        old_state = self.optimizer.state[self.spectrum]
        spectrum, self.image = lucent_image(self.size, len(rows))
        with torch.no_grad():
            spectrum.copy_(self.spectrum.detach()[index.to(self.spectrum.device)])
        self.spectrum = spectrum
        self.optimizer = _adam(spectrum, self.lr)
        if old_state:  # Adam's moments of the kept images, and the shared step count
            device_index = index.to(spectrum.device)
            self.optimizer.state[spectrum] = {
                "step": old_state["step"].clone(),
                "exp_avg": old_state["exp_avg"][device_index].clone(),
                "exp_avg_sq": old_state["exp_avg_sq"][device_index].clone(),
            }
        self.transform.keep(index.to(self.device))
        kept_requests = sorted({self.owner[i] for i in rows})
        renumber = {old: new for new, old in enumerate(kept_requests)}
        self.requests = [self.requests[o] for o in kept_requests]
        self.specs = [self.specs[i] for i in rows]
        self.owner = [renumber[self.owner[i]] for i in rows]
        self._index()


def visualize(
    module: nn.Module,
    layer: str,
    requests: Sequence[FeatureVisRequest],
    *,
    normalize: Callable[[torch.Tensor], torch.Tensor] | None = None,
    device: torch.device | str = "cpu",
    native_grid: tuple[int, int] | None = None,
    transforms: TransformSpec | None = None,
    progress: Progress | None = None,
    size: int | None = None,
) -> dict[FeatureVisRequest, Result]:
    """Optimise every request's image(s) in one batch. All requests share size and lr; steps,
    seeds, signs, diversity and objectives may differ (an image is taken at its own step
    count). `size` is the image side for requests of the model's own size (`size` 0); the
    engine passes the model's.

    `module` is the model, `layer` the name of the submodule whose output the units index
    (as in `module.named_modules()`); `normalize` maps 0..1 images to the model's input;
    `native_grid` is the layer's (H, W) at the model's own input size, for neuron positions
    when `size` differs. `progress(done, total)` counts image-steps.
    """
    if not requests:
        return {}
    asked, lr = requests[0].size, requests[0].lr
    if any((r.size, r.lr) != (asked, lr) for r in requests):
        raise ValueError("a feature-vis batch must share size and lr")
    size = asked or size or 0
    if size <= 0:
        raise ValueError("requests of the model's own size (0) need visualize(size=...)")
    device = torch.device(device)
    norm = normalize or (lambda x: x)
    # Fewest steps first: finished images leave the batch in order.
    order = sorted(range(len(requests)), key=lambda i: requests[i].steps)
    ordered = [requests[i] for i in order]
    specs, owner = _expand(ordered)
    batch = _Batch(
        specs, owner, ordered, transforms or TransformSpec.for_size(size), device, native_grid, size
    )
    total_work = sum(r.steps * r.diversity for r in ordered)
    done_work = 0

    results: dict[FeatureVisRequest, Result] = {}
    loss_start: dict[FeatureVisRequest, float] = {}
    module = module.to(device)
    layout = torch.contiguous_format
    step = 0
    with (
        kept_memory(device.type == "cpu"),
        frozen(module),
        channels_last(module) as nhwc,
        redirected_relus(module),
        lucent_redirected_relus(module),
        fast_local_response_norms(module),
        fast_image_gradients(module),
        pooled_relus(module, layer, _probe(norm, size, device, nhwc)),
        batch.unit_maps_only(module, layer),
        capture(module, [layer]) as cap,
    ):
        layout = torch.channels_last if nhwc else layout
        while True:
            # Optimise up to the next request's step count, then take its images.
            stop = min(r.steps for r in batch.requests)
            while step < stop:
                batch.optimizer.zero_grad(set_to_none=True)
                x = norm(batch.transform(batch.image().to(device), step))
                (acts,) = cap.run(x.contiguous(memory_format=layout))
                per_request = batch.request_losses(acts)
                per_request.sum().backward()
                batch.optimizer.step()
                if step == 0:
                    loss_start.update(
                        zip(batch.requests, per_request.detach().cpu().tolist(), strict=True)
                    )
                step += 1
                done_work += len(batch.specs)
                if progress is not None and (step % 8 == 0 or step == stop):
                    progress(done_work, total_work)
            with torch.no_grad():
                final = batch.image().to(device)
                (acts,) = cap.run(norm(final).contiguous(memory_format=layout))
                activation = batch.objective.activation(acts).cpu().tolist()
                loss_end = batch.request_losses(acts).cpu().tolist()
            pixels = final.detach().permute(0, 2, 3, 1).cpu().numpy().astype(np.float32)
            going_on: list[int] = []
            for r_index, req in enumerate(batch.requests):
                rows = [i for i, o in enumerate(batch.owner) if o == r_index]
                if req.steps > step:
                    going_on.extend(rows)
                    continue
                end = loss_end[r_index]
                start = loss_start.get(req, end)  # steps == 0: nothing optimised
                results[req] = Result(
                    data={
                        "activation": [activation[i] for i in rows],
                        "loss_start": start / len(rows),
                        "loss_end": end / len(rows),
                        "size": size,
                    },
                    arrays={"images": np.ascontiguousarray(pixels[rows])},
                )
            if not going_on:
                break
            batch.keep(going_on)
    return results


def _probe(
    normalize: Callable[[torch.Tensor], torch.Tensor], size: int, device: torch.device, nhwc: bool
) -> torch.Tensor:
    """One grey image as the optimisation feeds the model (for passes that inspect the model)."""
    grey = normalize(torch.full((1, 3, size, size), 0.5, device=device))
    return grey.contiguous(memory_format=torch.channels_last) if nhwc else grey


# Pixels per optimisation (256 images of 64 px): bounds memory, so larger images make smaller
# batches. Batching never changes an image.
MAX_BATCH_PIXELS = 256 * 64 * 64


def batch_limit(size: int) -> int:
    """Images per optimisation at this image size."""
    return max(1, MAX_BATCH_PIXELS // (size * size))


def chunks(requests: Sequence[FeatureVisRequest], limit: int) -> list[list[FeatureVisRequest]]:
    """Split a group into batches of at most `limit` images (a request's images stay together),
    requests of similar step counts together, so that a batch shrinks as few times as it can."""
    out: list[list[FeatureVisRequest]] = [[]]
    count = 0
    for req in sorted(requests, key=lambda r: r.steps):
        if out[-1] and count + req.diversity > limit:
            out.append([])
            count = 0
        out[-1].append(req)
        count += req.diversity
    return out


def compute_group(
    requests: list[FeatureVisRequest], env: "EngineEnv"
) -> dict[FeatureVisRequest, Result]:
    """Engine handler: one group = one model, layer, image size and lr."""
    ref = requests[0].ref
    model = env.models.get(ref.model)
    layer = ref.layer
    model.layer(layer)  # a clear error, naming the model, for a layer it does not have
    size = requests[0].size or model.visualization_size()
    native = _native_grid(model, layer, requests, env.device, size)
    results: dict[FeatureVisRequest, Result] = {}
    batches = chunks(requests, batch_limit(size))
    env.batches = len(batches)
    # Progress over the whole group in image-steps, batch after batch.
    group_work = sum(r.steps * r.diversity for r in requests)
    offset = 0
    label = f"feature vis {ref.model}/{ref.layer}"
    for batch in batches:

        def progress(done: int, total: int, offset: int = offset) -> None:
            env.progress(label, offset + done, group_work)

        with torch.random.fork_rng(devices=[]):
            results.update(
                visualize(
                    model.module,
                    layer,
                    batch,
                    normalize=model.normalize,
                    device=env.device,
                    native_grid=native,
                    progress=progress,
                    size=size,
                )
            )
        offset += sum(r.steps * r.diversity for r in batch)
    return results


def _native_grid(
    model: Any,
    layer: str,
    requests: Sequence[FeatureVisRequest],
    device: torch.device,
    size: int,
) -> tuple[int, int] | None:
    """The layer's output grid at the model's own input size, needed only to place neurons
    `@Y,X` when the image size optimised (`size`) differs from it."""
    native = getattr(model, "input_size", None)
    if native is None or not any(r.ref.position is not None for r in requests):
        return None
    if tuple(native) == (size, size):
        return None
    module: nn.Module = model.module
    normalize = model.normalize
    with torch.no_grad(), frozen(module), capture(module, [layer]) as cap:
        (out,) = cap.run(normalize(torch.zeros(1, 3, *native, device=device)))
    maps = as_maps(out)
    return int(maps.shape[2]), int(maps.shape[3])
