"""autotune: applicable candidates per layer and family, outputs kept, cache per device/config/shape,
training mode measures what training runs, memory budget, layouts, the never-slower guard."""
from __future__ import annotations

import json
import sys

import pytest
import torch

from xflow.algsel import autotune, build_model, choices, get_algorithm, swap
from xflow.algsel.algorithms import ConvConfig
from xflow.algsel.autotune import load_cache
from xflow.algsel.ops import FAMILIES, model_layout
from xflow.safeio import write_checked_json
from xflow.algsel.swap import conv_layers
from xflow.errors import DeviceUnavailable, UnknownName, XflowError

at = sys.modules["xflow.algsel.autotune"]


@pytest.fixture
def setup(tmp_results):
    model = build_model("tiny")
    x = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    return model, x, tmp_results / "cache" / "algsel_test.json"


def _layers(model):
    return {n for f in FAMILIES.values() for n, _ in f.layers(model)}


def test_autotune_picks_applicable_candidates_and_caches(setup):
    model, x, cache = setup
    res = autotune(model, x, "cpu", repeats=2, warmup=0, cache_path=cache, e2e_rounds=2)
    convs = dict(conv_layers(model))
    assert set(res.choices) == _layers(model) and len(res.choices) == 10
    for layer, algo in res.choices.items():
        if layer in convs:
            a = get_algorithm(algo)
            assert a.supports(ConvConfig.from_module(convs[layer])) is None and a.available("cpu") is None
    rep = res.report
    assert set(rep["op"]) == {"conv2d", "linear", "pool"}
    assert {"choice", "default_ms", "speedup", "cached", "input_shape", "config", "why_not", "cached_bytes"} <= set(rep.columns)
    assert rep.loc[rep.layer == "features.2", "winograd_2x2_ms"].isna().all()  # 5x5 stride 2
    assert "cudnn_benchmark_ms" not in rep.columns                         # GPU-only: not a CPU candidate
    assert rep.loc[rep.layer == "features.16", "shift_ms"].isna().all()    # avg pool with ceil_mode
    assert not rep["cached"].any(), rep[["layer", "cached"]]
    assert choices(res.model, op=None) == res.choices
    with torch.no_grad():
        y = model(x)
        assert y.std() > 1e-3 and torch.allclose(res.model(x), y, rtol=1e-3, atol=1e-4)
    stored = load_cache(cache)
    assert len(stored) == len(res.choices)  # every (family, config, shape) of tiny is distinct
    # doubtful entries (wide 2-round intervals, a busy machine) are re-measured once, then served
    again = autotune(model, x, "cpu", repeats=2, warmup=0, cache_path=cache, guard=False)
    third = autotune(model, x, "cpu", repeats=2, warmup=0, cache_path=cache, guard=False)
    assert third.report["cached"].all() and third.choices == again.choices
    # another input shape is another cache entry (the linear head sees (1, 32) either way: a hit)
    other = autotune(model, torch.randn(1, 3, 12, 12), "cpu", repeats=2, warmup=0, cache_path=cache, guard=False)
    hit = dict(zip(other.report.layer, other.report.cached))
    assert hit.pop("fc") and not any(hit.values())
    # replayable: the choices dict is a selector across families
    replay = swap(model, layers=third.choices)
    assert choices(replay, op=None) == third.choices


def test_autotune_candidates_and_min_gain(setup):
    model, x, cache = setup
    res = autotune(model, x, "cpu", ops=["conv2d"], candidates=["im2col"], repeats=2, warmup=0, use_cache=False,
                   min_gain=0.0, guard=False, prune_factor=None)  # no pruning: on a loaded machine a pilot can prune im2col
    assert set(res.choices.values()) <= {"default", "im2col"} and set(res.choices) == set(dict(conv_layers(model)))
    assert [c for c in res.report.columns if c.endswith("_ms") and c not in ("default_ms", "best_ms")] == ["im2col_ms"]
    keep = autotune(model, x, "cpu", repeats=2, warmup=0, use_cache=False, min_gain=1e6, guard=False)
    assert set(keep.choices.values()) == {"default"}  # nothing is a million times faster
    rec = res.records()
    assert {r["metric"] for r in rec} == {"layer_median_ms"} and {r["algorithm"] for r in rec} == {"default", "im2col"}
    assert all(r["ci_lo"] <= r["ratio"] <= r["ci_hi"] for r in rec if r["algorithm"] == "im2col" and r["verdict"] != "pruned")
    with pytest.raises(UnknownName, match="unknown pooling algorithm"):
        autotune(model, x, candidates={"pool": ["nope"]}, use_cache=False)
    with pytest.raises(UnknownName, match="unknown mode"):
        autotune(model, x, mode="training", use_cache=False)
    with pytest.raises(UnknownName, match="unknown layout"):
        autotune(model, x, layouts=["nhwc"], use_cache=False)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_autotune_cuda_without_gpu_is_a_clean_error(setup):
    model, x, _ = setup
    with pytest.raises(DeviceUnavailable, match="no CUDA"):
        autotune(model, x, "cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_autotune_cuda(setup):  # pragma: no cover - GPU machines only
    model, x, cache = setup
    res = autotune(model, x, "cuda", repeats=2, cache_path=cache, e2e_rounds=2)
    with torch.no_grad():
        assert torch.allclose(res.model(x.cuda()).cpu(), model(x), rtol=1e-2, atol=1e-3)


def test_autotune_model_without_tunable_layers_is_a_clean_error(tmp_results):
    with pytest.raises(XflowError, match="no conv2d layer"):
        autotune(torch.nn.Sequential(torch.nn.Linear(4, 2)), torch.randn(1, 4), "cpu", ops=["conv2d"], use_cache=False)


def _entry(ratio, ci, busy=False, floor=0.01):
    return {"version": at.CACHE_VERSION, "noise_floor": floor, "conditions": {"busy": busy},
            "candidates": {"default": {"median_ms": 1.0, "ratio": 1.0, "ci": [1.0, 1.0]},
                           "im2col": {"median_ms": ratio, "ratio": ratio, "ci": list(ci), "rounds": 10,
                                      "level": 0.975}}}


def test_decide_switches_only_on_a_significant_win():
    assert at.decide(_entry(0.7, (0.65, 0.75)), 0.05)[0] == "im2col"
    assert at.decide(_entry(0.7, (0.65, 1.02)), 0.05)[0] == "default"    # interval reaches 1
    assert at.decide(_entry(0.97, (0.96, 0.98)), 0.05)[0] == "default"   # below min_gain
    assert at.decide(_entry(0.97, (0.96, 0.98), floor=0.0), 0.0)[0] == "im2col"
    assert at.decide(_entry(0.985, (0.98, 0.99), floor=0.03), 0.0)[0] == "default"  # inside the A/A floor


def test_doubtful_and_stale_cache_entries_are_remeasured(setup, monkeypatch):
    model, x, cache = setup
    calls = []
    real = at._measure_layer

    def spy(*a, **k):
        calls.append(k["rounds"])
        return real(*a, **k)

    monkeypatch.setattr(at, "_measure_layer", spy)
    kw = dict(ops=["conv2d"], candidates=["im2col"], repeats=2, warmup=0, cache_path=cache, guard=False)
    autotune(model, x, "cpu", **kw)
    n = len(calls)
    assert n == len(dict(conv_layers(model)))
    stored = load_cache(cache)
    key = next(iter(stored))
    for k in stored:                                     # pretend a quiet, clear first measurement
        stored[k] = _entry(0.5, (0.45, 0.55))
    stored[key] = _entry(0.9, (0.8, 1.1))                # straddles 1/(1+min_gain): doubtful
    other = next(k for k in stored if k != key)
    stored[other] = {"version": 2, "candidates": {"default": {"median_ms": 1.0}}}  # an old-version entry
    write_checked_json(cache, stored)  # the cache's own content-checked format
    again = autotune(model, x, "cpu", **kw)
    assert sorted(calls[n:]) == [2, 4]                   # the stale one re-measured, the doubtful one with 2x rounds
    assert again.report["cached"].sum() == n - 2
    stored = load_cache(cache)  # the stale entry's fresh (attempt-1) measurement may itself be doubtful
    stored[other] = _entry(0.5, (0.45, 0.55))  # under load; the check below is about the attempt-2 entry
    write_checked_json(cache, stored)
    third = autotune(model, x, "cpu", **kw)
    assert third.report["cached"].all()                  # re-measured once: accepted now
    cache.write_text("{not json")                        # a corrupt cache file is rebuilt, not fatal
    assert not autotune(model, x, "cpu", **kw).report["cached"].any()
    assert load_cache(cache)


def test_identical_candidates_keep_default(setup, monkeypatch):
    """Fed an algorithm that is exactly ``default``, the tuner must keep ``default`` everywhere."""
    from xflow.algsel.algorithms import _REGISTRY, get_algorithm as get

    model, x, cache = setup
    clone = type("DefaultClone", (type(get("default")),), {"name": "default_clone"})()
    monkeypatch.setitem(_REGISTRY, "default_clone", clone)
    res = autotune(model, x, "cpu", ops=["conv2d"], candidates=["default_clone"], repeats=6, warmup=1,
                   use_cache=False, guard=False)
    assert sum(c != "default" for c in res.choices.values()) <= 1


class _CountingWinograd(type(get_algorithm("winograd_4x4"))):
    """winograd_4x4 that counts its filter transforms."""

    name = "winograd_counting"
    count = 0

    def filter_transform(self, weight, groups):
        type(self).count += 1
        return super().filter_transform(weight, groups)


def test_train_mode_times_a_step_with_weight_update(setup, monkeypatch):
    """Training-mode timing must pay the filter transform once per step (the update invalidates it),
    include backward, and never offer inference-only algorithms; inference reuses the transform."""
    from xflow.algsel.algorithms import _REGISTRY

    model, x, _ = setup
    algo = _CountingWinograd()
    monkeypatch.setitem(_REGISTRY, algo.name, algo)
    steps = []
    real = at._measure_layer

    def spy(fns, **k):
        steps.append(k["mode"])
        return real(fns, **k)

    monkeypatch.setattr(at, "_measure_layer", spy)
    only = {"features.11": model.features[11]}  # one 3x3 stride-1 layer is enough
    sub = torch.nn.Sequential(only["features.11"])
    xin = torch.randn(1, 24, 8, 8, generator=torch.Generator().manual_seed(1))
    kw = dict(ops=["conv2d"], candidates=[algo.name, "mkldnn_packed"], repeats=3, warmup=1, use_cache=False,
              guard=False, prune_factor=None)
    _CountingWinograd.count = 0
    inf = autotune(sub, xin, mode="inference", **kw)
    n_inf = _CountingWinograd.count
    assert "mkldnn_packed_ms" in inf.report.columns
    _CountingWinograd.count = 0
    res = autotune(sub, xin, mode="train", **kw)
    n_train = _CountingWinograd.count
    assert steps == ["inference", "train"]
    assert "mkldnn_packed_ms" not in res.report.columns  # inference-only: not a training candidate
    assert n_inf <= 2                                     # cached across inference calls
    # the grad_out probe computes it; the warm-up step reuses it and updates the weight; each of the
    # 3 rounds (inner >= 1 steps each) recomputes it: the update invalidates it, as in training
    assert n_train >= 1 + 3
    assert res.mode == "train" and res.rows[0]["input_grad"] is False


def test_memory_budget_skips_and_bounds(setup):
    model, x, _ = setup
    kw = dict(ops=["conv2d"], candidates=["winograd_4x4", "fft"], repeats=2, warmup=0, use_cache=False, guard=False)
    res = autotune(model, x, memory_budget=0, **kw)
    assert set(res.choices.values()) == {"default"} and res.cached_bytes == 0
    assert res.report["why_not"].str.contains("memory: needs").any()
    # a budget that fits one layer's transform only: whatever wins, the tuned model stays within it
    small = 40_000
    res = autotune(model, x, memory_budget=small, min_gain=0.0, **kw)
    assert res.cached_bytes <= small
    rows = [{"layer": "a", "choice": "fft", "ranked": ["fft", "winograd_4x4"], "times_ms": {"default": 2.0, "fft": 1.0,
             "winograd_4x4": 1.5}, "cached_bytes_by_algo": {"fft": 100, "winograd_4x4": 10}},
            {"layer": "b", "choice": "fft", "ranked": ["fft"], "times_ms": {"default": 9.0, "fft": 1.0},
             "cached_bytes_by_algo": {"fft": 100}}]
    at._fit_budget(rows, 115)  # layer a loses least per freed byte: moved to its next-best cheaper candidate
    assert [r["choice"] for r in rows] == ["winograd_4x4", "fft"]
    at._fit_budget(rows, 100)
    assert [r["choice"] for r in rows] == ["default", "fft"]
    at._fit_budget(rows, 0)
    assert [r["choice"] for r in rows] == ["default", "default"]


def test_layouts_and_guard(setup, monkeypatch):
    model, x, _ = setup
    res = autotune(model, x, ops=["pool"], repeats=2, warmup=0, use_cache=False, layouts=["nchw", "channels_last"],
                   e2e_rounds=3)
    assert set(res.layout_rows) == {"nchw", "channels_last"}
    assert set(res.e2e["variants"]) == {"default", "tuned:nchw", "tuned:channels_last"}
    assert model_layout(res.model) == res.layout and res.e2e["chosen"] in res.e2e["variants"]
    assert all(r["channels_last"] for r in res.layout_rows["channels_last"])
    # the guard: a tuned model measured significantly slower than the untouched one is dropped
    real = at.measure

    def rigged(variants, **k):
        m = real(variants, **k)
        for name in m.samples:  # tuned 3x slower than default in every round, a perfect A/A control
            factor = 3.0 if name.startswith("tuned:") else 1.0 if name == "default~aa" else None
            if factor is not None and "tuned:nchw" in m.samples:
                for c in m.samples[name]:
                    m.samples[name][c] = m.samples["default"][c] * factor
        return m

    monkeypatch.setattr(at, "measure", rigged)
    slow = autotune(model, x, ops=["pool"], candidates={"pool": ["shift"]}, repeats=2, warmup=0, use_cache=False,
                    min_gain=0.0, e2e_rounds=3)
    assert slow.e2e["chosen"] == "default" and set(slow.choices.values()) == {"default"}
    assert model_layout(slow.model) == "nchw" and choices(slow.model, op="pool") == slow.choices


def test_pilot_prunes_on_the_deciding_clock_not_wall_time(setup, monkeypatch):
    """A candidate whose pilot call was descheduled (wall 100x default, thread CPU time equal) is a
    busy machine, not a hopeless algorithm: it must be timed, not pruned; one that really costs 100x
    CPU time is pruned."""
    model, x, _ = setup
    real = at.measure

    def rigged(variants, **k):
        m = real(variants, **k)
        if k.get("rounds") == 1 and "im2col" in m.samples:  # the pilot
            d = m.samples["default"]
            m.samples["im2col"] = {c: d[c] * (100.0 if c == "wall" else 1.0) for c in d}
            m.samples["direct"] = {c: d[c] * 100.0 for c in d}
        return m

    monkeypatch.setattr(at, "measure", rigged)
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: the deciding clock is thread CPU time
    try:
        res = autotune(torch.nn.Sequential(model.features[11]), torch.randn(1, 24, 8, 8), ops=["conv2d"],
                       candidates=["im2col", "direct"], repeats=2, warmup=0, use_cache=False, guard=False)
    finally:
        torch.set_num_threads(before)
    comp = res.rows[0]["comparisons"]
    assert comp["im2col"]["ratio"] is not None   # timed
    assert comp["direct"]["ratio"] is None       # pruned on CPU time
