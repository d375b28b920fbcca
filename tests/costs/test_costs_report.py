"""The ``costs.fidelity`` docs table from a (synthetic) fidelity result file."""
from __future__ import annotations

import numpy as np
import pandas as pd

import xflow.costs.report as rep
from xflow.tables import with_defaults


def test_fidelity_table_marks_the_target(monkeypatch):
    rows = []
    for model, rho_ort in (("a", 0.8), ("b", 0.5)):
        for cm, rho in (("nominal", 0.1), ("ort", rho_ort)):
            for g in range(3):
                rows.append({"model": model, "cost_model": cm, "graph": g, "measured_ratio": 1.0 + 0.1 * g,
                             "verdict": "slower" if g == 2 else "same", "rounds": 5 + g, "spearman": rho,
                             "spearman_lo": rho - 0.2, "spearman_hi": rho + 0.1})
    monkeypatch.setattr(rep, "load_result", lambda path, defaults=None: with_defaults(pd.DataFrame(rows), defaults))
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


def test_fidelity_tables_split_rows_by_backend(monkeypatch):
    """Rows without a backend (files older than the column) are ORT's; torch rows go to their own
    table, judged on the torch model. Kills: one table mixing both backends' rows."""
    rows = []
    for backend, cm_own, rho in ((None, "ort", 0.9), ("torch", "torch", 0.3)):
        for cm in ("nominal", cm_own):
            for g in range(3):
                rows.append({"model": "m", "backend": backend, "cost_model": cm, "graph": g,
                             "measured_ratio": 1.0 + (0.2 if backend else 0.1) * g, "verdict": "same",
                             "rounds": 5, "spearman": rho, "spearman_lo": rho - 0.1, "spearman_hi": rho + 0.05})
    monkeypatch.setattr(rep, "load_result", lambda path, defaults=None: with_defaults(pd.DataFrame(rows), defaults))
    monkeypatch.setattr(rep, "MIN_GRAPHS", 2)
    ort, torch_ = rep.fidelity_table().splitlines(), rep.fidelity_torch_table().splitlines()
    assert len(ort) == len(torch_) == 3  # header, rule, one model each
    assert "ρ ort" in ort[0] and "ρ torch" not in ort[0] and "1.00–1.20" in ort[2] and ort[2].rstrip(" |").endswith("met")
    assert "torch ρ ≥ 0.7" in torch_[0] and "1.00–1.40" in torch_[2] and torch_[2].rstrip(" |").endswith("not met")


def test_working_set_table_shows_each_run_and_whether_they_agree(monkeypatch):
    def row(variant, seed, ratio, verdict, busy=False):
        return {"backend": "ort", "variant": variant, "extra_weight_mib": 2.0 * (variant != "original"), "nodes": 10,
                "predicted_ort": 1.0, "median_ms": 4.0, "ratio": ratio, "lo": ratio - 0.03, "hi": ratio + 0.03,
                "verdict": verdict, "rounds": 40, "busy": busy, "seed": seed}
    rows = [row("original", 0, 1.0, "baseline"), row("original", 1, 1.0, "baseline"),
            row("dup-1", 0, 1.1, "slower"), row("dup-1", 1, 1.0, "same", busy=True),
            row("rw", 0, 1.1, "slower"), row("rw", 1, 1.08, "slower")]
    monkeypatch.setattr(rep, "load_result", lambda path, defaults=None: with_defaults(pd.DataFrame(rows), defaults))
    lines = rep.working_set_table().splitlines()
    assert "run 2: time vs original" in lines[0] and "run 3" not in lines[0]
    assert "+0.0 MiB" in lines[2] and lines[2].rstrip(" |").endswith("—")
    assert "+2.0 MiB" in lines[3] and "1.10× [1.07, 1.13] slower" in lines[3] and "same (busy)" in lines[3]
    assert lines[3].rstrip(" |").endswith("no") and lines[4].rstrip(" |").endswith("yes")


def test_working_set_sessions_table_counts_slower_sessions(monkeypatch):
    def row(variant, session, ratio, verdict):
        return {"variant": variant, "session": session, "ratio": ratio, "lo": ratio - 0.02, "hi": ratio + 0.02,
                "verdict": verdict, "median_ms": 4.0 * ratio, "busy": False}
    rows = [row("original", 0, 1.0, "baseline"), row("original", 1, 1.01, "same"),
            row("rw", 0, 1.08, "slower"), row("rw", 1, 1.01, "same")]
    monkeypatch.setattr(rep, "load_result", lambda path, defaults=None: with_defaults(pd.DataFrame(rows), defaults))
    lines = rep.working_set_sessions_table().splitlines()
    assert "baseline · 1.01× [0.99, 1.03] same" in lines[2] and "| 0 / 1 |" in lines[2]
    assert "1.08× [1.06, 1.10] slower · 1.01× [0.99, 1.03] same" in lines[3] and "| 1 / 2 |" in lines[3]


def test_fidelity_table_keeps_runs_with_several_sessions_apart(monkeypatch):
    rows = []
    for sessions, rho in ((None, 0.2), (3, 0.8)):
        for g in range(3):
            rows.append({"model": "m", "backend": "ort", "sessions": sessions, "cost_model": "ort", "graph": g,
                         "measured_ratio": 1.0 + 0.1 * g, "verdict": "same", "rounds": 5, "spearman": rho,
                         "spearman_lo": rho - 0.1, "spearman_hi": rho + 0.1})
    monkeypatch.setattr(rep, "load_result", lambda path, defaults=None: with_defaults(pd.DataFrame(rows), defaults))
    monkeypatch.setattr(rep, "MIN_GRAPHS", 2)
    lines = rep.fidelity_table().splitlines()
    assert len(lines) == 4 and "| 2 |" in lines[2] and "| 2 |" in lines[3]
    assert lines[2].startswith("| `m` |") and lines[2].rstrip(" |").endswith("not met")
    assert "(3 sessions per graph)" in lines[3] and lines[3].rstrip(" |").endswith("met")


def test_fidelity_table_judges_both_ort_models_and_shows_unscored_ones(monkeypatch):
    """``ort-context`` (re-scored rows) has its own target column; a model it was not scored on shows
    a dash instead of failing or borrowing another model's ρ."""
    rows = []
    for model, scored in (("a", {"ort": 0.3, "ort-context": 0.8}), ("b", {"ort": 0.9})):
        for cm, rho in scored.items():
            for g in range(3):
                rows.append({"model": model, "cost_model": cm, "graph": g, "measured_ratio": 1.0 + 0.1 * g,
                             "verdict": "same", "rounds": 5, "spearman": rho, "spearman_lo": rho - 0.1,
                             "spearman_hi": rho + 0.05})
    monkeypatch.setattr(rep, "load_result", lambda path, defaults=None: with_defaults(pd.DataFrame(rows), defaults))
    monkeypatch.setattr(rep, "MIN_GRAPHS", 2)
    head, _, a, b = rep.fidelity_table().splitlines()
    assert "ort ρ ≥ 0.7" in head and "ort-context ρ ≥ 0.7" in head
    cells = [c.strip() for c in a.strip(" |").split("|")]
    assert cells[-2:] == ["not met", "met"] and "0.80 [0.70, 0.85]" in a
    cells = [c.strip() for c in b.strip(" |").split("|")]
    assert cells[-2:] == ["met", "— (not scored)"] and cells[-3] == "—"


def test_context_ops_table_shows_both_times_and_their_ratio(monkeypatch):
    rows = [{"model": "nasrnn", "op": "MatMul", "inputs": "1×1024, W1024×512", "first_rule": "concat_matmul_add",
             "nodes": 3, "alone_ms": 0.031, "context_ms": 0.106, "context_over_alone": 0.106 / 0.031},
            {"model": "nasrnn", "op": "Relu", "inputs": float("nan"), "first_rule": "(original)", "nodes": 1,
             "alone_ms": 0.0, "context_ms": 0.004, "context_over_alone": float("nan")}]
    monkeypatch.setattr(rep, "load_result", lambda path, defaults=None: with_defaults(pd.DataFrame(rows), defaults))
    lines = rep.context_ops_table().splitlines()
    assert "alone (ort)" in lines[0] and "in the graph (ort-context)" in lines[0]
    assert "31.0 µs" in lines[2] and "106.0 µs" in lines[2] and "3.42×" in lines[2] and "| 3 |" in lines[2]
    assert lines[3].rstrip(" |").endswith("—")  # nothing to divide by: no ratio


def test_context_spread_table_lists_each_fresh_table_and_counts_the_target(monkeypatch):
    rows = [{"model": "nasrnn", "sessions": 3, "run": r, "spearman": rho, "spearman_lo": rho - 0.2,
             "spearman_hi": rho + 0.1} for r, rho in ((1, 0.6), (0, 0.8))]
    monkeypatch.setattr(rep, "load_result", lambda path, defaults=None: with_defaults(pd.DataFrame(rows), defaults))
    line = rep.context_spread_table().splitlines()[2]
    assert "0.80 [0.60, 0.90] · 0.60 [0.40, 0.70]" in line  # in run order
    assert "0.60–0.80" in line and line.rstrip(" |").endswith("1 / 2")


def test_optable_search_spread_table_prices_each_run_under_its_own_and_the_other_tables(monkeypatch):
    """Three greedy runs, each under its own table: runs 0 and 2 merge twice and reach the same graph
    (0.95 under table 0, 0.99 and 0.97 under the others), run 1 stops. Kills: taking another
    table's price as the run's own, counting runs instead of distinct final graphs (3 instead of
    2), dropping the rule counts."""
    price = {0: (0.95, 0.99, 0.97), 2: (0.96, 0.98, 0.94)}  # graph run -> ratio under tables 0, 1, 2
    rows = []
    for j in range(3):
        merged = j in price
        for k in range(3):
            rows.append({"model": "m", "table": k, "graph_run": j, "own": k == j,
                         "ratio": price[j][k] if merged else 1.0, "graph_hash": "h0" if merged else "h1",
                         "rules": "merge merge" if merged else "", "n_rewrites": 2 if merged else 0})
    monkeypatch.setattr(rep, "load_result", lambda path, defaults=None: with_defaults(pd.DataFrame(rows), defaults))
    lines = rep.optable_search_spread_table().splitlines()
    assert lines[2] == "| `m` | 0 | 2: 2× merge | 0.9500 | 0.9700–0.9900 | 2 / 3 |"
    assert lines[3] == "| `m` | 1 | 0: none | 1.0000 | 1.0000–1.0000 | 2 / 3 |"
    assert lines[4] == "| `m` | 2 | 2: 2× merge | 0.9400 | 0.9600–0.9800 | 2 / 3 |"


def test_fidelity_retest_table_matches_graphs_by_hash_and_flags_a_ranking_that_does_not_reproduce(monkeypatch):
    """Model ``a``: the 3-session run lists the same graphs in another order with the same ranking
    (reproduces); model ``b``: the 3-session ratios are unrelated to the 1-session ones. Kills:
    pairing rows by position instead of hash (``a`` then looks unrelated), correlating a run with
    itself (``b`` then reproduces), judging on ρ instead of its interval."""
    rng = np.random.default_rng(5)  # b: rho 0.41, its interval includes 0
    n = 12
    rows = []
    truth = {"a": rng.permutation(n) / 100, "b": rng.permutation(n) / 100}
    other = {"a": truth["a"] + 0.001 * rng.standard_normal(n), "b": rng.permutation(n) / 100}
    for model in ("a", "b"):
        for sessions, ratios, order in ((1, truth[model], range(n)), (3, other[model], rng.permutation(n))):
            for cm, pred in (("nominal", 1.5), ("ort", 1.02)):
                rows.append({"model": model, "backend": "ort", "sessions": sessions, "cost_model": cm,
                             "graph": 0, "hash": "h0", "measured_ratio": 1.0, "measured_lo": 1.0,
                             "measured_hi": 1.0, "predicted_ratio": 1.0})
                for pos, g in enumerate(order):
                    rows.append({"model": model, "backend": "ort", "sessions": sessions, "cost_model": cm,
                                 "graph": pos + 1, "hash": f"h{g + 1}", "measured_ratio": 1.0 + ratios[g],
                                 "measured_lo": 0.98 + ratios[g], "measured_hi": 1.02 + ratios[g],
                                 "predicted_ratio": pred})
    rows.append({**rows[-1], "model": "c", "sessions": 1})  # measured once: no row
    monkeypatch.setattr(rep, "load_result", lambda path, defaults=None: with_defaults(pd.DataFrame(rows), defaults))
    monkeypatch.setattr(rep, "MIN_GRAPHS", 10)
    head, _, a, b = rep.fidelity_retest_table().splitlines()
    assert "test-retest ρ" in head
    ca = [c.strip() for c in a.strip(" |").split("|")]
    cb = [c.strip() for c in b.strip(" |").split("|")]
    assert ca[:3] == ["ort", "`a`", str(n)] and ca[-1] == "yes" and ca[-2].startswith("1.00 [")
    assert ca[4] == "4.0 %" and ca[5] == "ort 1.000–1.020"  # interval width; own model's predictions only
    assert cb[1] == "`b`" and cb[-2].startswith("0.41 [-") and cb[-1].startswith("no")
    monkeypatch.setattr(rep, "MIN_GRAPHS", n + 1)
    assert rep.fidelity_retest_table().splitlines()[2].rstrip(" |").endswith(f"not measurable (< {n + 1} graphs)")
