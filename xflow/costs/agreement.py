"""How well one cost model ranks graphs against another (e.g. a roofline against measurements)."""
from __future__ import annotations

from typing import Any

import numpy as np

from xflow.costs.base import CostModel

__all__ = ["agreement"]


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
