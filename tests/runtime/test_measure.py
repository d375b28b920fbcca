"""The measurement loop: rounds, A/A control, clocks, inner sizing, decisions (no speed asserted)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from xflow.runtime.measure import AA_SUFFIX, Measurement, Variant, format_speedup, measure


def _work(n: int):
    def f():
        s = 0
        for i in range(n):
            s += i
        return s
    return f


def _synthetic(samples: dict[str, np.ndarray], baseline: str = "base", aa: str | None = "base~aa") -> Measurement:
    arr = {k: {"wall": v, "thread": v, "process": v} for k, v in samples.items()}
    return Measurement(arr, baseline, aa, "thread", {k: 1 for k in samples}, {k: 1 for k in samples},
                       0.0, 0.0, 0.0, 1.0)


def test_measure_runs_interleaved_rounds_with_an_aa_control():
    calls = []

    def tag(name):
        def f():
            calls.append(name)
        return f

    m = measure({"a": tag("a"), "b": tag("b")}, warmup=1, rounds=6, inner=1)
    assert m.baseline == "a" and m.aa == "a" + AA_SUFFIX
    assert m.names == ["a", "b", "a~aa"]
    assert m.rounds == 6
    timed = calls[3:]  # 3 warm-up calls (a, b, a~aa)
    assert len(timed) == 18
    # every round holds each variant once, and the order is shuffled between rounds
    rounds = [timed[i:i + 3] for i in range(0, 18, 3)]
    assert all(sorted(r) == ["a", "a", "b"] for r in rounds)
    assert len({tuple(r) for r in rounds}) > 1


def test_auto_clock_is_thread_cpu_for_single_threaded_variants_else_wall():
    f = _work(100)
    assert measure({"a": f, "b": f}, rounds=3, warmup=0).clock == "thread"
    assert measure({"a": Variant(f, threads=2), "b": f}, rounds=3, warmup=0).clock == "wall"
    assert measure({"a": Variant(f, sync=lambda: None), "b": f}, rounds=3, warmup=0).clock == "wall"


def test_inner_auto_averages_enough_calls_for_short_variants():
    m = measure({"tiny": lambda: None, "big": _work(200_000)}, rounds=3, warmup=2)
    assert m.inner["tiny"] > 10
    assert m.inner["big"] == 1
    assert m.inner["tiny~aa"] == m.inner["tiny"]


def test_a_two_fold_difference_is_called_slower_with_an_interval():
    m = measure({"base": _work(20_000), "double": _work(40_000)}, rounds=8, warmup=2)
    c = m.compare("double")
    assert c.verdict == "slower"
    assert c.ci[0] > 1.3
    assert 0.4 < c.speedup < 0.75
    assert "slower" in c.format() and "×" in c.format()


def test_before_hook_runs_untimed_before_each_sample():
    seen = []
    m = measure({"a": Variant(lambda: None, before=lambda: seen.append(1))}, rounds=4, warmup=0,
                inner=1, aa=False)
    assert len(seen) == 4 and m.aa is None and m.noise_floor() == 0.0


def test_aa_control_can_be_an_independent_copy():
    copies = []
    m = measure({"a": lambda: None}, aa=lambda: copies.append(1), rounds=3, warmup=0, inner=1)
    assert len(copies) == 3
    assert m.compare("a~aa").b == "a"


def test_records_carry_ratio_interval_verdict_floor_clock_and_load():
    m = measure({"a": _work(5000), "b": _work(5000)}, rounds=5, warmup=1)
    rows = m.records(model="toy")
    assert {r["variant"] for r in rows} == {"a", "b", "a~aa"}
    for key in ("ratio", "ci_lo", "ci_hi", "verdict", "noise_floor", "clock", "load_before", "load_after",
                "foreign_cpu", "speedup_lo", "speedup_hi", "model"):
        assert all(key in r for r in rows), key
    json.dumps(m.summary(), allow_nan=False)


def test_best_keeps_the_baseline_when_candidates_are_identical():
    rng = np.random.default_rng(0)
    kept = 0
    for t in range(50):
        base = 1e-3 * np.exp(rng.normal(0, 0.05, 20))
        s = {"base": base, "base~aa": 1e-3 * np.exp(rng.normal(0, 0.05, 20))}
        for k in range(4):
            s[f"copy{k}"] = 1e-3 * np.exp(rng.normal(0, 0.05, 20))
        m = _synthetic(s)
        m.seed = t
        kept += m.best()[0] == "base"
    assert kept >= 48


def test_best_picks_the_significantly_fastest_candidate():
    rng = np.random.default_rng(1)
    noise = lambda: np.exp(rng.normal(0, 0.02, 20))  # noqa: E731
    m = _synthetic({"base": 1e-3 * noise(), "base~aa": 1e-3 * noise(), "slow": 1.3e-3 * noise(),
                    "fast": 0.7e-3 * noise(), "faster": 0.5e-3 * noise()})
    name, cmp = m.best()
    assert name == "faster" and cmp.verdict == "faster" and cmp.speedup > 1.8


def test_measure_rejects_bad_arguments():
    with pytest.raises(ValueError):
        measure({}, rounds=3)
    with pytest.raises(ValueError):
        measure({"a": lambda: None}, rounds=0)
    one = measure({"a": lambda: None, "b": lambda: None}, rounds=1, warmup=0)
    assert one.comparisons() == {} and one.records()[0]["verdict"] == "baseline"
    with pytest.raises(ValueError, match="2 rounds"):
        one.compare("b")
    with pytest.raises(KeyError):
        measure({"a": lambda: None}, baseline="zz", rounds=3)
    with pytest.raises(ValueError):
        measure({"a": lambda: None}, rounds=3, clock="sundial")


def test_format_speedup():
    assert format_speedup(1.0123, (0.98, 1.04), "same") == "1.012× [0.980, 1.040] same"


def test_conditions_name_every_run_condition_once():
    """``CONDITIONS`` is the one list benchmarks copy run conditions by (rl_ablation, policy_eval)."""
    from xflow.runtime.measure import CONDITIONS, measure

    m = measure({"a": lambda: sum(range(50)), "b": lambda: sum(range(50))}, rounds=2, warmup=0)
    c = m.conditions()
    assert tuple(c) == CONDITIONS
    assert {"clock", "load_before", "load_after", "foreign_cpu", "busy"} <= set(CONDITIONS)
    assert isinstance(c["busy"], bool) and c["rounds"] == 2 and c["clock"] in ("thread", "wall", "process")
