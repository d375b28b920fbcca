"""autotune: picks an applicable candidate per layer, keeps outputs, caches per device/config/shape."""
from __future__ import annotations

import pytest
import torch

from xflow.algsel import autotune, build_model, choices, get_algorithm, swap_conv2d
from xflow.algsel.algorithms import ConvConfig
from xflow.algsel.autotune import load_cache
from xflow.algsel.swap import conv_layers
from xflow.errors import DeviceUnavailable


@pytest.fixture
def setup(tmp_results):
    model = build_model("tiny")
    x = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    return model, x, tmp_results / "cache" / "algsel_test.json"


def test_autotune_picks_applicable_candidates_and_caches(setup):
    model, x, cache = setup
    res = autotune(model, x, "cpu", repeats=1, warmup=0, cache_path=cache)
    convs = dict(conv_layers(model))
    assert set(res.choices) == set(convs)
    for layer, algo in res.choices.items():
        assert get_algorithm(algo).supports(ConvConfig.from_module(convs[layer])) is None
    rep = res.report
    assert list(rep["layer"]) == list(convs)
    assert {"choice", "default_ms", "speedup", "cached", "input_shape", "config", "why_not"} <= set(rep.columns)
    assert rep.loc[rep.layer == "features.2", "winograd_2x2_ms"].isna().all()  # 5x5 stride 2
    assert not rep["cached"].any()
    assert choices(res.model) == res.choices
    with torch.no_grad():
        assert torch.allclose(res.model(x), model(x), rtol=1e-3, atol=1e-4)
    stored = load_cache(cache)
    assert len(stored) == len(convs)  # every (config, shape) of tiny is distinct
    again = autotune(model, x, "cpu", repeats=1, warmup=0, cache_path=cache)
    assert again.report["cached"].all() and again.choices == res.choices
    # another input shape is another cache entry
    other = autotune(model, torch.randn(1, 3, 12, 12), "cpu", repeats=1, warmup=0, cache_path=cache)
    assert not other.report["cached"].any()
    # replayable: the choices dict is a selector
    replay = swap_conv2d(model, res.choices)
    assert choices(replay) == res.choices


def test_autotune_candidates_and_min_gain(setup):
    model, x, cache = setup
    res = autotune(model, x, "cpu", candidates=["im2col"], repeats=1, warmup=0, use_cache=False, min_gain=0.0)
    assert set(res.choices.values()) <= {"default", "im2col"}
    assert [c for c in res.report.columns if c.endswith("_ms") and c not in ("default_ms", "best_ms")] == ["im2col_ms"]
    keep = autotune(model, x, "cpu", repeats=1, warmup=0, use_cache=False, min_gain=1.0)  # nothing can be 100% faster
    assert set(keep.choices.values()) == {"default"}
    rec = res.records()
    assert {r["metric"] for r in rec} == {"layer_ms", "layer_median_ms"} and {r["algorithm"] for r in rec} == {"default", "im2col"}


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_autotune_cuda_without_gpu_is_a_clean_error(setup):
    model, x, _ = setup
    with pytest.raises(DeviceUnavailable, match="no CUDA"):
        autotune(model, x, "cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_autotune_cuda(setup):  # pragma: no cover - GPU machines only
    model, x, cache = setup
    res = autotune(model, x, "cuda", repeats=1, cache_path=cache)
    with torch.no_grad():
        assert torch.allclose(res.model(x.cuda()).cpu(), model(x), rtol=1e-3, atol=1e-3)


def test_autotune_model_without_convs_is_a_clean_error(tmp_results):
    from xflow.errors import XflowError

    with pytest.raises(XflowError, match="no Conv2d"):
        autotune(torch.nn.Linear(4, 2), torch.randn(1, 4), "cpu", use_cache=False)
