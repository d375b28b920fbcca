"""``ort`` (ORT's optimized graph + per-op table) and ``torch`` (generated kernels) cost models.

On real exported torch models: a rewrite that breaks ORT's Conv+Relu fusion must cost more under
``ort`` while the plain roofline calls it a gain; rewrites ORT already does cost the same.
"""
from __future__ import annotations

import io
import json

import numpy as np
import onnx
import pytest

from xflow.costs import make_cost_model
from xflow.costs.optable import MeasuredOpCost
from xflow.costs.ort_optimized import OrtOptimizedCost, optimized_model, optimized_op_counts
from xflow.costs.roofline import Roofline
from xflow.graphs.ir import Graph
from xflow.rewrites import get_rule


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XFLOW_CACHE", str(tmp_path / "cache"))


def _export(module, *shape) -> Graph:
    import torch

    torch.manual_seed(0)
    module.eval()
    buf = io.BytesIO()
    torch.onnx.export(module, (torch.randn(*shape),), buf, dynamo=False, opset_version=17,
                      input_names=["x"], output_names=["y"], do_constant_folding=True)
    return Graph.of(onnx.load_from_string(buf.getvalue()))


def _fire():
    """SqueezeNet's fire module: squeeze 1x1, then sibling 1x1 / 3x3 expands, each + ReLU, Concat."""
    from torch import nn

    class Fire(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.squeeze = nn.Conv2d(8, 8, 1)
            self.e1 = nn.Conv2d(8, 32, 1)
            self.e3 = nn.Conv2d(8, 32, 3, padding=1)
            self.head = nn.Conv2d(64, 8, 1)

        def forward(self, x):
            import torch

            s = self.squeeze(x).relu()
            return self.head(torch.cat([self.e1(s).relu(), self.e3(s).relu()], 1))

    return Fire()


def _ops(rows, op):
    return [r for r in rows if r["op"] == op and not r["domain"]]


def test_unary_after_concat_breaks_ort_fusion_and_costs_more():
    g = _export(_fire(), 1, 8, 48, 48)
    rule = get_rule("unary_after_concat")
    (loc,) = rule.match(g)
    new = Graph.of(rule.apply(g, loc))
    # ORT fuses every Relu into its Conv before; after, one standalone Relu remains
    before, after = optimized_op_counts(g), optimized_op_counts(new)
    assert before.get("Relu", 0) == 0 and after.get("Relu", 0) == 1, (before, after)
    ort_cost = OrtOptimizedCost(rounds=8)
    n = ort_cost.prepare([g, new])  # one run over every op configuration of both optimized graphs
    keys_g = {r["key"] for r in ort_cost.breakdown(g) if r["key"] is not None}
    keys_new = {r["key"] for r in ort_cost.breakdown(new) if r["key"] is not None}
    # each distinct configuration timed once (ORT's layout pass can repeat one, e.g. two identical
    # NCHWc reorders on AVX-512 machines); the rewrite adds exactly 2 convs without their Relu + the Relu
    assert n == len(keys_g | keys_new)
    assert len(keys_new - keys_g) == 3
    roof = Roofline("cpu")
    assert roof.cost(new) < roof.cost(g)  # the plain roofline calls it a gain: one Relu fewer
    assert ort_cost.cost(new) >= ort_cost.cost(g)  # the ORT-aware model does not
    relu = _ops(ort_cost.breakdown(new), "Relu")
    assert len(relu) == 1 and relu[0]["ms"] > 0


def _transposes() -> Graph:
    """Conv → Relu → Transpose → Transpose (torch's exporter fuses the pair itself: built by hand)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((16, 4, 3, 3)).astype(np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Transpose", ["r"], ["t1"], name="t1", perm=[0, 2, 1, 3]),
             helper.make_node("Transpose", ["t1"], ["y"], name="t2", perm=[0, 1, 3, 2])]
    g = helper.make_graph(nodes, "tt", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 16, 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return Graph.of(onnx.shape_inference.infer_shapes(m))


def test_rewrites_ort_already_does_cost_nothing():
    from torch import nn

    class ConvScale(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.scale = nn.Conv2d(4, 16, 3, padding=1), nn.Parameter(torch_rand(1, 16, 1, 1))

        def forward(self, x):
            return (self.conv(x) * self.scale).relu()

    cm = OrtOptimizedCost(rounds=5)
    for g, name in ((_export(ConvScale(), 1, 4, 16, 16), "fold_into_conv"), (_transposes(), "fuse_transposes")):
        rule = get_rule(name)
        (loc,) = rule.match(g)
        new = Graph.of(rule.apply(g, loc))
        assert new.content_hash != g.content_hash and len(new.nodes) < len(g.nodes)
        assert optimized_op_counts(new) == optimized_op_counts(g), name
        assert cm.cost(new) == pytest.approx(cm.cost(g), rel=1e-9), name  # same optimized graph, same ops
        assert Roofline("cpu").cost(new) < Roofline("cpu").cost(g), name  # the input-graph roofline: a gain


def torch_rand(*shape):
    import torch

    return torch.rand(*shape) + 0.5


def test_optimized_model_has_shapes_and_runs():
    g = _export(_fire(), 1, 8, 16, 16)
    opt = optimized_model(g)
    og = Graph.of(opt)
    inner = [t for n in og.nodes for t in n.outputs if t.name not in og.outputs]
    assert inner and all(og.shape(t.name) is not None for t in inner)
    assert len({n.name for n in og.nodes}) == len(og.nodes)
    import onnxruntime as ort

    x = np.random.default_rng(0).standard_normal((1, 8, 16, 16)).astype(np.float32)
    ref = ort.InferenceSession(g.model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    got = ort.InferenceSession(opt.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    assert ref[0].var() > 1e-4
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-4, atol=1e-5)


def test_ort_cost_is_cached_by_hash_on_disk_and_survives_corruption(monkeypatch, caplog):
    g = _export(_fire(), 1, 8, 16, 16)
    a = OrtOptimizedCost(rounds=3, warmup=1)
    ms = a.cost(g)
    assert ms > 0
    path = a._disk_path()
    assert json.loads(path.read_text()) == {g.content_hash: ms}
    # a fresh instance reads the disk cache: ORT is not asked again
    import xflow.costs.ort_optimized as mod

    monkeypatch.setattr(mod, "optimized_model", lambda *a, **k: (_ for _ in ()).throw(AssertionError("re-optimized")))
    assert OrtOptimizedCost().cost(g) == ms
    monkeypatch.undo()
    monkeypatch.setenv("XFLOW_CACHE", str(path.parents[2]))
    path.write_text("{not json")
    assert OrtOptimizedCost(rounds=3, warmup=1).cost(g) > 0
    assert any("unreadable" in r.getMessage() for r in caplog.records)
    assert g.content_hash in json.loads(path.read_text())


def test_registry_names_and_reward_take_them():
    from xflow.envs.rewards import CostDelta
    from xflow.costs.torch_kernels import TorchKernelCost

    assert isinstance(make_cost_model("ort"), OrtOptimizedCost)
    assert isinstance(make_cost_model("torch"), TorchKernelCost)
    assert CostDelta("ort").cost_model.name == "ort"


def test_torch_cost_counts_fused_kernels():
    from xflow.costs.torch_kernels import TorchKernelCost

    g = _export(_fire(), 1, 8, 24, 24)
    rule = get_rule("unary_after_concat")
    (loc,) = rule.match(g)
    new = Graph.of(rule.apply(g, loc))
    tk = TorchKernelCost("cpu")
    rows_g, rows_new = tk.breakdown(g), tk.breakdown(new)
    assert len(rows_new) == len(rows_g) + 1  # the Relu after the Concat is a kernel of its own
    assert tk.cost(new) > tk.cost(g)
    assert Roofline("cpu").cost(new) < Roofline("cpu").cost(g)
