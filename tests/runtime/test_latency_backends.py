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


def test_session_pool_runs_the_sessions_in_turn():
    """Each sample (after its untimed ``before``) runs the next session; kills a pool stuck on one."""
    from xflow.runtime.latency import session_pool
    from xflow.runtime.measure import Variant

    calls: list[int] = []
    pool = session_pool([Variant(lambda i=i: calls.append(i)) for i in range(3)])
    for _ in range(6):
        pool.before()
        pool.fn()
        pool.fn()  # inner repetitions of one sample stay on its session
    assert calls == [0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2]
    single = Variant(lambda: None)
    assert session_pool([single]) is single


@pytest.mark.parametrize("backend", ["ort", "torch"])
def test_several_sessions_per_model(two_models, backend):
    m = measure_on_backend(two_models, backend, baseline="a", rounds=3, warmup=1, sessions=2)
    assert m.aa == "a~aa" and m.rounds == 3 and m.compare("b", "a").verdict in ("faster", "same", "slower")
