"""Graph featurization: widths, bounds, edges, determinism, model ids."""
from __future__ import annotations

import numpy as np
import pytest

from xflow.envs.features import EDGE_DIM, NODE_DIM, OP_VOCAB, featurize, graph_space
from xflow.envs.models import parse_model_id, register_model, resolve_model
from xflow.errors import ModelFileNotFound, UnknownName
from xflow.graphs.builders import build


def test_featurize_shapes_and_space():
    model = build("conv_bn_relu")
    g = featurize(model)
    n_ops = len(model.graph.node)
    assert g.nodes.shape == (1 + n_ops + 1, NODE_DIM)  # input, ops, output
    assert g.edges.shape[1] == EDGE_DIM and g.edge_links.shape == (g.edges.shape[0], 2)
    assert g in graph_space()
    assert g.nodes[0, OP_VOCAB.index("Input")] == 1 and g.nodes[-1, OP_VOCAB.index("Output")] == 1
    conv_row = 1 + [n.op_type for n in model.graph.node].index("Conv")
    assert g.nodes[conv_row, OP_VOCAB.index("Conv")] == 1


def test_edges_follow_dataflow():
    model = build("split_concat")
    g = featurize(model)
    # every op consumes at least one edge and the output node exactly one
    dst = set(g.edge_links[:, 1].tolist())
    assert set(range(1, g.nodes.shape[0])) <= dst
    assert (g.edge_links[:, 0] < g.edge_links[:, 1]).all()  # topological order


def test_featurize_is_deterministic():
    a, b = featurize(build("inception_like")), featurize(build("inception_like"))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


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


def test_skeleton_shape_inference_matches_full_inference():
    import onnx

    from xflow.envs.features import tensor_shapes

    model = build("inception_like")
    bare = onnx.ModelProto()
    bare.CopyFrom(model)
    del bare.graph.value_info[:]  # force inference
    full = onnx.shape_inference.infer_shapes(model)
    expected = {vi.name: tuple(d.dim_value for d in vi.type.tensor_type.shape.dim)
                for vi in full.graph.value_info}
    got = tensor_shapes(bare)
    assert expected and all(got[k][0] == v for k, v in expected.items())
