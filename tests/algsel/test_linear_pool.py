"""Linear and pooling algorithm registries against the torch ops (forward, backward, unsupported
configurations), their swapped modules, and swapping them in real models."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from xflow.algsel import (
    AlgoLinear,
    AlgoMaxPool2d,
    AlgorithmFallbackWarning,
    build_model,
    choices,
    describe_choices,
    get_linear_algorithm,
    get_pool_algorithm,
    list_linear_algorithms,
    list_pool_algorithms,
    swap,
    swap_linear,
    swap_pool,
)
from xflow.algsel.linear import LinearConfig
from xflow.algsel.pool import PoolConfig
from xflow.errors import UnknownName, UnsupportedOperator


def _rel(y, ref):
    return float((y - ref).detach().abs().max() / ref.detach().abs().max())


LINEAR_SHAPES = [((1, 64), 2100), ((7, 33), 5), ((2, 3, 16), 1030)]


@pytest.mark.parametrize("name", list_linear_algorithms())
@pytest.mark.parametrize("shape,out", LINEAR_SHAPES)
def test_linear_forward_and_backward(name, shape, out):
    algo = get_linear_algorithm(name)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, generator=gen, requires_grad=True)
    w = torch.randn(out, shape[-1], generator=gen, requires_grad=True)
    b = torch.randn(out, generator=gen, requires_grad=True)
    ref = F.linear(x, w, b)
    state = {}
    with torch.no_grad():
        assert _rel(algo.linear(x, w, b, state), ref) <= algo.tolerance
        assert _rel(algo.linear(x, w, None, state), F.linear(x, w)) <= algo.tolerance
    if algo.differentiable:
        g = torch.randn(ref.shape, generator=gen)
        ga = torch.autograd.grad(algo.linear(x, w, b, state), (x, w, b), g)
        gr = torch.autograd.grad(ref, (x, w, b), g)
        assert all(_rel(a, r) <= 10 * algo.tolerance for a, r in zip(ga, gr))


POOLS = [
    nn.MaxPool2d(3, 2, 1), nn.MaxPool2d(2), nn.MaxPool2d(3, 2, ceil_mode=True), nn.MaxPool2d((3, 2), (2, 1), (1, 0), dilation=2),
    nn.AvgPool2d(3, 2, 1), nn.AvgPool2d(3, 2, 1, count_include_pad=False), nn.AvgPool2d(2, ceil_mode=True),
    nn.AvgPool2d(3, 1, 1, divisor_override=4), nn.MaxPool2d(2, return_indices=True),
]


@pytest.mark.parametrize("name", list_pool_algorithms())
@pytest.mark.parametrize("pool", POOLS, ids=lambda p: PoolConfig.from_module(p).short() + (" idx" if getattr(p, "return_indices", False) else ""))
def test_pool_forward_and_backward(name, pool):
    algo = get_pool_algorithm(name)
    cfg = PoolConfig.from_module(pool)
    if algo.supports(cfg) is not None:
        pytest.skip(algo.supports(cfg))
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 5, 13, 11, generator=gen, requires_grad=True)
    y, ref = algo.pool(x, cfg), pool(x)
    if cfg.return_indices:
        assert torch.equal(y[1], ref[1])
        y, ref = y[0], ref[0]
    assert y.shape == ref.shape and ref.std() > 0.1 and _rel(y, ref) <= algo.tolerance
    g = torch.randn(ref.shape, generator=gen)
    (ga,), (gr,) = torch.autograd.grad(y, x, g), torch.autograd.grad(ref, x, g)
    assert _rel(ga, gr) <= 10 * algo.tolerance  # continuous random input: no ties
    cl = x.detach().contiguous(memory_format=torch.channels_last)
    out = algo.pool(cl, cfg)
    assert _rel(out[0] if isinstance(out, tuple) else out, ref) <= algo.tolerance


def test_unsupported_pool_configs_name_the_reason():
    assert "indices" in get_pool_algorithm("shift").supports(PoolConfig.from_module(nn.MaxPool2d(2, return_indices=True)))
    assert "ceil_mode" in get_pool_algorithm("shift").supports(PoolConfig.from_module(nn.AvgPool2d(2, ceil_mode=True)))
    assert "ceil_mode" in get_pool_algorithm("unfold").supports(PoolConfig.from_module(nn.MaxPool2d(2, ceil_mode=True)))
    assert get_pool_algorithm("shift").supports(PoolConfig.from_module(nn.MaxPool2d(2, ceil_mode=True))) is None
    assert get_pool_algorithm("direct").name == "shift"  # ai3's name
    with pytest.raises(UnknownName, match="choose one of"):
        get_pool_algorithm("magic")
    with pytest.raises(UnknownName, match="choose one of"):
        get_linear_algorithm("magic")


def test_swap_pool_and_linear_in_vgg_like_model():
    m = build_model("squeezenet1_1")
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = m(x)
        new = swap_pool(m, "shift")
        assert all(isinstance(mod, AlgoMaxPool2d) for _, mod in new.named_modules() if isinstance(mod, nn.MaxPool2d))
        assert ref.std() > 1e-3 and _rel(new(x), ref) < 1e-6
    tiny = build_model("tiny")
    xt = torch.randn(2, 3, 16, 16)
    with pytest.warns(AlgorithmFallbackWarning, match="ceil_mode"):
        both = swap(tiny, {"pool": "shift", "linear": "gemm_t"})
    used = choices(both, op=None)
    assert used["features.15"] == "shift" and used["features.16"] == "default" and used["fc"] == "gemm_t"
    assert isinstance(both.fc, AlgoLinear) and isinstance(both.fc, nn.Linear)
    rows = {r["layer"]: r for r in describe_choices(both, op=None)}
    assert rows["features.16"]["requested"] == "shift" and "ceil_mode" in rows["features.16"]["fallback_reason"]
    out = both(xt)
    assert _rel(out, tiny(xt)) < 1e-5
    out.sum().backward()
    assert tiny.fc.weight.grad is not None  # weights shared with the original
    with pytest.raises(UnsupportedOperator):
        swap_pool(tiny, "unfold", strict=True)
    with pytest.raises(UnknownName, match="no Linear named"):
        swap_linear(tiny, {"features.0": "gemm_t"})
    with pytest.raises(UnknownName, match="no swappable layer named"):
        swap(tiny, layers={"features.1": "shift"})


def test_mha_out_proj_is_not_swapped():
    """MultiheadAttention uses out_proj's weight directly: swapping it would silently do nothing."""
    mha = nn.Sequential(nn.MultiheadAttention(8, 2))
    assert choices(mha, op="linear") == {}
    assert LinearConfig.from_module(nn.Linear(3, 4)).short() == "linear 3→4"
