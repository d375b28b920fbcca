import json
import logging

import onnx

from xflow.graphs.builders import make_inception_like, make_sibling_convs
from xflow.rewrites import (RULES, Location, Rule, RuleNotApplicable, apply_actions, candidates, get_rule,
                            graph_hash, rule_names)
from xflow.errors import UnknownName
from xflow.graphs import Editor, Graph, ins, outs

import pytest


def test_registry_names_unique_and_documented():
    names = rule_names()
    assert len(names) == len(set(names)) >= 18
    for r in RULES:
        assert "->" in (type(r).__doc__ or ""), r.name
        assert "->" in (type(r).__module__ and __import__(type(r).__module__, fromlist=["_"]).__doc__)
    with pytest.raises(UnknownName, match="merge_sibling_convs"):
        get_rule("no_such_rule")


def test_location_json_round_trip_and_hashable():
    loc = Location.of(("a", "b"), kernel=(3, 3), tag="x")
    again = Location.from_json(json.dumps(loc.to_json()))
    assert again == loc and hash(again) == hash(loc)
    assert {loc: 1}[again] == 1


def test_candidates_dedup_verified_and_replayable():
    m = make_inception_like()
    cands = candidates(m)
    hashes = [c.hash for c in cands]
    assert len(hashes) == len(set(hashes)) and graph_hash(m) not in hashes
    assert {c.rule for c in cands} >= {"merge_sibling_convs", "unary_after_concat", "group_parallel_convs"}
    for c in cands:  # replay from (model, action) gives the same graph
        action = json.loads(json.dumps(c.action()))
        assert graph_hash(apply_actions(m, [action])) == c.hash
    assert len(candidates(m, max_candidates=2)) == 2
    assert [c.rule for c in candidates(m, rules=["merge_sibling_convs"])] == ["merge_sibling_convs"]


class _WrongRule(Rule):
    """``Relu(x) -> Sigmoid(x)`` — deliberately wrong, to prove verification drops it."""

    name = "wrong_relu_to_sigmoid"

    def _sites(self, view):
        return (Location.of((n.name,)) for n in view.nodes if n.op_type == "Relu")

    def _check(self, view, loc):
        return None

    def _rewrite(self, view, loc, ed: Editor):
        n = view.node(loc.nodes[0])
        ed.remove(n)
        ed.add_node("Sigmoid", [ins(n)[0]], [outs(n)[0]])


def test_candidates_drop_non_equivalent_rewrites(caplog):
    m = make_sibling_convs()
    with caplog.at_level(logging.WARNING, logger="xflow.rewrites.candidates"):
        assert candidates(m, rules=[_WrongRule()]) == []
    assert "not equivalent" in caplog.text
    assert len(candidates(m, rules=[_WrongRule()], verify=False)) == 3


def test_apply_refuses_non_matching_location():
    m = make_sibling_convs(kernels=(3, 1), out_channels=(4, 4))
    rule = get_rule("merge_sibling_convs")
    with pytest.raises(RuleNotApplicable, match="differ in kernel"):
        rule.apply(m, Location.of(("conv0", "conv1")))
    assert "not in graph" in rule.check(m, Location.of(("nope", "conv1")))


def test_view_accepts_unnamed_nodes():
    m = make_sibling_convs()
    for n in m.graph.node:
        n.name = ""
    locs = get_rule("merge_sibling_convs").match(m)
    assert len(locs) == 1
    new = get_rule("merge_sibling_convs").apply(m, locs[0])
    onnx.checker.check_model(new)
    # filled in deterministically: <OpType>_<position>
    assert list(Graph.from_proto(m).node_by_name) == [f"{n.op_type}_{i}" for i, n in enumerate(m.graph.node)]


def test_verify_local_and_full_agree():
    from xflow.rewrites.verify import verify_local

    m = make_inception_like()
    for c in candidates(m, verify=False):
        assert verify_local(m, c.model).ok
    bad = candidates(m, rules=[_WrongRule()], verify=False)
    assert bad and not any(verify_local(m, c.model).ok for c in bad)
    assert candidates(m, rules=[_WrongRule()], verify="full") == []


def test_dynamic_batch_matches_but_cannot_be_verified():
    from xflow.errors import DynamicShapeError

    m = make_inception_like(batch="N")
    assert candidates(m, verify=False)  # structural rules still match
    with pytest.raises(DynamicShapeError, match="static batch"):
        candidates(m)
