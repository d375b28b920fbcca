"""Model ids name a starting graph: builder:, zoo:, file:, mem: (and *.onnx)."""
from __future__ import annotations

import pytest

from xflow.errors import ModelFileNotFound, UnknownName
from xflow.graphs.builders import build
from xflow.graphs.ir import Graph
from xflow.graphs.model_ids import parse_model_id, register_model, resolve_graph, resolve_model


def test_parse_model_id():
    assert parse_model_id("builder:sibling_convs?size=8&kernels=(3, 1)") == (
        "builder", "sibling_convs", {"size": 8, "kernels": (3, 1)})
    assert parse_model_id("x/y.onnx")[0] == "file"
    with pytest.raises(UnknownName):
        parse_model_id("inception")


def test_resolve_model_schemes(tmp_path):
    m = resolve_model("builder:split_concat?channels=4")
    assert m.graph.input[0].type.tensor_type.shape.dim[1].dim_value == 4
    mid = register_model("toy", build("split_concat"))
    assert len(resolve_model(mid).graph.node) == len(build("split_concat").graph.node)
    with pytest.raises(ModelFileNotFound):
        resolve_model("file:" + str(tmp_path / "missing.onnx"))
    with pytest.raises(UnknownName):
        resolve_model("ftp:x")
    with pytest.raises(UnknownName):
        resolve_model("mem:nobody")


def test_resolve_graph_is_the_folded_ir():
    g = resolve_graph("builder:folding_example")
    assert isinstance(g, Graph) and [n.op_type for n in g.nodes] == ["Conv", "Add", "Relu"]
    assert g.fold_stats.const_nodes_folded > 0
