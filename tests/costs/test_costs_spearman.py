"""``xflow.costs.spearman.spearman_ci``: ρ with a bootstrap interval over the pairs."""
from __future__ import annotations

import numpy as np

from xflow.costs.spearman import spearman_ci


def test_spearman_ci_ranks_not_values_and_brackets_its_estimate():
    x = np.arange(20.0)
    assert np.allclose(spearman_ci(x, np.exp(x)), 1.0)  # monotone, not linear: still 1
    rho, lo, hi = spearman_ci(x, -x ** 3)
    assert np.allclose((rho, lo, hi), -1.0)
    noisy = x + np.random.default_rng(0).normal(0, 6, x.size)
    rho, lo, hi = spearman_ci(x, noisy, seed=1)
    assert lo < rho < hi and 0.3 < rho < 0.95 and lo > -1 and hi < 1
    assert spearman_ci(x, np.ones_like(x)) == (0.0, 0.0, 0.0)  # nothing to rank: 0, not NaN
    assert spearman_ci(x, noisy, seed=1) == (rho, lo, hi)  # seeded


def test_loading_the_report_tables_keeps_costs_agreement_a_function():
    """``xflow.costs.agreement`` is both a lazily exported function and its module's name; importing
    the module (as the report tables once did for ``spearman_ci``) would shadow the function."""
    import xflow.costs.report  # noqa: F401
    from xflow.costs import agreement

    assert callable(agreement)
