"""Captured values are the values: no later in-place op changes a captured output.

torchvision's ResNet adds the shortcut into `bn2`'s output in place (`out += identity`) and
its ReLUs are `inplace=True`; a layer captured together with a later one must still hold what
the layer produced, exactly as when it is captured alone.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from circuitpress.analysis.models.capture import capture, execution_order

torchvision = pytest.importorskip("torchvision")


def resnet18() -> nn.Module:
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def test_every_resnet18_layer_captured_alone_equals_captured_together() -> None:
    model = resnet18()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    names = [n for n, _ in model.named_modules() if n]
    with torch.no_grad():
        alone = {}
        for name in names:
            with capture(model, [name]) as cap:
                (alone[name],) = cap.run(x)
        with capture(model, names) as cap:
            together = dict(zip(names, cap.run(x), strict=True))
            cloned = set(cap.cloned)
        with capture(model, names) as cap:
            logits = cap.forward(x)
            whole = dict(cap.outputs)
    for name in names:
        assert torch.equal(alone[name], together[name]), name
        assert torch.equal(alone[name], whole[name]), name
    assert torch.equal(logits, model(x))
    # The case of the issue: bn2's output goes negative; the residual add and the in-place ReLU
    # after it would have left only values >= 0.
    assert float(together["layer3.1.bn2"].min()) < 0
    assert "layer3.1.bn2" in cloned
    # Layers nothing overwrites are not copied.
    assert "layer3.1.conv2" not in cloned and "fc" not in cloned


def test_gradients_flow_through_a_cloned_capture() -> None:
    model = resnet18()
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(2), requires_grad=True)
    with capture(model, ["layer1.0.bn2", "layer2"]) as cap:
        bn2, _ = cap.run(x)
        assert "layer1.0.bn2" in cap.cloned
    bn2.min().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


def test_execution_order_can_stop_before_a_head_the_input_does_not_fit() -> None:
    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.fc = nn.Linear(4 * 30 * 30, 2)  # only a 32x32 input reaches it whole

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(self.conv(x).flatten(1))

    net = Head().eval()
    order, shapes = execution_order(net, torch.zeros(1, 3, 20, 20), until=["conv"])
    assert order == ["conv"] and shapes == {"conv": (4, 18, 18)}
