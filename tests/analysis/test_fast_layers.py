"""The layers swapped for the length of a feature-vis run compute what the originals compute
(forward values and gradients), only where they apply, and are restored on exit, also on error."""

from __future__ import annotations

import contextlib
from functools import partial
from typing import Callable, Iterator

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from circuitpress.analysis.methods import relu_gradient
from circuitpress.analysis.methods.fast_layers import (
    fast_local_response_norm,
    fast_local_response_norms,
)
from circuitpress.analysis.methods.image_conv import fast_image_gradients
from circuitpress.analysis.methods.relu_gradient import lucent_redirected_relus
from circuitpress.analysis.models import modes
from circuitpress.analysis.models.capture import capture
from circuitpress.analysis.models.modes import channels_last, frozen, kept_memory

LAYOUTS = [torch.contiguous_format, torch.channels_last]


def value_and_grad(
    fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, weights: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    xi = x.detach().clone().requires_grad_(True)
    out = fn(xi)
    (out * weights).sum().backward()
    assert xi.grad is not None
    return out.detach(), xi.grad


@pytest.mark.parametrize("size", [1, 2, 4, 5, 9, 15])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_local_response_norm_equals_torchs(
    size: int, layout: torch.memory_format, dtype: torch.dtype
) -> None:
    torch.manual_seed(size)
    for channels in (3, 12):  # fewer channels than the window, and more
        x = (torch.randn(3, channels, 5, 6, dtype=dtype) * 4).contiguous(memory_format=layout)
        weights = torch.randn(3, channels, 5, 6, dtype=dtype)
        # Large alpha and k = 0: the window sums decide the result (no k to hide them behind).
        for params in ((1.0, 0.75, 0.0), (9.99999974738e-05, 0.5, 1.0)):  # alpha, beta, k
            theirs = partial(
                F.local_response_norm, size=size, alpha=params[0], beta=params[1], k=params[2]
            )
            ours = partial(
                fast_local_response_norm, size=size, alpha=params[0], beta=params[1], k=params[2]
            )
            out_a, grad_a = value_and_grad(theirs, x, weights)
            out_b, grad_b = value_and_grad(ours, x, weights)
            tol = 1e-6 if dtype == torch.float32 else 1e-13
            torch.testing.assert_close(out_b, out_a, rtol=tol, atol=0)
            torch.testing.assert_close(grad_b, grad_a, rtol=tol * 10, atol=tol)
            assert out_b.is_contiguous(memory_format=layout)


def test_local_response_norm_of_other_shapes_is_torchs() -> None:
    x = torch.randn(2, 6, 7)  # 3-D: torch's own
    assert torch.equal(fast_local_response_norm(x, 3), F.local_response_norm(x, 3))
    empty = torch.zeros(0, 4, 3, 3)
    assert fast_local_response_norm(empty, 3).shape == empty.shape


class Functional(nn.Module):
    """An LRN called through `F` inside a forward that uses other functionals too."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(F.local_response_norm(x, size=3, alpha=0.5, beta=0.75, k=1.0)) + 1


def lrn_modules() -> nn.Sequential:
    from lucent.modelzoo.inceptionv1.helper_layers import LocalResponseNormLayer

    return nn.Sequential(
        nn.LocalResponseNorm(5, alpha=0.3), LocalResponseNormLayer(), Functional(), nn.ReLU()
    )


def test_modules_calling_local_response_norm_are_swapped_and_restored() -> None:
    torch.manual_seed(0)
    model = lrn_modules()
    x = torch.randn(2, 16, 6, 6) * 3
    weights = torch.randn(2, 16, 6, 6)
    out_a, grad_a = value_and_grad(model, x, weights)
    seen: list[torch.Size] = []
    model[0].register_forward_hook(lambda _m, _i, out: seen.append(out.shape))
    with fast_local_response_norms(model) as count:
        assert count == 3  # nn.LocalResponseNorm, lucent's layer, the functional call; not ReLU
        assert all("forward" in m.__dict__ for m in list(model)[:3])
        assert "forward" not in model[3].__dict__
        out_b, grad_b = value_and_grad(model, x, weights)
    assert seen  # hooks on a swapped module still fire
    assert all("forward" not in m.__dict__ for m in model)
    torch.testing.assert_close(out_b, out_a, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(grad_b, grad_a, rtol=1e-5, atol=1e-6)
    # The swap lives in the patched functions' globals only: torch's module is untouched.
    assert F.local_response_norm is torch.nn.functional.local_response_norm
    assert "forward" not in nn.LocalResponseNorm(3).__dict__


def test_local_response_norm_swap_is_undone_on_error_and_leaves_foreign_forwards() -> None:
    model = lrn_modules()

    def own(x: torch.Tensor) -> torch.Tensor:
        return x

    model[0].forward = own  # type: ignore[method-assign]  # someone else's instance forward
    with pytest.raises(RuntimeError, match="boom"), fast_local_response_norms(model) as count:
        assert count == 2 and model[0].forward is own
        raise RuntimeError("boom")
    assert model[0].forward is own
    assert all("forward" not in m.__dict__ for m in list(model)[1:])


def lucent_relu_model() -> nn.Sequential:
    from lucent.modelzoo.inceptionv1.helper_layers import RedirectedReluLayer, ReluLayer

    return nn.Sequential(
        RedirectedReluLayer(), nn.Conv2d(4, 4, 1), RedirectedReluLayer(), ReluLayer()
    )


def test_lucent_redirected_relu_is_lucents_bit_for_bit() -> None:
    torch.manual_seed(1)
    model = lucent_relu_model()
    x = torch.randn(3, 4, 5, 5)
    x[0, 0, 0, :3] = torch.tensor([0.0, -0.0, float("nan")])
    weights = torch.randn(3, 4, 5, 5)
    out_a, grad_a = value_and_grad(model, x, weights)
    with lucent_redirected_relus(model) as count:
        assert count == 2  # lucent's redirected layers; its plain ReluLayer is F.relu already
        out_b, grad_b = value_and_grad(model, x, weights)
    assert all("forward" not in m.__dict__ for m in model)
    assert torch.equal(out_a.nan_to_num(), out_b.nan_to_num())
    assert torch.equal(grad_a.nan_to_num(), grad_b.nan_to_num())
    layer = model[0]
    with lucent_redirected_relus(layer), torch.no_grad():  # no mask is kept without a gradient
        assert torch.equal(layer(x).nan_to_num(), x.clamp(min=0).nan_to_num())


def test_lucent_relu_swap_is_undone_on_error() -> None:
    model = lucent_relu_model()
    with pytest.raises(RuntimeError, match="boom"), lucent_redirected_relus(model):
        raise RuntimeError("boom")
    assert all("forward" not in m.__dict__ for m in model)


def test_a_lucent_relu_that_computes_something_else_keeps_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Other(torch.autograd.Function):
        @staticmethod
        def forward(ctx: object, x: torch.Tensor) -> torch.Tensor:
            return x.clamp(min=0)

        @staticmethod
        def backward(ctx: object, grad: torch.Tensor) -> torch.Tensor:
            return grad  # a different redirect

    class Layer(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return Other.apply(x)

    monkeypatch.setattr(relu_gradient, "_lucent_relu_class", lambda: Layer)
    model = nn.Sequential(Layer())
    with lucent_redirected_relus(model) as count:
        assert count == 0 and "forward" not in model[0].__dict__


@contextlib.contextmanager
def all_swaps(model: nn.Module) -> Iterator[None]:
    with (
        lucent_redirected_relus(model),
        fast_local_response_norms(model),
        fast_image_gradients(model),
    ):
        yield


def test_inceptionv1_values_and_image_gradient_are_unchanged() -> None:
    from lucent.modelzoo import inceptionv1

    torch.manual_seed(0)
    model = inceptionv1(pretrained=False)
    x = torch.rand(2, 3, 96, 96) * 255 - 117
    results = []
    with frozen(model), channels_last(model):
        for swapped in (False, True):
            with (
                all_swaps(model) if swapped else contextlib.nullcontext(),
                capture(model, ["mixed4a"]) as cap,
            ):
                xi = x.clone().contiguous(memory_format=torch.channels_last).requires_grad_(True)
                (acts,) = cap.run(xi)
                weights = torch.randn(acts.shape, generator=torch.Generator().manual_seed(3))
                (acts * weights).sum().backward()
                assert xi.grad is not None
                results.append((acts.detach(), xi.grad))
    assert all("forward" not in m.__dict__ for m in model.modules())
    (acts_a, grad_a), (acts_b, grad_b) = results
    torch.testing.assert_close(acts_b, acts_a, rtol=1e-5, atol=1e-5)
    scale = grad_a.abs().max()
    torch.testing.assert_close(grad_b / scale, grad_a / scale, rtol=0, atol=1e-5)


def test_kept_memory_nests_and_restores() -> None:
    with kept_memory() as outer:
        with kept_memory() as inner:
            assert inner == outer
            assert modes._holders == (2 if outer else 0)
        with pytest.raises(RuntimeError), kept_memory():
            raise RuntimeError("boom")
        assert modes._holders == (1 if outer else 0)
    assert modes._holders == 0
    with kept_memory(False) as off:
        assert off is False and modes._holders == 0
    x = torch.arange(10.0)
    with kept_memory():
        big = torch.ones(2**22)
        assert float(big.sum()) == 2**22 and torch.equal(x * 2, torch.arange(0.0, 20.0, 2.0))


def test_visualize_makes_the_same_images_with_and_without_the_swaps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from lucent.modelzoo.inceptionv1.helper_layers import RedirectedReluLayer

    from circuitpress.analysis.methods import featurevis
    from circuitpress.requests import FeatureVisRequest, UnitRef

    def model() -> nn.Sequential:
        torch.manual_seed(0)
        return nn.Sequential(
            nn.Conv2d(3, 8, 5, stride=2, padding=2),
            RedirectedReluLayer(),
            nn.LocalResponseNorm(3, alpha=0.1),
            nn.Conv2d(8, 6, 3, padding=1),
        )

    requests = [
        FeatureVisRequest(UnitRef("m", "3", ((c, 1.0),)), size=32, steps=12, lr=0.05)
        for c in range(3)
    ]
    fast = featurevis.visualize(model(), "3", requests)
    off = lambda module: contextlib.nullcontext(0)  # noqa: E731
    for name in ("lucent_redirected_relus", "fast_local_response_norms", "fast_image_gradients"):
        monkeypatch.setattr(featurevis, name, off)
    plain = featurevis.visualize(model(), "3", requests)
    for r in requests:
        torch.testing.assert_close(
            torch.from_numpy(fast[r].arrays["images"]),
            torch.from_numpy(plain[r].arrays["images"]),
            rtol=0,
            atol=1e-4,
        )
        assert fast[r].data["activation"][0] == pytest.approx(
            plain[r].data["activation"][0], rel=1e-4, abs=1e-6
        )
