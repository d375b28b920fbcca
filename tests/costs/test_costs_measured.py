"""Measured costs: end-to-end latency cache and the TASO-style per-op table."""
from __future__ import annotations

import json

import pytest

from xflow.costs import measured as measured_mod
from xflow.costs.measured import MeasuredCost
from xflow.costs.optable import MeasuredOpCost, config_key, op_config, op_model
from xflow.graphs.builders import build, make_inception_like, make_sibling_convs
from xflow.graphs.ir import Graph


def test_measured_cost_is_cached_by_hash(tmp_path, monkeypatch):
    monkeypatch.setenv("XFLOW_CACHE", str(tmp_path))
    model = build("split_concat")
    n = []
    monkeypatch.setattr(measured_mod, "measure_ms", lambda g, **kw: n.append(1) or 0.5)
    cm = MeasuredCost()
    assert cm.cost(model) == 0.5 and cm.cost(model) == 0.5 and len(n) == 1
    assert MeasuredCost().cost(model) == 0.5 and len(n) == 1  # from the disk cache
    files = list((tmp_path / "costs" / "latency").glob("*.json"))
    assert len(files) == 1 and "-h2.json" in files[0].name  # the key encodes the hash version
    files[0].write_text("{broken")
    assert MeasuredCost().cost(model) == 0.5 and len(n) == 2  # a corrupt cache is rebuilt


def test_measured_cost_runs_ort(tmp_path, monkeypatch):
    monkeypatch.setenv("XFLOW_CACHE", str(tmp_path))
    ms = MeasuredCost(repeats=3, warmup=1, persist=False).cost(build("split_concat"))
    assert 0 < ms < 1000


def test_op_configs_ignore_weight_values_but_not_shapes_or_small_constants():
    a = Graph.of(make_sibling_convs(seed=0))
    b = Graph.of(make_sibling_convs(seed=1))
    conv_a = next(n for n in a.nodes if n.op_type == "Conv" and a.shape(n.inputs[1].name)[1] * 9 > 64)
    conv_b = b.node(conv_a.name)
    assert config_key(op_config(a, conv_a)) == config_key(op_config(b, conv_b))  # weights enter by shape
    other = next(n for n in a.nodes if n.op_type == "Conv" and a.shape(n.inputs[1].name) != a.shape(conv_a.inputs[1].name))
    assert config_key(op_config(a, other)) != config_key(op_config(a, conv_a))
    m = op_model(a, conv_a)
    assert [n.op_type for n in m.graph.node] == ["Conv"] and len(m.graph.initializer) >= 1


def test_per_op_table_times_each_configuration_once(tmp_path, monkeypatch):
    monkeypatch.setenv("XFLOW_CACHE", str(tmp_path))
    import xflow.costs.optable as optable

    runs = []
    real = optable.measure_models

    def counting(variants, **kw):
        runs.append(len(variants))
        return real(variants, **kw)

    monkeypatch.setattr(optable, "measure_models", counting)
    g = Graph.of(make_inception_like())
    cm = MeasuredOpCost(rounds=3, warmup=1)
    total = cm.cost(g)
    distinct = len({r["key"] for r in cm.breakdown(g) if r["key"]})
    assert total > 0 and runs == [distinct + 1]  # + the empty session
    assert MeasuredOpCost(rounds=3, warmup=1).cost(g) == pytest.approx(total) and runs == [distinct + 1]
    table = json.loads(next((tmp_path / "costs" / "ops").glob("*.json")).read_text())
    assert len(table) == distinct and all(v >= 0 for v in table.values())
