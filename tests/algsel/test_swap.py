"""swap_conv2d: the original is untouched, each selector form, fallback/strict, outputs and grads."""
from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from xflow.algsel import (
    AlgoConv2d,
    AlgorithmFallbackWarning,
    build_model,
    choices,
    conv_layers,
    describe_choices,
    get_algorithm,
    list_algorithms,
    swap,
    swap_conv2d,
)
from xflow.errors import ShapeMismatch, UnknownName, UnsupportedOperator


@pytest.fixture
def tiny():
    return build_model("tiny")


@pytest.fixture
def x():
    return torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(3))


def _rel(y, ref):
    return float((y - ref).detach().abs().max() / ref.detach().abs().max())


def test_original_untouched_and_weights_shared(tiny, x):
    ref = tiny(x)
    new = swap_conv2d(tiny, "im2col")
    assert all(type(m) is nn.Conv2d for _, m in conv_layers(tiny))
    assert all(isinstance(m, AlgoConv2d) for _, m in conv_layers(new))
    assert torch.equal(tiny(x), ref)
    assert new.features[0].weight is tiny.features[0].weight
    assert new.state_dict().keys() == tiny.state_dict().keys()
    copied = swap_conv2d(tiny, "im2col", share_weights=False)
    assert copied.features[0].weight is not tiny.features[0].weight
    assert torch.equal(copied.features[0].weight, tiny.features[0].weight)


@pytest.mark.parametrize("name", list_algorithms())
def test_uniform_swap_keeps_outputs_and_grads(tiny, x, name):
    ref = tiny(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AlgorithmFallbackWarning)
        new = swap_conv2d(tiny, name, share_weights=False)
    out = new(x)
    assert _rel(out, ref) <= 10 * get_algorithm(name).tolerance
    out.sum().backward()
    ref.sum().backward()
    for (n1, p1), (_, p2) in zip(new.named_parameters(), tiny.named_parameters()):
        assert _rel(p1.grad, p2.grad) <= 100 * get_algorithm(name).tolerance, n1


def test_fallback_warns_and_strict_raises(tiny, x):
    with pytest.warns(AlgorithmFallbackWarning) as caught:
        new = swap_conv2d(tiny, "winograd_4x4")
    msgs = [str(w.message) for w in caught]
    assert any("features.2" in m and "5x5" in m and "falling back" in m for m in msgs)
    assert len(msgs) == 3  # 5x5 stride 2, dilation 2, 1x1
    used = choices(new)
    assert used["features.2"] == "default"      # 5x5 stride 2
    assert used["features.5"] == "default"      # dilation 2
    assert used["features.0"] == "winograd_4x4"
    rows = {r["layer"]: r for r in describe_choices(new)}
    assert "stride" in rows["features.2"]["fallback_reason"] or "3x3" in rows["features.2"]["fallback_reason"]
    assert _rel(new(x), tiny(x)) < 1e-3
    with pytest.raises(UnsupportedOperator, match="features.2"):
        swap_conv2d(tiny, "winograd_2x2", strict=True)


def test_list_selector(tiny, x):
    n = len(conv_layers(tiny))
    sel = ["im2col", None, "fft", "direct", None, "winograd", "implicit_gemm"]
    assert len(sel) == n
    new = swap_conv2d(tiny, sel)
    used = choices(new)
    assert list(used.values()) == ["im2col", "default", "fft", "direct", "default", "winograd_2x2", "implicit_gemm"]
    assert type(new.features[2]) is nn.Conv2d  # None keeps the framework conv
    assert _rel(new(x), tiny(x)) < 1e-4
    with pytest.raises(ShapeMismatch, match="7 Conv2d"):
        swap_conv2d(tiny, ["im2col"])


def test_dict_selector(tiny, x):
    new = swap_conv2d(tiny, {"features.0": "fft", "features.11": "winograd_4x4"})
    assert isinstance(new.features[0], AlgoConv2d) and new.features[0].algorithm.name == "fft"
    assert type(new.features[2]) is nn.Conv2d
    assert _rel(new(x), tiny(x)) < 1e-3
    with pytest.raises(UnknownName, match="no Conv2d named 'features.1'"):
        swap_conv2d(tiny, {"features.1": "fft"})
    with pytest.raises(UnknownName, match="unknown convolution algorithm"):
        swap_conv2d(tiny, {"features.0": "nope"})


def test_callable_selector_sees_module_and_shape(tiny, x):
    seen = []

    def pick(module, shape):
        seen.append((module.layer_name, shape))
        return "winograd_2x2" if module.kernel_size == (3, 3) and shape[-1] >= 16 else "im2col"

    new = swap_conv2d(tiny, pick)
    assert seen == []  # lazy: nothing resolved before a forward
    out = new(x)
    assert ("features.0", (2, 3, 16, 16)) in seen
    used = choices(new)
    assert used["features.0"] == "winograd_2x2" and used["features.2"] == "im2col"
    assert _rel(out, tiny(x)) < 1e-3
    eager = swap_conv2d(tiny, pick, example_input=x)
    assert choices(eager)["features.0"] == "winograd_2x2"
    # a new input shape resolves again
    small = torch.randn(1, 3, 8, 8)
    new(small)
    assert ("features.0", (1, 3, 8, 8)) in seen and choices(new)["features.0"] == "im2col"


def test_swapped_model_can_be_swapped_again(tiny, x):
    once = swap_conv2d(tiny, "fft")
    twice = swap_conv2d(once, "direct")
    assert set(choices(twice).values()) == {"direct"}
    assert choices(once)["features.0"] == "fft"
    assert _rel(twice(x), tiny(x)) < 1e-4


def test_torchvision_model_with_non_conv_layers():
    m = build_model("squeezenet1_1")
    x = torch.randn(1, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        new = swap_conv2d(m, "im2col")
        assert _rel(new(x), m(x)) < 1e-4


@pytest.mark.parametrize("name", ["fft", "winograd_4x4"])
def test_cached_weight_transform_follows_weight_updates(tiny, x, name):
    new = swap_conv2d(tiny, {"features.0": name, "features.11": name}, share_weights=False)
    with torch.no_grad():
        first = new(x)
        assert new.features[0]._state  # transform cached in inference
        assert torch.equal(new(x), first)
        new.features[0].weight.mul_(-1.0)  # in-place update bumps the version counter
        ref = swap_conv2d(new, "default")(x)
        assert _rel(new(x), ref) < 1e-4 and not torch.allclose(new(x), first)
    out = new(x)  # with autograd on, the transform is recomputed and differentiable
    out.sum().backward()
    assert new.features[0].weight.grad is not None


def test_layout_swap_keeps_outputs_and_layout(tiny, x):
    from xflow.algsel import model_layout, set_layout

    cl = swap(tiny, {"conv2d": {"features.11": "winograd_4x4", "features.0": "im2col"}}, layout="channels_last")
    assert model_layout(cl) == "channels_last" and model_layout(tiny) == "nchw"
    seen = []
    cl.features[13].register_forward_hook(lambda m, i, o: seen.append(o.is_contiguous(memory_format=torch.channels_last)))
    with torch.no_grad():
        assert _rel(cl(x), tiny(x)) < 1e-3
    assert seen == [True]  # swapped layers hand on the layout they got
    set_layout(cl, "nchw")
    assert model_layout(cl) == "nchw"
    with pytest.raises(UnknownName, match="unknown layout"):
        set_layout(cl, "nhwc")


def test_flat_layer_dict_and_default_entries(tiny, x):
    new = swap(tiny, layers={"features.0": "fft", "fc": "default", "features.15": "shift"})
    assert type(new.fc) is nn.Linear  # 'default' leaves the framework module
    assert choices(new, op=None)["features.15"] == "shift" and choices(new)["features.0"] == "fft"
