"""Spearman's rank correlation with a bootstrap interval (cost-model fidelity, test-retest)."""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["spearman_ci"]


def spearman_ci(a: Any, b: Any, *, n_boot: int = 2000, level: float = 0.95,
                seed: int = 0) -> tuple[float, float, float]:
    """Spearman's ρ of ``a`` vs ``b`` and a ``level`` percentile bootstrap interval over the pairs.

    Each of ``n_boot`` resamples draws the pairs with replacement; a resample (or the data) in which
    either side is constant has ρ = 0 (no ranking to agree with). Returns ``(rho, lo, hi)``.
    """
    from scipy.stats import spearmanr

    def rho(x, y):
        if np.ptp(x) == 0 or np.ptp(y) == 0:
            return 0.0
        return float(spearmanr(x, y).statistic)

    a, b = np.asarray(a, float), np.asarray(b, float)
    rng = np.random.default_rng(seed)
    boots = [rho(a[i], b[i]) for i in rng.integers(0, a.size, (n_boot, a.size))]
    tail = (1 - level) / 2
    lo, hi = np.quantile(boots, [tail, 1 - tail])
    return rho(a, b), float(lo), float(hi)
