"""The ONNX Runtime cluster backend: a plan whose clusters share cloned nodes still runs and matches ORT."""
from __future__ import annotations

import numpy as np

from xflow.parallel.api import compile_model
from xflow.parallel.models import benchmark_model
from xflow.parallel.ort_clusters import OrtClusterRunner
from xflow.runtime.session import make_session


def test_cloned_outputs_run_and_match_ort():
    """NASNet-like's hybrid plan clones nodes into two clusters (both compute the same tensor): the
    runner must accept the second result instead of failing, and the outputs must equal ORT's."""
    path = benchmark_model("nasnet_like", quick=True)
    res = compile_model(path, workers=2, mode="hybrid", backend="threads", cost="analytic")
    assert res.summary()["cloned_nodes"] > 0, "the plan must clone for this test to mean anything"
    g = res.graph
    rng = np.random.default_rng(0)
    feeds = {i: rng.standard_normal(g.shapes[i]).astype(np.float32) for i in g.inputs}
    runner = OrtClusterRunner(g, res.plan)
    try:
        outs = runner(feeds)
        outs2 = runner(feeds)  # a second call: futures are per call
    finally:
        runner.close()
    ref = make_session(path).run(None, feeds)
    for a, b, c in zip(outs, outs2, ref):
        assert np.std(c) > 1e-3
        np.testing.assert_allclose(a, c, rtol=1e-4, atol=1e-4)
        np.testing.assert_array_equal(a, b)
