"""Numeric equivalence: identical models pass, a perturbed weight is caught and named."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import numpy_helper

from xflow.errors import RewriteVerificationError
from xflow.graphs.builders import make_conv_bn_relu, make_sibling_convs
from xflow.runtime import assert_equivalent, compare_outputs, outputs_close, tolerances_for
from xflow.runtime.equivalence import DEFAULT_TOLERANCES


def _perturbed(model, delta: float):
    m = type(model)()
    m.CopyFrom(model)
    t = m.graph.initializer[0]
    a = numpy_helper.to_array(t).copy()
    a.flat[0] += delta
    t.CopyFrom(numpy_helper.from_array(a, t.name))
    return m


def test_identical_models_are_close():
    m = make_conv_bn_relu()
    ok, err = outputs_close(m, m, n_trials=2)
    assert ok and err == 0.0
    assert assert_equivalent(m, m) == 0.0


def test_perturbed_weight_is_caught():
    m = make_conv_bn_relu()
    bad = _perturbed(m, 0.5)
    ok, err = outputs_close(bad, m)
    assert not ok and err > 1e-3
    with pytest.raises(RewriteVerificationError, match=r"output 0 \('y'\)"):
        assert_equivalent(bad, m)


def test_tiny_perturbation_within_float32_tolerance():
    m = make_conv_bn_relu()
    ok, _ = outputs_close(_perturbed(m, 1e-9), m)
    assert ok


def test_names_the_differing_output_among_several():
    m = make_sibling_convs()
    bad = _perturbed(m, 0.5)  # first initializer is conv0's weight → output y0 differs
    diffs = compare_outputs(bad, m, n_trials=1)
    assert [d.ok for d in diffs] == [False, True, True]
    assert diffs[0].name == "y0"


def test_output_count_mismatch_fails():
    ok, err = outputs_close(make_conv_bn_relu(), make_sibling_convs(channels=3))
    assert not ok and err == float("inf")


def test_dtype_aware_tolerances():
    assert tolerances_for(np.float32) == DEFAULT_TOLERANCES["float32"]
    assert tolerances_for(np.float16)[0] > tolerances_for(np.float32)[0] > tolerances_for(np.float64)[0]
    assert tolerances_for(np.int64) == (0.0, 0.0)


def test_options_are_forwarded_and_unknown_ones_rejected():
    m = make_conv_bn_relu()
    bad = _perturbed(m, 1e-3)
    assert outputs_close(bad, m, atol=1.0, rtol=1.0)[0]  # loose tolerances reach compare_outputs
    assert assert_equivalent(bad, m, atol=1.0, n_trials=1) > 0
    with pytest.raises(TypeError, match="ntrials"):
        outputs_close(m, m, ntrials=2)
    with pytest.raises(TypeError, match="tol"):
        assert_equivalent(m, m, tol=1.0)
