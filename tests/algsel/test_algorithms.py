"""Every registered convolution algorithm against ``F.conv2d``: forward, backward, support checks."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from xflow.algsel.algorithms import ConvConfig, ImplicitGemm, get_algorithm, list_algorithms
from xflow.errors import UnknownName, UnsupportedOperator

# (C, O, k, stride, padding, dilation, groups, H, W) — random-ish shapes covering the features
CONFIGS = [
    (3, 5, 3, 1, 1, 1, 1, 9, 11),
    (4, 6, 3, 1, 0, 1, 2, 10, 7),
    (6, 6, 3, 1, 2, 1, 6, 8, 8),       # depthwise
    (4, 8, 5, 2, 2, 2, 2, 13, 12),     # stride + dilation + groups
    (3, 4, 11, 4, 2, 1, 1, 31, 29),    # AlexNet-like large kernel
    (5, 7, 1, 1, 0, 1, 1, 6, 5),       # 1x1
    (4, 4, (3, 5), (1, 2), (1, 2), 1, 1, 9, 10),  # rectangular
]


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _case(cfg, seed=0, requires_grad=False):
    c, o, k, s, p, d, g, h, w = cfg
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, c, h, w, generator=gen, requires_grad=requires_grad)
    wt = torch.randn(o, c // g, *_pair(k), generator=gen, requires_grad=requires_grad)
    b = torch.randn(o, generator=gen, requires_grad=requires_grad)
    conf = ConvConfig(c, o, _pair(k), _pair(s), _pair(p), _pair(d), g)
    return x, wt, b, conf


def _rel(y, ref):
    return float((y - ref).detach().abs().max() / ref.detach().abs().max())


@pytest.mark.parametrize("name", list_algorithms())
@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"c{c[0]}o{c[1]}k{c[2]}s{c[3]}g{c[6]}")
def test_forward_matches_conv2d(name, cfg):
    algo = get_algorithm(name)
    x, w, b, conf = _case(cfg)
    if algo.supports(conf) is not None:
        pytest.skip(algo.supports(conf))
    y = algo.conv2d(x, w, b, conf.stride, conf.padding, conf.dilation, conf.groups)
    ref = F.conv2d(x, w, b, conf.stride, conf.padding, conf.dilation, conf.groups)
    assert y.shape == ref.shape
    assert _rel(y, ref) <= algo.tolerance


@pytest.mark.parametrize("name", [n for n in list_algorithms() if get_algorithm(n).differentiable])
def test_backward_matches_conv2d(name):
    algo = get_algorithm(name)
    cfg = (4, 6, 3, 1, 1, 1, 2, 9, 10)
    x, w, b, conf = _case(cfg, requires_grad=True)
    gy = torch.randn(2, 6, 9, 10, generator=torch.Generator().manual_seed(1))
    grads = []
    for fn in (lambda: algo.conv2d(x, w, b, conf.stride, conf.padding, conf.dilation, conf.groups),
               lambda: F.conv2d(x, w, b, conf.stride, conf.padding, conf.dilation, conf.groups)):
        out = fn()
        grads.append(torch.autograd.grad(out, (x, w, b), gy))
    for g_algo, g_ref in zip(*grads):
        assert _rel(g_algo, g_ref) <= 10 * algo.tolerance


def test_fft_backward_with_stride_and_dilation():
    algo = get_algorithm("fft")
    x, w, b, conf = _case((4, 4, 3, 2, 1, 2, 2, 11, 11), requires_grad=True)
    out = algo.conv2d(x, w, b, conf.stride, conf.padding, conf.dilation, conf.groups)
    ref = F.conv2d(x, w, b, conf.stride, conf.padding, conf.dilation, conf.groups)
    g1 = torch.autograd.grad(out.sum(), (x, w))
    g2 = torch.autograd.grad(ref.sum(), (x, w))
    assert all(_rel(a, r) < 1e-4 for a, r in zip(g1, g2))


def test_winograd_reports_unsupported_configs():
    for name in ("winograd_2x2", "winograd_4x4"):
        algo = get_algorithm(name)
        assert "stride" in algo.supports(ConvConfig(4, 4, (3, 3), stride=(2, 2)))
        assert "3x3" in algo.supports(ConvConfig(4, 4, (5, 5)))
        assert "dilation" in algo.supports(ConvConfig(4, 4, (3, 3), dilation=(2, 2)))
        assert algo.supports(ConvConfig(4, 4, (3, 3), padding=(1, 1), groups=2)) is None
        with pytest.raises(UnsupportedOperator):
            algo(torch.randn(1, 4, 8, 8), torch.randn(4, 4, 3, 3), stride=2)


def test_implicit_gemm_tiles_many_blocks():
    algo = ImplicitGemm(tile_elements=200)  # forces one output row (or fewer) per block
    x, w, b, conf = _case((3, 5, 3, 2, 1, 1, 1, 15, 13))
    y = algo.conv2d(x, w, b, conf.stride, conf.padding, conf.dilation, conf.groups)
    ref = F.conv2d(x, w, b, conf.stride, conf.padding, conf.dilation, conf.groups)
    assert _rel(y, ref) <= algo.tolerance


def test_registry_names_and_aliases():
    assert list_algorithms()[0] == "default"
    assert get_algorithm("winograd").name == "winograd_2x2"
    assert get_algorithm("SMM").name == "implicit_gemm"
    with pytest.raises(UnknownName, match="choose one of"):
        get_algorithm("magic")


def test_conv_geometry_and_pad_input_match_f_conv2d():
    from xflow.algsel.algorithms._base import ConvGeometry, pad_input

    x, w = torch.randn(2, 4, 13, 12), torch.randn(8, 2, 3, 5)
    s = ConvGeometry.of(x, w, (2, 1), (1, 2), (2, 1))
    y = F.conv2d(x, w, None, (2, 1), (1, 2), (2, 1), 2)
    assert (s.n, s.c, s.o, s.cg, s.kh, s.kw) == (2, 4, 8, 2, 3, 5)
    assert (s.n, s.o, s.ho, s.wo) == tuple(y.shape)
    assert pad_input(x, (1, 2)).shape == (2, 4, 15, 16)
    assert pad_input(x, (0, 0)) is x
