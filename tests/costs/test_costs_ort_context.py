"""``ort-context``: ORT's optimized graph costed with op times taken inside a profiled graph.

The profiler is faked where the arithmetic is checked (which graph's times enter the table, the
mean over a configuration's nodes, first-seen, the disk table); one test runs the real profiler.
"""
from __future__ import annotations

import io

import onnx
import pytest

import xflow.costs.ort_context as ort_context
from xflow.costs import COST_MODELS, make_cost_model
from xflow.costs.ort_context import OrtContextCost
from xflow.graphs.ir import Graph


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XFLOW_CACHE", str(tmp_path / "cache"))


def _mlp(last: str = "tanh", seed: int = 0, width: int = 8) -> Graph:
    """Three bias-free Linear layers (three MatMuls of one configuration), ReLU, ReLU, ``last``."""
    import torch
    from torch import nn

    class MLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.l = nn.ModuleList(nn.Linear(width, width, bias=False) for _ in range(3))

        def forward(self, x):
            x = self.l[0](x).relu()
            x = self.l[1](x).relu()
            return getattr(torch, last)(self.l[2](x))

    torch.manual_seed(seed)
    buf = io.BytesIO()
    torch.onnx.export(MLP().eval(), (torch.randn(1, width),), buf, dynamo=False, opset_version=17,
                      input_names=["x"], output_names=["y"])
    return Graph.of(onnx.load_from_string(buf.getvalue()))


class FakeProfiler:
    """``node_times`` stand-in: per op type, the k-th node of that type gets ``times[op][k]`` ms."""

    def __init__(self, times: dict[str, list[float]]) -> None:
        self.times, self.calls = times, 0

    def __call__(self, model: onnx.ModelProto, **_):
        self.calls += 1
        seen: dict[str, int] = {}
        out = {}
        for n in model.graph.node:
            k = seen[n.op_type] = seen.get(n.op_type, -1) + 1
            out[n.name] = self.times[n.op_type][k]
        return out


def _fake(monkeypatch, times) -> FakeProfiler:
    fake = FakeProfiler(times)
    monkeypatch.setattr(ort_context, "node_times", fake)
    return fake


TIMES = {"MatMul": [1.0, 1.0, 7.0], "Relu": [0.5, 0.5], "Tanh": [0.25], "Sigmoid": [2.0]}


def test_cost_is_the_profiled_kernel_sum_with_a_configuration_s_mean(monkeypatch):
    fake = _fake(monkeypatch, TIMES)
    cm = OrtContextCost()
    rows = cm.breakdown(_mlp())
    assert sorted(r["op"] for r in rows) == ["MatMul"] * 3 + ["Relu"] * 2 + ["Tanh"]
    # the three MatMuls share one configuration: each costs the mean 3.0 (the median would say 1.0)
    assert [r["ms"] for r in rows if r["op"] == "MatMul"] == [3.0, 3.0, 3.0]
    assert cm.cost(_mlp()) == pytest.approx(9.0 + 1.0 + 0.25)
    assert fake.calls == 1


def test_a_configuration_keeps_the_time_of_the_first_graph_that_had_it(monkeypatch):
    fake = _fake(monkeypatch, TIMES)
    cm = OrtContextCost(persist=False)  # in memory: no disk merge to mask an overwrite
    cm.cost(_mlp())
    fake.times = {**TIMES, "MatMul": [100.0] * 3, "Relu": [100.0] * 2}  # another graph's context
    # new weights, same shapes: every configuration known -> no profile, the same cost
    assert cm.cost(_mlp(seed=1)) == pytest.approx(10.25)
    assert fake.calls == 1
    # one new configuration (Sigmoid): profiled, and only it enters the table
    assert cm.cost(_mlp("sigmoid")) == pytest.approx(9.0 + 1.0 + 2.0)
    assert fake.calls == 2 and cm.profiled == 2


def test_prepare_profiles_in_order_only_graphs_with_new_configurations(monkeypatch):
    fake = _fake(monkeypatch, TIMES)
    cm = OrtContextCost()
    assert cm.prepare([_mlp(), _mlp(seed=1), _mlp("sigmoid")]) == 2
    assert fake.calls == 2


def test_table_persists_and_a_corrupt_table_is_rebuilt(monkeypatch):
    fake = _fake(monkeypatch, TIMES)
    OrtContextCost().cost(_mlp())
    again = OrtContextCost()
    assert again.cost(_mlp(seed=1)) == pytest.approx(10.25)  # another graph: its table came from disk
    assert fake.calls == 1
    path = again._table_path()
    path.write_text("{not json")
    assert OrtContextCost().cost(_mlp(seed=2)) == pytest.approx(10.25)  # unreadable: profiled again
    assert fake.calls == 2


def test_persist_false_writes_nothing(monkeypatch, tmp_path):
    _fake(monkeypatch, TIMES)
    cm = OrtContextCost(persist=False)
    cm.cost(_mlp())
    assert not cm._table_path().exists() and not cm._disk_path().exists()


def test_registered_by_name():
    assert "ort-context" in COST_MODELS
    assert isinstance(make_cost_model("ort-context"), OrtContextCost)


def test_real_profiler_prices_every_node_and_sums_them():
    g = _mlp(width=512)  # 1 MiB weights: a MatMul takes tens of µs, above the profiler's 1 µs grain
    cm = OrtContextCost(warmup=2, runs=5, persist=False)
    rows = cm.breakdown(g)
    assert {r["op"] for r in rows} == {"MatMul", "Relu", "Tanh"}
    assert all(r["ms"] > 0 for r in rows if r["op"] == "MatMul")
    assert cm.cost(g) == pytest.approx(sum(r["ms"] for r in rows))
