"""The ``costs.fidelity`` docs table from a (synthetic) fidelity result file."""
from __future__ import annotations

import pandas as pd

import xflow.costs.report as rep


def test_fidelity_table_marks_the_target(monkeypatch):
    rows = []
    for model, rho_ort in (("a", 0.8), ("b", 0.5)):
        for cm, rho in (("nominal", 0.1), ("ort", rho_ort)):
            for g in range(3):
                rows.append({"model": model, "cost_model": cm, "graph": g, "measured_ratio": 1.0 + 0.1 * g,
                             "verdict": "slower" if g == 2 else "same", "rounds": 5 + g, "spearman": rho,
                             "spearman_lo": rho - 0.2, "spearman_hi": rho + 0.1})
    monkeypatch.setattr(rep, "load_result", lambda path: pd.DataFrame(rows))
    monkeypatch.setattr(rep, "MIN_GRAPHS", 2)
    text = rep.fidelity_table()
    lines = text.splitlines()
    assert "ρ ort" in lines[0] and "ρ nominal" in lines[0]
    a, b = lines[2], lines[3]
    assert "`a`" in a and a.rstrip(" |").endswith("met") and "0.80 [0.60, 0.90]" in a
    assert "`b`" in b and b.rstrip(" |").endswith("not met")
    assert "| 2 |" in a and "6–7" in a and "0 / 1" in a  # graphs beyond the original, rounds, verdicts
    monkeypatch.setattr(rep, "MIN_GRAPHS", 3)  # too few rewritten graphs: no ρ, no verdict on the target
    assert "too few graphs" in rep.fidelity_table().splitlines()[2]
