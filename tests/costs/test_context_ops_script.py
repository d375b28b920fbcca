"""``benchmarks/context_op_times.py``: one row per op configuration of a fidelity pool, both tables' times."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture()
def script(tmp_path, monkeypatch):
    monkeypatch.setenv("XFLOW_CACHE", str(tmp_path / "cache"))
    monkeypatch.syspath_prepend(str(BENCH))
    spec = importlib.util.spec_from_file_location("context_op_times", BENCH / "context_op_times.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    yield mod
    sys.modules.pop("cost_fidelity", None)


def test_every_configuration_once_with_its_nodes_and_first_rule(script):
    from cost_fidelity import draw_graphs
    from xflow.costs import make_cost_model
    from xflow.graphs.model_ids import resolve_graph

    model = "nasrnn?hidden=8&seq=3"
    rows = script.config_rows(model, 2, 0)
    keys = [r["key"] for r in rows]
    assert len(keys) == len(set(keys))
    pool = draw_graphs(resolve_graph(f"zoo:{model}"), 2, seed=0)
    ctx = make_cost_model("ort-context")
    keyed = [r["key"] for p in pool for r in ctx.breakdown(p["graph"]) if r["key"] is not None]
    assert sum(r["nodes"] for r in rows) == len(keyed)  # every keyed node of the pool counted once
    first = {r["key"] for r in ctx.breakdown(pool[0]["graph"]) if r["key"] is not None}
    assert {r["first_rule"] for r in rows if r["key"] in first} == {"(original)"}
    assert all(r["first_rule"] != "(original)" for r in rows if r["key"] not in first)
    assert any(r["op"] == "MatMul" and "W8×8" in r["inputs"] for r in rows)
    assert [r["context_ms"] for r in rows] == sorted((r["context_ms"] for r in rows), reverse=True)
