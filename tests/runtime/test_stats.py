"""The statistics of the measurement core on seeded synthetic samples (never on real timings)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from xflow.runtime.stats import noise_floor, paired_effect, trimmed_mean, verdict


def _rounds(rng: np.random.Generator, n: int, effect: float = 1.0, *, noise: float = 0.03,
            drift: float = 0.05, outliers: float = 0.05) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(baseline, A/A control, variant) per-round times on a drifting machine with rare stalls."""
    d = np.exp(rng.normal(0, drift, n))  # shared by the three variants of a round

    def one(scale: float) -> np.ndarray:
        stall = 1 + (rng.random(n) < outliers) * rng.exponential(0.5, n)
        return scale * 1e-3 * d * np.exp(rng.normal(0, noise, n)) * stall

    return one(1.0), one(1.0), one(effect)


def test_trimmed_mean_drops_the_tails():
    x = np.array([1.0, 2.0, 3.0, 4.0, 100.0])
    assert trimmed_mean(x, 0.2) == pytest.approx(3.0)
    assert trimmed_mean(x, 0.0) == pytest.approx(22.0)


def test_paired_effect_recovers_a_planted_ratio_and_is_seeded():
    rng = np.random.default_rng(0)
    b, _, a = _rounds(rng, 40, effect=0.8)
    e1, e2 = paired_effect(a, b, seed=3), paired_effect(a, b, seed=3)
    assert e1 == e2
    assert e1.ci[0] < 0.8 < e1.ci[1]
    assert e1.ratio == pytest.approx(0.8, rel=0.03)


def test_pairing_cancels_drift_that_unpaired_medians_cannot():
    # huge round-to-round drift, tiny within-round noise: a 3 % effect is still resolved
    rng = np.random.default_rng(1)
    b, _, a = _rounds(rng, 30, effect=1.03, noise=0.005, drift=0.5, outliers=0.0)
    e = paired_effect(a, b)
    assert verdict(e) == "slower"
    assert e.ci[1] - e.ci[0] < 0.02


def test_aa_gives_same_in_at_least_95_percent_of_trials():
    rng = np.random.default_rng(2)
    trials, same = 200, 0
    for t in range(trials):
        b, aa, x = _rounds(rng, 20)
        floor = noise_floor(paired_effect(aa, b, seed=t))
        same += verdict(paired_effect(x, b, seed=t), floor=floor) == "same"
    assert same / trials >= 0.95


@pytest.mark.parametrize("effect,expected", [(1.10, "slower"), (1 / 1.10, "faster")])
def test_a_planted_10_percent_effect_is_detected(effect, expected):
    rng = np.random.default_rng(3)
    trials, hits = 100, 0
    for t in range(trials):
        b, aa, x = _rounds(rng, 20, effect=effect)
        floor = noise_floor(paired_effect(aa, b, seed=t))
        hits += verdict(paired_effect(x, b, seed=t), floor=floor) == expected
    assert hits / trials >= 0.9


def test_interval_coverage_is_close_to_nominal():
    rng = np.random.default_rng(4)
    trials, covered = 300, 0
    for t in range(trials):
        b, _, x = _rounds(rng, 30, effect=1.05)
        e = paired_effect(x, b, seed=t)
        # the estimand of the trimmed log-mean under this symmetric noise is log(1.05)
        covered += e.ci[0] <= 1.05 <= e.ci[1]
    assert 0.90 <= covered / trials <= 0.99


def test_wider_level_gives_a_wider_interval():
    rng = np.random.default_rng(5)
    b, _, x = _rounds(rng, 25)
    e95, e99 = paired_effect(x, b, level=0.95), paired_effect(x, b, level=0.99)
    assert e99.ci[0] <= e95.ci[0] and e99.ci[1] >= e95.ci[1]


def test_noise_floor_and_min_effect_turn_a_small_significant_effect_into_same():
    rng = np.random.default_rng(6)
    b, _, x = _rounds(rng, 60, effect=1.02, noise=0.002, drift=0.0, outliers=0.0)
    e = paired_effect(x, b)
    assert verdict(e) == "slower"
    assert verdict(e, floor=0.05) == "same"
    assert verdict(e, min_effect=0.05) == "same"


def test_noise_floor_is_the_extent_of_the_aa_effect():
    rng = np.random.default_rng(7)
    b, aa, _ = _rounds(rng, 20)
    e = paired_effect(aa, b)
    nf = noise_floor(e)
    assert nf >= abs(e.ratio - 1) * 0.99
    assert math.exp(max(abs(math.log(e.ci[0])), abs(math.log(e.ci[1])))) - 1 == pytest.approx(nf)


@pytest.mark.parametrize("bad", [
    dict(a=[1.0], b=[1.0]),
    dict(a=[1.0, 2.0], b=[1.0]),
    dict(a=[1.0, -2.0], b=[1.0, 1.0]),
])
def test_paired_effect_rejects_bad_samples(bad):
    with pytest.raises(ValueError):
        paired_effect(np.array(bad["a"]), np.array(bad["b"]))


def test_verdict_rejects_nan_floor():
    rng = np.random.default_rng(8)
    b, _, x = _rounds(rng, 10)
    with pytest.raises(ValueError):
        verdict(paired_effect(x, b), floor=float("nan"))
