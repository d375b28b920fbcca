"""autotune: picks an applicable candidate per layer, keeps outputs, caches per device/config/shape."""
from __future__ import annotations

import json

import pytest
import torch

from xflow.algsel import autotune, build_model, choices, get_algorithm, swap_conv2d
from xflow.algsel.algorithms import ConvConfig
from xflow.algsel.swap import conv_layers
from xflow.errors import DeviceUnavailable


@pytest.fixture
def setup(tmp_results):
    model = build_model("tiny")
    x = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    return model, x, tmp_results / "cache" / "algsel_test.json"


def test_autotune_picks_applicable_candidates_and_caches(setup):
    model, x, cache = setup
    res = autotune(model, x, "cpu", repeats=2, warmup=0, cache_path=cache)
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
    stored = json.loads(cache.read_text())
    assert len(stored) == len(convs)  # every (config, shape) of tiny is distinct
    # doubtful entries (wide 2-round intervals, a busy machine) are re-measured once, then served
    again = autotune(model, x, "cpu", repeats=2, warmup=0, cache_path=cache)
    third = autotune(model, x, "cpu", repeats=2, warmup=0, cache_path=cache)
    assert third.report["cached"].all() and third.choices == again.choices
    # another input shape is another cache entry
    other = autotune(model, torch.randn(1, 3, 12, 12), "cpu", repeats=2, warmup=0, cache_path=cache)
    assert not other.report["cached"].any()
    # replayable: the choices dict is a selector
    replay = swap_conv2d(model, third.choices)
    assert choices(replay) == third.choices


def test_autotune_candidates_and_min_gain(setup):
    model, x, cache = setup
    res = autotune(model, x, "cpu", candidates=["im2col"], repeats=2, warmup=0, use_cache=False, min_gain=0.0)
    assert set(res.choices.values()) <= {"default", "im2col"}
    assert [c for c in res.report.columns if c.endswith("_ms") and c not in ("default_ms", "best_ms")] == ["im2col_ms"]
    keep = autotune(model, x, "cpu", repeats=2, warmup=0, use_cache=False, min_gain=1e6)  # nothing is a million times faster
    assert set(keep.choices.values()) == {"default"}
    rec = res.records()
    assert {r["metric"] for r in rec} == {"layer_median_ms"} and {r["algorithm"] for r in rec} == {"default", "im2col"}
    assert all(r["ci_lo"] <= r["ratio"] <= r["ci_hi"] for r in rec if r["algorithm"] == "im2col")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_autotune_cuda_without_gpu_is_a_clean_error(setup):
    model, x, _ = setup
    with pytest.raises(DeviceUnavailable, match="no CUDA"):
        autotune(model, x, "cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_autotune_cuda(setup):  # pragma: no cover - GPU machines only
    model, x, cache = setup
    res = autotune(model, x, "cuda", repeats=2, cache_path=cache)
    with torch.no_grad():
        assert torch.allclose(res.model(x.cuda()).cpu(), model(x), rtol=1e-3, atol=1e-3)


def test_autotune_model_without_convs_is_a_clean_error(tmp_results):
    from xflow.errors import XflowError

    with pytest.raises(XflowError, match="no Conv2d"):
        autotune(torch.nn.Linear(4, 2), torch.randn(1, 4), "cpu", use_cache=False)


def _entry(ratio, ci, busy=False, floor=0.01):
    from xflow.algsel.autotune import CACHE_VERSION

    return {"version": CACHE_VERSION, "noise_floor": floor, "conditions": {"busy": busy},
            "candidates": {"default": {"median_ms": 1.0, "ratio": 1.0, "ci": [1.0, 1.0]},
                           "im2col": {"median_ms": ratio, "ratio": ratio, "ci": list(ci), "rounds": 10,
                                      "level": 0.975}}}


def test_decide_switches_only_on_a_significant_win():
    from xflow.algsel.autotune import decide

    assert decide(_entry(0.7, (0.65, 0.75)), 0.05)[0] == "im2col"
    assert decide(_entry(0.7, (0.65, 1.02)), 0.05)[0] == "default"    # interval reaches 1
    assert decide(_entry(0.97, (0.96, 0.98)), 0.05)[0] == "default"   # below min_gain
    assert decide(_entry(0.97, (0.96, 0.98), floor=0.0), 0.0)[0] == "im2col"
    assert decide(_entry(0.985, (0.98, 0.99), floor=0.03), 0.0)[0] == "default"  # inside the A/A floor


def test_doubtful_and_stale_cache_entries_are_remeasured(setup, monkeypatch):
    import sys

    at = sys.modules["xflow.algsel.autotune"]

    model, x, cache = setup
    calls = []
    real = at._measure_layer

    def spy(*a, **k):
        calls.append(k["rounds"])
        return real(*a, **k)

    monkeypatch.setattr(at, "_measure_layer", spy)
    autotune(model, x, "cpu", candidates=["im2col"], repeats=2, warmup=0, cache_path=cache)
    n = len(calls)
    assert n == len(dict(conv_layers(model)))
    stored = json.loads(cache.read_text())
    key = next(iter(stored))
    for k in stored:                                     # pretend a quiet, clear first measurement
        stored[k] = _entry(0.5, (0.45, 0.55))
    stored[key] = _entry(0.9, (0.8, 1.1))                # straddles 1/(1+min_gain): doubtful
    other = next(k for k in stored if k != key)
    stored[other] = {"version": 1, "times_ms": {"default": 1.0}}  # an old-format entry
    cache.write_text(json.dumps(stored))
    again = autotune(model, x, "cpu", candidates=["im2col"], repeats=2, warmup=0, cache_path=cache)
    assert sorted(calls[n:]) == [2, 4]                   # the stale one re-measured, the doubtful one with 2x rounds
    assert again.report["cached"].sum() == n - 2
    third = autotune(model, x, "cpu", candidates=["im2col"], repeats=2, warmup=0, cache_path=cache)
    assert third.report["cached"].all()                  # re-measured once: accepted now


def test_identical_candidates_keep_default(setup, monkeypatch):
    """Fed an algorithm that is exactly ``default``, the tuner must keep ``default`` everywhere."""
    from xflow.algsel.algorithms import _REGISTRY, get_algorithm as get

    model, x, cache = setup
    clone = type("DefaultClone", (type(get("default")),), {"name": "default_clone"})()
    monkeypatch.setitem(_REGISTRY, "default_clone", clone)
    res = autotune(model, x, "cpu", candidates=["default_clone"], repeats=6, warmup=1, use_cache=False)
    assert sum(c != "default" for c in res.choices.values()) <= 1
