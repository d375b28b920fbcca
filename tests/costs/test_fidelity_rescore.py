"""``benchmarks/cost_fidelity.py --rescore``: new predictions for saved measurements, nothing re-measured."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
MODEL = "nasrnn?hidden=8&seq=3"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture()
def fid(tmp_path, monkeypatch):
    monkeypatch.setenv("XFLOW_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("XFLOW_CACHE", str(tmp_path / "cache"))
    return _load("cost_fidelity")


def _saved(fid, n: int = 3) -> list[dict]:
    """Rows of a measured run of ``n`` graphs of :data:`MODEL` (cost model ``ort``: a label here)."""
    from xflow.graphs.model_ids import resolve_graph
    from xflow.tables import save_result

    pool = fid.draw_graphs(resolve_graph(f"zoo:{MODEL}"), n, seed=0)
    measured = [1.0, 1.2, 0.9, 1.1][: len(pool)]
    rows = [{"model": MODEL, "backend": "ort", "sessions": 1, "cost_model": "ort", "graph": i,
             "hash": p["hash"][:16], "length": p["length"], "rules": p["rules"], "predicted_ratio": 1.0,
             "measured_ratio": m, "measured_lo": m - 0.01, "measured_hi": m + 0.01, "verdict": "same",
             "measured_ms": 1.0, "chunk": 0, "clock": "thread", "spearman": 0.0, "spearman_lo": 0.0,
             "spearman_hi": 0.0, "n_graphs": len(pool), "rounds": 9, "warmup": 1, "seed": 0, "threads": 1,
             "level": "all", "busy": False, "foreign_cpu": 0.0}
            for i, (p, m) in enumerate(zip(pool, measured))]
    save_result(rows, fid.RESULT, threads=1, replace_on=("model", "backend", "sessions"))
    return rows


def test_rescore_adds_a_cost_model_and_keeps_the_measured_rows(fid):
    saved = _saved(fid)
    assert fid.main(["--rescore", "--models", MODEL, "--cost-models", "nominal"]) == 0
    from xflow.tables import load_result

    df = load_result(fid.RESULT)
    df = df[df["model"] == MODEL]  # (a merge into $XFLOW_RESULTS starts from the committed file's rows)
    assert set(df["cost_model"]) == {"ort", "nominal"}
    new = df[df["cost_model"] == "nominal"].sort_values("graph")
    assert list(new["measured_ratio"]) == [r["measured_ratio"] for r in saved]
    assert list(new["rounds"]) == [9] * len(saved) and new["measured_git_sha"].notna().all()
    # the predictions are the cost model's own, and rho is computed against the saved measurements
    from xflow.costs import make_cost_model
    from xflow.graphs.model_ids import resolve_graph

    pool = fid.draw_graphs(resolve_graph(f"zoo:{MODEL}"), len(saved) - 1, seed=0)
    cm = make_cost_model("nominal")
    want = [cm.cost(p["graph"]) / cm.cost(pool[0]["graph"]) for p in pool]
    assert np.allclose(new["predicted_ratio"], want)
    rho = fid.spearman_ci(np.array(want), np.array([r["measured_ratio"] for r in saved]), seed=0)[0]
    assert new["spearman"].iloc[0] == pytest.approx(rho)
    old = df[df["cost_model"] == "ort"]
    assert list(old["predicted_ratio"]) == [1.0] * len(saved)  # the other model's rows are untouched


def test_rescore_refuses_graphs_that_no_longer_match(fid):
    from xflow.tables import load_result, save_result

    _saved(fid)
    df = load_result(fid.RESULT)
    df.loc[df["graph"] == 1, "hash"] = "0" * 16
    save_result(df, fid.RESULT, threads=1)
    with pytest.raises(SystemExit, match="differ from the saved ones"):
        fid.main(["--rescore", "--models", MODEL, "--cost-models", "nominal"])


def test_rescore_without_saved_rows_says_what_to_run(fid):
    _saved(fid)  # 1 session only
    with pytest.raises(SystemExit, match="no rows of"):
        fid.main(["--rescore", "--models", MODEL, "--cost-models", "nominal", "--sessions", "3"])


def test_the_ort_backend_compares_both_ort_models(fid):
    assert {"ort", "ort-context"} <= set(fid.COST_MODELS["ort"])
