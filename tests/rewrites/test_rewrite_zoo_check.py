"""``benchmarks/rewrite_searches.py --zoo-check --searches tensat``: re-runs TENSAT only, keeps TASO's rows."""
from __future__ import annotations

import pandas as pd


def test_zoo_check_one_search_keeps_the_other_rows(tmp_path, monkeypatch):
    from xflow.rewrites.searches.compare import zoo_check
    from xflow.tables import save_result

    monkeypatch.setenv("XFLOW_RESULTS", str(tmp_path))
    old = [{"model": "tiny", "method": "taso", "predicted_speedup": 1.0, "detail": "kept", "git_sha": "old"},
           {"model": "tiny", "method": "tensat", "predicted_speedup": 1.0, "detail": "stale", "git_sha": "old"}]
    save_result(old, "rewrites/zoo.csv")
    recs = zoo_check(["tiny"], methods=("tensat",), time_budget_s=30, out="rewrites/zoo.csv")
    assert [r["method"] for r in recs] == ["tensat"]
    df = pd.read_csv(tmp_path / "rewrites" / "zoo.csv")
    assert sorted(df["method"]) == ["taso", "tensat"]
    taso = df[df.method == "taso"].iloc[0]
    assert taso["detail"] == "kept" and taso["git_sha"] == "old" and taso["rules"] == "all"
    tensat = df[df.method == "tensat"].iloc[0]
    assert tensat["detail"] != "stale" and tensat["git_sha"] != "old" and tensat["rules"] == "generated"
    assert bool(tensat["verified"]) and tensat["tensat_iterations"] >= 1 and tensat["tensat_enodes"] > 0
    assert tensat["search_time_s"] <= 30


def test_zoo_check_keeps_rows_of_models_not_run(tmp_path, monkeypatch):
    from xflow.rewrites.searches.compare import _kept_rows
    from xflow.tables import save_result

    monkeypatch.setenv("XFLOW_RESULTS", str(tmp_path))
    save_result([{"model": a, "method": b} for a in ("tiny", "alexnet") for b in ("taso", "tensat")], "rewrites/z.csv")
    kept = _kept_rows("rewrites/z.csv", ["tiny"], ("tensat",))
    assert sorted((r["model"], r["method"]) for r in kept) == [("alexnet", "taso"), ("alexnet", "tensat"),
                                                              ("tiny", "taso")]
    assert {r["rules"] for r in kept} == {"all", "generated"}
