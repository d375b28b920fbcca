import numpy as np

from xflow.graphs.builders import make_qkv_matmuls
from xflow.rewrites import get_rule

from .toy import assert_negative, assert_positive, count_ops, model, node, w

MERGE = get_rule("merge_sibling_matmuls")
SPLIT = get_rule("split_matmul")


def test_merge_qkv_with_bias():
    (new,) = assert_positive(MERGE, make_qkv_matmuls(), 1)
    assert count_ops(new, "MatMul") == 3  # one merged projection + the two attention products
    assert count_ops(new, "Split") == 1


def test_merge_gemm_with_transb_alpha_beta():
    m = model([node("Gemm", ["x", "w1", "c1"], ["a"], transB=1, alpha=0.5, beta=2.0),
               node("MatMul", ["x", "w2"], ["b"])],
              {"x": (3, 4)}, ["a", "b"], {"w1": w(5, 4), "c1": w(5), "w2": w(4, 6)})
    (new,) = assert_positive(MERGE, m, 1)
    assert count_ops(new, "Gemm") == 0


def test_merge_rejects_dynamic_right_operand():
    m = model([node("MatMul", ["x", "y"], ["a"]), node("MatMul", ["x", "w1"], ["b"])],
              {"x": (2, 4), "y": (4, 4)}, ["a", "b"], {"w1": w(4, 4)})
    assert_negative(MERGE, m, "not constant")


def test_split_matmul_round_trip():
    (merged,) = assert_positive(MERGE, make_qkv_matmuls(), 1)
    # the merged MatMul feeds an Add (bias), so split_matmul does not apply there
    assert SPLIT.match(merged) == []
    m = model([node("MatMul", ["x", "w1"], ["a"]), node("MatMul", ["x", "w2"], ["b"])],
              {"x": (2, 4)}, ["a", "b"], {"w1": w(4, 3), "w2": w(4, 5)})
    (merged,) = assert_positive(MERGE, m, 1)
    (back,) = assert_positive(SPLIT, merged, 1)
    assert count_ops(back, "Split") == 0 and count_ops(back, "MatMul") == 2


def test_split_matmul_rejects_shared_output():
    m = model([node("MatMul", ["x", "w1"], ["h"]),
               node("Split", ["h", "s"], ["a", "b"], axis=-1), node("Relu", ["h"], ["r"])],
              {"x": (2, 4)}, ["a", "b", "r"], {"w1": w(4, 6), "s": np.array([3, 3], np.int64)})
    assert_negative(SPLIT, m, "other consumers")


def _row_bias_model(x_shape):
    """``x@W1 + b1`` with a ``(1, 4)`` bias next to a bias-free ``x@W2``."""
    return model([node("MatMul", ["x", "w1"], ["h1"]), node("Add", ["h1", "b1"], ["a"]),
                  node("MatMul", ["x", "w2"], ["b"])],
                 {"x": x_shape}, ["a", "b"], {"w1": w(3, 4), "b1": w(1, 4), "w2": w(3, 5)})


def _ort_outputs(m, feed):
    import onnxruntime as ort

    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feed)


def test_merge_rejects_row_bias_on_1d_input():
    # Add(x@W1, b1) with x (3,) and b1 (1, 4) has shape (1, 4); merging with an (N,) bias gave (4,)
    m = _row_bias_model((3,))
    assert [o.shape for o in _ort_outputs(m, {"x": np.ones(3, np.float32)})] == [(1, 4), (5,)]
    assert_negative(MERGE, m, "1-D input would change the output shape")


def test_merge_row_bias_on_2d_input_matches_ort():
    m = _row_bias_model((2, 3))
    (new,) = assert_positive(MERGE, m, 1)
    assert count_ops(new, "Split") == 1 and count_ops(new, "MatMul") == 1
    feed = {"x": np.random.default_rng(1).standard_normal((2, 3)).astype(np.float32)}
    ref, got = _ort_outputs(m, feed), _ort_outputs(new, feed)
    for r, g in zip(ref, got):
        assert r.shape == g.shape
        assert r.var() > 1e-3  # the outputs do not vanish
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-6)
