"""The incremental environment equals a from-scratch recomputation after every step.

Random rollouts on real zoo models (the graphs the incremental bookkeeping must not get wrong:
many overlapping sites, sibling and parallel convs, non-local dependency checks). After each
step: the candidate set (rule, location, edit signature, verdict, in order) equals
``CandidateSet.build`` on the same graph; the current graph's features equal ``featurize``; each
candidate's diff-built features equal ``featurize`` of the built candidate (up to node order);
each diff removes exactly what the built candidate's ``changes`` say.
"""
from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest

from xflow.envs.candidate_set import CandidateSet
from xflow.envs.features import featurize
from xflow.envs.rewrite import RewriteEnv


def _canon(inst):
    rows = [tuple(np.round(r, 5)) for r in inst.nodes]
    edges = Counter((rows[a], rows[b], tuple(np.round(f, 5))) for (a, b), f in zip(inst.edge_links, inst.edges))
    return Counter(rows), edges


def _rollout_check(model: str, steps: int, seed: int, check_candidates: int = 6) -> int:
    env = RewriteEnv(model, max_candidates=500, horizon=steps + 1, cost_model="nominal")
    obs, info = env.reset()
    rng = random.Random(seed)
    checked = 0
    for _ in range(steps):
        ref = CandidateSet(env.rules, hops=env.hops, verify=env.verify).build(env.model)
        assert env._cset.signature() == ref.signature()
        assert [(c.rule, c.location) for c in env.candidates] == \
               [(c.rule, c.location) for c in ref.candidates(env.max_candidates)]
        full = featurize(env.model, env._per_node_costs(env.model))
        for k in ("nodes", "edges", "edge_links"):
            np.testing.assert_array_equal(getattr(obs["graph"], k), getattr(full, k))
        for i in rng.sample(range(len(env.candidates)), min(check_candidates, len(env.candidates))):
            c = env.candidates[i]
            built = c.graph
            assert set(built.changes.removed) == set(c.diff.removed)
            costs = env._per_node_costs(built)
            assert _canon(obs["candidates"][i]) == _canon(featurize(built, costs))
            assert obs["candidates"].costs[i] == pytest.approx(sum(costs.values()), rel=1e-6)
            c.release()
            checked += 1
        if not env.candidates:
            break
        obs, _, term, trunc, info = env.step(rng.randrange(len(env.candidates)))
        if term or trunc:
            break
    return checked


@pytest.mark.parametrize("model,steps,seed", [("zoo:squeezenet1_1", 8, 0), ("zoo:nasrnn", 8, 1),
                                              ("builder:inception_like", 6, 2)])
def test_incremental_equals_from_scratch(model, steps, seed):
    assert _rollout_check(model, steps, seed) > 0


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_incremental_equals_from_scratch_inception_v3(seed):
    assert _rollout_check("zoo:inception_v3", 12, seed, check_candidates=3) > 0


def test_a_stale_site_is_caught(monkeypatch):
    """The mutant: never re-check a known site. The comparison with from-scratch must fail."""
    env = RewriteEnv("zoo:inception_v3", max_candidates=500, horizon=10, cost_model="nominal")
    import xflow.envs.candidate_set as cs_mod

    monkeypatch.setattr(cs_mod, "fingerprint", lambda g, names: 0)
    monkeypatch.setattr(cs_mod, "GLOBAL_CHECKS", {})
    monkeypatch.setattr(cs_mod, "region_of", lambda old, new, hops: set())
    env.reset()
    rng = random.Random(0)
    differs = False
    for _ in range(6):
        env.step(rng.randrange(len(env.candidates)))
        ref = CandidateSet(env.rules, hops=env.hops, verify=env.verify).build(env.model)
        if env._cset.signature() != ref.signature():
            differs = True
            break
    assert differs


def test_shape_check_rejects_a_shape_changing_rewrite():
    """A diff whose boundary tensor changes shape gets a verdict; verify='shape' drops it."""
    import onnx
    from onnx import TensorProto, helper

    from xflow.graphs.ir import Graph
    from xflow.rewrites._base import Location, Rule

    class Squash(Rule):  # replaces Relu(h: (1, 4)) by Reshape(h, [4]) -> (4,): a shape-changing "rewrite"
        name = "test_squash"

        def _sites(self, view):
            return [Location.of((n.name,)) for n in view.nodes if n.op_type == "Relu"]

        def _check(self, view, loc):
            return None

        def _rewrite(self, view, loc, ed):
            n = view.node(loc.nodes[0])
            shape = ed.add_int64("shape", [4])
            ed.remove(n)
            ed.add_node("Reshape", [n.inputs[0].name, shape], [n.outputs[0].name])

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["h"], name="r"),
                           helper.make_node("Sigmoid", ["h"], ["y"], name="s")], "g", [x], [y])
    graph = Graph.from_proto(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))
    cs = CandidateSet([Squash()], verify="shape").build(graph)
    (site,) = cs.sites.values()
    assert site.diff is not None and site.diff.verdict and "(4,)" in site.diff.verdict
    assert cs.candidates(10) == []
    assert len(CandidateSet([Squash()], verify=False).build(graph).candidates(10)) == 1


def test_numeric_verification_runs_once_per_diff(monkeypatch):
    """verify='local' checks each candidate in ORT once; a kept site is not checked again."""
    import xflow.envs.candidate_set as cs_mod

    calls = []
    real = cs_mod._numeric_ok
    monkeypatch.setattr(cs_mod, "_numeric_ok", lambda g, c, mode: calls.append(c.location) or real(g, c, mode))
    env = RewriteEnv("zoo:squeezenet1_1", max_candidates=50, horizon=5, cost_model="nominal", verify="local")
    env.reset()
    first = len(calls)
    before = {c.location for c in env.candidates}
    assert first == len(env.candidates) >= 2 and all(c.diff.numeric for c in env.candidates)
    env.step(0)
    kept = [c for c in env.candidates if c.location in before]
    assert kept and all(c.diff.numeric for c in env.candidates)
    # only re-checked sites ran in ORT again (without the per-diff verdict every candidate would)
    assert len(calls) - first <= env._cset.last_checked and len(calls) - first < len(env.candidates)
