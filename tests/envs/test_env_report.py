"""The before/after ratio of the env-step table: ratio of medians with an unpaired bootstrap interval."""
import numpy as np

from xflow.envs.report import ratio_interval


def test_ratio_interval_brackets_the_ratio_of_medians():
    rng = np.random.default_rng(0)
    before = 3000 * np.exp(rng.normal(0, 0.05, 9))
    after = 1000 * np.exp(rng.normal(0, 0.05, 9))
    r, lo, hi = ratio_interval(before, after)
    assert r == np.median(before) / np.median(after)
    assert lo < r < hi and 2.7 < lo and hi < 3.3  # 3x apart, 5 % noise: a tight interval around 3
    r2, lo2, hi2 = ratio_interval(after, before)
    assert abs(r2 * r - 1) < 1e-12 and hi2 < 1  # direction matters


def test_ratio_interval_widens_with_noise_and_is_deterministic():
    rng = np.random.default_rng(1)
    a, b = 2 * np.exp(rng.normal(0, 0.5, 5)), np.exp(rng.normal(0, 0.5, 5))
    quiet = ratio_interval(2 * np.ones(5) * np.exp(np.linspace(-0.01, 0.01, 5)), np.exp(np.linspace(-0.01, 0.01, 5)))
    noisy = ratio_interval(a, b)
    assert (noisy[2] - noisy[1]) > 10 * (quiet[2] - quiet[1])
    assert ratio_interval(a, b) == noisy
