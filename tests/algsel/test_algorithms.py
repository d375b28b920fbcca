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


# -- memory, bounded FFT, framework-native and cuDNN algorithms, training-time transform caching ----
def test_fft_spectrum_memory_and_bounded_path():
    from xflow.algsel.algorithms import FFT

    vgg = ConvConfig(512, 512, (3, 3), padding=(1, 1))
    assert FFT.spectrum_bytes(vgg, (1, 512, 28, 28)) == 512 * 512 * 30 * 16 * 8  # 1.0 GB for one VGG16 layer
    assert FFT().memory(vgg, (1, 512, 28, 28)).cached == 0                       # over the bound: never kept
    bounded = FFT(max_cached_bytes=0, block_bytes=2000)  # forces several output-channel blocks per group
    x, w, b, conf = _case((4, 6, 3, 1, 1, 2, 2, 9, 10))
    state = {}
    y = bounded.conv2d(x, w, b, conf.stride, conf.padding, conf.dilation, conf.groups, state)
    assert state == {} and _rel(y, F.conv2d(x, w, b, 1, 1, 2, 2)) <= bounded.tolerance
    small = FFT()
    small.conv2d(x, w, b, conf.stride, conf.padding, conf.dilation, conf.groups, state)
    assert len(state) == 1                                # within the bound: cached


def test_winograd_filter_vjp_is_the_transform_transpose():
    algo = get_algorithm("winograd_4x4")
    w = torch.randn(6, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    u = algo.filter_transform(w, 2)
    g = torch.randn_like(u)
    (ref,) = torch.autograd.grad(u, w, g)
    assert torch.allclose(algo._filter_vjp(g, w.shape), ref)


@pytest.mark.parametrize("name", ["winograd_2x2", "winograd_4x4", "fft", "channels_last"])
def test_training_transform_cache_follows_optimizer_steps(name, monkeypatch):
    """Training with a cached filter transform: outputs and gradients equal F.conv2d's at every
    step (a stale transform after an update would not), and the transform is computed once per
    weight update, not once per forward (two micro-batches share it)."""
    calls = []
    algo = get_algorithm(name)
    gen = torch.Generator().manual_seed(4)
    conv = torch.nn.Conv2d(6, 8, 3, padding=1)
    ref = torch.nn.Conv2d(6, 8, 3, padding=1)
    ref.load_state_dict(conv.state_dict())
    from xflow.algsel import swap_conv2d

    model = swap_conv2d(torch.nn.Sequential(conv), name, share_weights=False)
    layer = model[0]
    orig_set = dict.__setitem__

    class CountingState(dict):
        def __setitem__(self, k, v):
            calls.append(k)
            orig_set(self, k, v)

    layer._state = CountingState()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    opt_ref = torch.optim.SGD(ref.parameters(), lr=0.5)
    for step in range(3):
        for micro in range(2):
            x = torch.randn(2, 6, 9, 9, generator=gen)
            y, y_ref = model(x), ref(x)
            assert y_ref.std() > 0.1 and _rel(y, y_ref) <= 10 * algo.tolerance, (step, micro)
            (y.square().mean() / 2).backward()
            (y_ref.square().mean() / 2).backward()
        assert _rel(layer.weight.grad, ref.weight.grad) <= 10 * algo.tolerance
        opt.step(), opt_ref.step()
        opt.zero_grad(), opt_ref.zero_grad()
    assert len(calls) == 3  # one transform per weight update


def test_inference_only_algorithm_falls_back_while_training():
    from xflow.algsel import AlgorithmFallbackWarning, swap_conv2d

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1))
    x = torch.randn(1, 3, 6, 6)
    m = swap_conv2d(net, "mkldnn_packed")
    with torch.no_grad():
        assert _rel(m(x), net(x)) < 1e-5
        assert m[0]._state  # the packed weight is kept
    with pytest.warns(AlgorithmFallbackWarning, match="inference-only"):
        y = m(x)
    y.sum().backward()
    assert net[0].weight.grad is not None and _rel(y, net(x)) < 1e-6


def test_cudnn_modes_are_gpu_only_but_their_code_path_is_exact():
    """The cuDNN policies are offered on CUDA only; the flagged forward/backward itself is checked
    here on CPU (the flags do not matter there), the GPU check script times them on a GPU."""
    from xflow.algsel.algorithms.cudnn import CUDNN_MODES

    assert not set(list_algorithms("cpu")) & {m.name for m in CUDNN_MODES}
    assert all(m.available("cpu") for m in CUDNN_MODES)
    x, w, b, conf = _case((4, 6, 3, 2, 1, 1, 2, 9, 10), requires_grad=True)
    for mode in CUDNN_MODES:
        y = mode.conv2d(x, w, b, conf.stride, conf.padding, conf.dilation, conf.groups)
        ref = F.conv2d(x, w, b, conf.stride, conf.padding, conf.dilation, conf.groups)
        g = torch.autograd.grad(y.square().sum(), (x, w, b))
        gr = torch.autograd.grad(ref.square().sum(), (x, w, b))
        assert _rel(y, ref) < 1e-6 and all(_rel(a, r) < 1e-5 for a, r in zip(g, gr))


def test_memory_estimates_follow_the_algorithm():
    cfg, shape = ConvConfig(64, 128, (3, 3), padding=(1, 1)), (1, 64, 56, 56)
    weight = 128 * 64 * 9 * 4
    mem = {n: get_algorithm(n).memory(cfg, shape) for n in list_algorithms("cpu")}
    assert mem["winograd_4x4"].cached == 4 * weight and mem["winograd_2x2"].cached == 16 * weight // 9
    assert mem["im2col"].workspace == 64 * 9 * 56 * 56 * 4 and mem["im2col"].cached == 0
    assert mem["implicit_gemm"].workspace <= ImplicitGemm().tile_elements * 4 < mem["im2col"].workspace
    assert mem["default"].cached == 0 and mem["mkldnn_packed"].cached == weight


def test_implicit_gemm_is_im2col_when_one_tile():
    ig = ImplicitGemm()
    assert ig.tiles(ConvConfig(512, 512, (3, 3), padding=(1, 1)), (1, 512, 14, 14)) == 1
    assert ig.tiles(ConvConfig(64, 64, (3, 3), padding=(1, 1)), (1, 64, 224, 224)) > 1
