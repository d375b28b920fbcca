"""Shape errors surface at record time and name the op, the shapes and the creation site."""
from __future__ import annotations

import pytest
import torch

from xflow import autobatch as ab
from xflow.errors import ShapeMismatch


def test_affine_mismatch_names_op_shapes_and_line():
    W = torch.randn(4, 3)
    with ab.Graph() as g:
        x = ab.inp(torch.randn(5))
        with pytest.raises(ShapeMismatch) as info:
            ab.affine(None, W, x)  # the line the message must point at
        assert len(g) == 1  # nothing recorded, nothing executed
    msg = str(info.value)
    assert "affine" in msg and "(4, 3)" in msg and "(5,)" in msg
    assert "test_autobatch_errors.py" in msg and "test_affine_mismatch_names_op_shapes_and_line" in msg


@pytest.mark.parametrize("build, needle", [
    (lambda x, y: x + y, "add"),
    (lambda x, y: ab.mul(x, y), "mul"),
    (lambda x, y: ab.esum([x, y]), "esum"),
    (lambda x, y: x[2:7], "slice"),
    (lambda x, y: ab.slice_(x, 2, 7), "slice"),
    (lambda x, y: ab.pick(x, 9), "pick"),
    (lambda x, y: ab.cross_entropy(x, 3), "cross_entropy"),
    (lambda x, y: ab.lookup(torch.randn(5, 2), 5), "lookup"),
    (lambda x, y: x.graph.record("lstm_gates", (x, y)), "lstm_gates"),
    (lambda x, y: ab.concat([x, ab.inp(torch.ones(2, 2))]), "concat"),
])
def test_each_op_checks_shapes_when_recorded(build, needle):
    with ab.Graph():
        x, y = ab.inp(torch.randn(3)), ab.inp(torch.randn(4))
        with pytest.raises(ShapeMismatch, match=needle) as info:
            build(x, y)
    assert "created at" in str(info.value)


def test_errors_inside_cell_helpers_point_at_the_caller():
    H = 2
    w = ab.LSTMWeights(torch.randn(4 * H, 3), torch.randn(4 * H, H), torch.randn(4 * H), torch.randn(4 * H))
    with ab.Graph():
        with pytest.raises(ShapeMismatch) as info:
            ab.lstm_sequence(w, [ab.inp(torch.randn(5))])
    assert "test_errors_inside_cell_helpers_point_at_the_caller" in str(info.value)


def test_operand_from_another_graph_is_rejected():
    with ab.Graph():
        x = ab.inp(torch.randn(3))
    with ab.Graph():
        y = ab.inp(torch.randn(3))
        with pytest.raises(ab.GraphClosed):
            ab.add(y, x)


def test_leaf_makers_need_an_active_graph():
    with pytest.raises(ab.GraphClosed):
        ab.inp(torch.randn(3))


def test_unknown_op_is_a_typed_error():
    from xflow.errors import UnknownName

    with ab.Graph():
        x = ab.inp(torch.randn(3))
        with pytest.raises(UnknownName, match="frobnicate"):
            x.graph.record("frobnicate", (x,))
