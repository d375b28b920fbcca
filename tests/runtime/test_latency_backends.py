"""``measure_on_backend``: one interleaved run of several models on ORT or the torch backend,
with the baseline's second session as the A/A control."""
from __future__ import annotations

import pytest

from xflow.runtime.latency import measure_on_backend


@pytest.fixture(scope="module")
def two_models():
    from xflow.graphs.model_ids import resolve_graph
    from xflow.rewrites.candidates import candidates

    g = resolve_graph("builder:inception_like")
    c = candidates(g, max_candidates=1)[0]
    from xflow.rewrites import get_rule

    return {"a": g.model, "b": get_rule(c.rule).apply(g, c.location).model}


@pytest.mark.parametrize("backend", ["ort", "torch"])
def test_every_model_is_timed_against_the_baseline_with_an_aa_control(two_models, backend):
    m = measure_on_backend(two_models, backend, baseline="a", rounds=3, warmup=1)
    assert set(m.names) >= {"a", "b"} and m.rounds == 3
    c = m.compare("b", "a")
    assert c.ci[0] <= c.ratio <= c.ci[1] and c.verdict in ("faster", "same", "slower")
    assert m.aa == "a~aa" and "a~aa" in m.names  # the A/A control ran (a second session of the baseline)


def test_unknown_baseline_is_an_error(two_models):
    with pytest.raises(KeyError, match="baseline 'z'"):
        measure_on_backend(two_models, "torch", baseline="z")
