"""Graph featurization: widths, bounds, edges, determinism, model ids."""
from __future__ import annotations

import numpy as np
import pytest

from xflow.envs.features import EDGE_DIM, NODE_DIM, OP_VOCAB, featurize, graph_space
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


def test_features_read_the_ir_not_the_proto():
    """A candidate (tensor-sharing graph, shapes from local inference) featurizes exactly like its
    serialized model re-loaded from scratch (shapes from whole-graph inference)."""
    from xflow.graphs.ir import Graph
    from xflow.rewrites import candidates

    cands = candidates(build("inception_like"), verify=False)
    assert cands
    for c in cands:
        a, b = featurize(c.graph), featurize(Graph.from_proto(c.model))
        assert all(np.array_equal(x, y) for x, y in zip(a, b)), c
    assert featurize(cands[0].model).nodes.shape == featurize(cands[0].graph).nodes.shape


def test_features_see_every_shape():
    g = featurize(build("inception_like"))
    # every edge carries a static rank (column 0) and element count (column 5)
    assert (g.edges[:, 0] > 0).all() and (g.edges[:, 5] > 0).all()
