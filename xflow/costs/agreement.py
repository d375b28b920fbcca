"""How well one cost model ranks graphs against another (e.g. a roofline against measurements)."""
from __future__ import annotations

from typing import Any

import numpy as np

from xflow.costs.base import CostModel

__all__ = ["agreement", "spearman_ci"]


def agreement(model: Any, graphs: list[Any], predicted: CostModel, measured: CostModel) -> dict[str, float]:
    """Spearman rank correlation of the speed-ups ``c(model) / c(g)`` under ``predicted`` and
    ``measured`` over ``graphs`` (e.g. the rewrite candidates of ``model``), and the fraction of
    graphs where both agree on the sign (faster / slower than ``model``).

    Returns ``{"n", "spearman", "sign_agreement", "predicted_wins", "measured_wins"}``.
    """
    from scipy.stats import spearmanr

    p0, m0 = predicted.cost(model), measured.cost(model)
    p = np.array([p0 / predicted.cost(g) for g in graphs])
    m = np.array([m0 / measured.cost(g) for g in graphs])
    rho = float(spearmanr(p, m).statistic) if len(graphs) > 2 else float("nan")
    return {"n": float(len(graphs)), "spearman": rho,
            "sign_agreement": float(np.mean((p > 1) == (m > 1))) if len(graphs) else float("nan"),
            "predicted_wins": float(np.sum(p > 1)), "measured_wins": float(np.sum(m > 1))}


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
