"""to_pyg: one PyG node per operator, one-hot op types, conv attributes, edge shape features."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from xflow.graphs import load_model, to_pyg
from xflow.graphs.builders import make_inception_like, make_qkv_matmuls, make_sibling_convs
from xflow.graphs.pyg import (
    EDGE_FEATURES,
    NODE_ATTR_FEATURES,
    NUM_EDGE_FEATURES,
    NUM_NODE_FEATURES,
    OP_VOCAB,
    op_one_hot_index,
)

N_VOCAB = len(OP_VOCAB) + 1


@pytest.fixture(scope="module")
def inception():
    g = load_model(make_inception_like())
    return g, to_pyg(g)


def _attr(data, node_name: str, feature: str) -> float:
    i = data.node_names.index(node_name)
    return float(data.x[i, N_VOCAB + NODE_ATTR_FEATURES.index(feature)])


def test_shapes_and_name_mapping(inception):
    g, data = inception
    assert data.num_nodes == len(g.nodes) == 14
    assert data.x.shape == (14, NUM_NODE_FEATURES) and data.x.dtype == torch.float32
    assert data.node_names == [n.name for n in g.nodes]
    assert data.op_types == [n.op_type for n in g.nodes]
    # every edge joins the producer and a consumer of its tensor
    assert data.edge_index.shape[0] == 2 and data.edge_attr.shape[1] == NUM_EDGE_FEATURES
    for (s, d), t in zip(data.edge_index.t().tolist(), data.edge_tensors):
        assert g.producer(t).name == data.node_names[s]
        assert data.node_names[d] in {c.name for c in g.consumers(t)}
    # inception: 13 internal tensors, each consumed once (x and the weights are not edges)
    assert data.edge_index.shape[1] == 13


def test_one_hot(inception):
    _, data = inception
    onehot = data.x[:, :N_VOCAB]
    assert torch.all(onehot.sum(dim=1) == 1)
    conv = data.node_names.index("b2_3x3")
    assert onehot[conv, OP_VOCAB.index("Conv")] == 1
    assert op_one_hot_index("SomeExoticOp") == len(OP_VOCAB)  # "other"


def test_conv_attributes(inception):
    _, data = inception
    assert _attr(data, "b3_5x5", "kernel_h") == 5 and _attr(data, "b3_5x5", "kernel_w") == 5
    assert _attr(data, "b3_5x5", "pad_h") == 4 and _attr(data, "b3_5x5", "stride_w") == 1
    assert _attr(data, "b4_pool", "kernel_h") == 3
    assert _attr(data, "b2_3x3", "log_out_channels") == pytest.approx(math.log1p(4))
    # FLOPs of a 3x3 conv 4->4 channels on 16x16: 2 * (4*16*16) * (4*3*3)
    assert _attr(data, "b2_3x3", "log_flops") == pytest.approx(math.log1p(2 * 4 * 256 * 36), rel=1e-5)
    assert _attr(data, "concat", "kernel_h") == 0


def test_edge_features(inception):
    g, data = inception
    j = data.edge_tensors.index("b2_1x1_out")
    feats = dict(zip(EDGE_FEATURES, data.edge_attr[j].tolist()))
    assert feats["rank"] == 4 and feats["dtype"] == 1  # FLOAT
    assert feats["log_numel"] == pytest.approx(math.log1p(4 * 16 * 16), rel=1e-5)
    assert feats["dim1"] == pytest.approx(math.log1p(4) / 10, rel=1e-5)


def test_matmul_and_sibling_graphs():
    data = to_pyg(load_model(make_qkv_matmuls()))
    i = data.node_names.index("q_proj")
    assert data.x[i, OP_VOCAB.index("MatMul")] == 1
    assert _attr(data, "q_proj", "log_flops") == pytest.approx(math.log1p(2 * 8 * 16 * 16), rel=1e-5)
    sib = to_pyg(load_model(make_sibling_convs()))
    # the three convs read the graph input only: no edges into them
    conv_ids = [k for k, t in enumerate(sib.op_types) if t == "Conv"]
    assert len(conv_ids) == 3
    assert not np.isin(sib.edge_index[1].numpy(), conv_ids).any()
    assert sib.edge_index.shape[1] == 3  # conv_i -> relu_i
