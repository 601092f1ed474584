"""The one way analyses read a model: named layers, early stop, edits, shapes; hooks removed."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from circuitpress.analysis.models.capture import capture, execution_order
from circuitpress.analysis.models.modes import channels_last, frozen
from circuitpress.errors import UserError

from .circuit_toys import ToyNet


def no_hooks(model: nn.Module) -> bool:
    return all(not m._forward_hooks for m in model.modules())


def test_run_returns_named_outputs_in_order_and_stops_at_the_last() -> None:
    net = ToyNet().eval()
    later: list[int] = []
    net.conv3.register_forward_pre_hook(lambda *_: later.append(1))
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        expected_pool = net.pool1(net.relu1(net.conv1(x)))
        expected_conv2 = net.conv2(expected_pool)
        with capture(net, ["conv2", "pool1"]) as cap:
            conv2, pool1 = cap.run(x)
            again = cap.run(x)  # every forward stops, not only the first
    assert torch.equal(conv2, expected_conv2) and torch.equal(pool1, expected_pool)
    assert torch.equal(again[0], conv2)
    assert later == []  # conv3 never ran
    assert cap.shapes == {"pool1": (4, 8, 8), "conv2": (5, 8, 8)} and cap.order == [
        "pool1",
        "conv2",
    ]
    assert no_hooks(net)


def test_forward_runs_the_whole_model_and_keeps_the_outputs() -> None:
    net = ToyNet().eval()
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad(), capture(net, ["relu1"]) as cap:
        logits = cap.forward(x)
        assert torch.equal(logits, net(x))
        assert torch.equal(cap.outputs["relu1"], net.relu1(net.conv1(x)))


def test_edits_and_replacements_last_one_forward_pass() -> None:
    net = ToyNet().eval()
    x = torch.rand(2, 3, 16, 16)

    def zero(out: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(out)

    with torch.no_grad():
        with capture(net, ["conv3"], edits={"relu2": zero}) as cap:
            (edited,) = cap.run(x)
        torch.testing.assert_close(edited, net.conv3.bias[None, :, None, None].expand_as(edited))
        free = torch.ones(2, 5, 8, 8)
        with capture(net, ["conv3"], replace={"relu2": free}) as cap:
            (replaced,) = cap.run(x)
        torch.testing.assert_close(replaced, net.conv3(free))
        # The edits are gone: the model computes what it always did.
        with capture(net, ["conv3"]) as cap:
            (plain,) = cap.run(x)
        pooled = net.pool1(net.relu1(net.conv1(x)))
        torch.testing.assert_close(plain, net.conv3(net.relu2(net.conv2(pooled))))
    assert no_hooks(net)


def test_hooks_are_removed_when_the_block_fails() -> None:
    net = ToyNet().eval()
    with pytest.raises(RuntimeError, match="inside"), capture(net, ["conv2"], watch=["head"]):
        raise RuntimeError("inside the block")
    assert no_hooks(net)
    with pytest.raises(UserError, match="forward pass fails"), capture(net, ["conv2"]) as cap:
        cap.run(torch.rand(2, 5, 16, 16))  # the wrong number of channels fails in conv1
    assert no_hooks(net)


def test_unknown_and_unused_layers_are_user_errors() -> None:
    net = ToyNet().eval()
    with pytest.raises(UserError, match="no layer 'conv9'"), capture(net, ["conv9"]):
        pass
    net.spare = nn.ReLU()  # a module forward() never calls
    with pytest.raises(UserError, match="'spare' produced no output"):
        with capture(net, ["spare"]) as cap:
            cap.run(torch.rand(1, 3, 16, 16))
    assert no_hooks(net)


def test_execution_order_and_shapes() -> None:
    order, shapes = execution_order(ToyNet(), torch.zeros(1, 3, 16, 16))
    assert order[:4] == ["conv1", "relu1", "pool1", "conv2"] and order[-1] == "head"
    assert shapes["pool1"] == (4, 8, 8) and shapes["head"] == (2,)


def test_modes_are_restored() -> None:
    net = ToyNet()
    net.train()
    with frozen(net), channels_last(net) as nhwc:
        assert nhwc and not net.training
        assert not any(p.requires_grad for p in net.parameters())
        assert net.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert net.training and all(p.requires_grad for p in net.parameters())
    assert net.conv1.weight.is_contiguous()
