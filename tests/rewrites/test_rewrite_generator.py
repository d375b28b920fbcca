"""The TASO-style rule generator: enumeration, fingerprints, pruning, verification, rules.json."""
from __future__ import annotations

import numpy as np
import pytest

from xflow.rewrites.generator.enumerate import DOMAINS, Domain, enumerate_graphs
from xflow.rewrites.generator.pattern import PNode, Pattern
from xflow.rewrites.generator.prune import candidate_pairs, canonical_key, common_subgraph, common_supergraph
from xflow.rewrites.generator.verify import smt_check, verify_candidate

M, K, N = ("m",), ("k",), ("n",)
SMALL = Domain("small", (("x1", (M, K)), ("x2", (M, K)), ("w1", (K, N)), ("w2", (K, N))),
               ("MatMul", "Gemm_tB", "Add", "Relu", "Transpose_10", "Concat_1", "Split_1_1"),
               ((("m", 2), ("k", 3), ("n", 4)), (("m", 3), ("k", 5), ("n", 2))))


def _pat(vars_, nodes, outputs):
    return Pattern(tuple(vars_), tuple(PNode(op, tuple(i)) for op, i in nodes), tuple(outputs))


@pytest.fixture(scope="module")
def small_pairs():
    enum = enumerate_graphs(SMALL, 2)
    cands, stats = candidate_pairs(enum)
    return {canonical_key(c.src, c.dst) for c in cands}, cands, stats


def _key(src, dst):
    return canonical_key(src, dst)


X1, X2, W1, W2 = ("x1", (M, K)), ("x2", (M, K)), ("w1", (K, N)), ("w2", (K, N))


def test_enumeration_finds_known_identities(small_pairs):
    keys, _, stats = small_pairs
    gemm = _pat([X1, W1], [("MatMul", ["x1", "w1"])], ["0:0"])
    gemm_t = _pat([X1, W1], [("Transpose_10", ["w1"]), ("Gemm_tB", ["x1", "0:0"])], ["1:0"])
    assert _key(gemm, gemm_t) in keys


def test_fingerprint_stand_in_relu_is_not_linear(small_pairs):
    """Relu(a + b) == Relu(a) + Relu(b) would pass with a linear stand-in; it must not be found."""
    enum = enumerate_graphs(SMALL, 3, max_graphs=40_000)
    lhs = "Relu(Add(x1, x2))"
    for graphs in enum.buckets.values():
        terms = {str(g) for g in graphs}
        assert not (lhs in terms and "Add(Relu(x1), Relu(x2))" in terms)


def test_collapse_rule_found(small_pairs):
    keys, _, _ = small_pairs
    tt = _pat([X1], [("Transpose_10", ["x1"]), ("Transpose_10", ["0:0"])], ["1:0"])
    assert _key(tt, _pat([X1], [], ["x1"])) in keys


def test_pruning_predicates():
    a = _pat([X1, W1, W2], [("MatMul", ["x1", "w1"]), ("Relu", ["0:0"])], ["1:0"])
    b = _pat([X1, W1, W2], [("MatMul", ["x1", "w1"]), ("Transpose_10", ["0:0"])], ["1:0"])
    assert common_subgraph(a, b)
    c = _pat([X1, W1], [("Relu", ["x1"]), ("MatMul", ["0:0", "w1"])], ["1:0"])
    d = _pat([X1, W1], [("Transpose_10", ["w1"]), ("MatMul", ["x1", "w1"])], ["1:0"])
    assert not common_subgraph(c, d)
    assert common_supergraph(c, _pat([X1, W1], [("Tanh", ["x1"]), ("MatMul", ["0:0", "w1"])], ["1:0"]))


def test_canonical_key_identifies_renamings():
    a = _pat([X1, W1], [("MatMul", ["x1", "w1"])], ["0:0"])
    b = _pat([X1, W1], [("Transpose_10", ["w1"]), ("Gemm_tB", ["x1", "0:0"])], ["1:0"])
    ren = {"x1": "x2", "w1": "w2"}
    assert canonical_key(a, b) == canonical_key(a.rename(ren), b.rename(ren).rename({}))
    assert canonical_key(a, b) == canonical_key(b, a)


ENVS = [{"m": 2, "k": 3, "n": 4}, {"m": 3, "k": 5, "n": 2}]


def test_verification_accepts_a_true_rule():
    src = _pat([X1, W1, W2], [("Concat_1", ["w1", "w2"]), ("MatMul", ["x1", "0:0"])], ["1:0"])
    dst = _pat([X1, W1, W2], [("MatMul", ["x1", "w1"]), ("MatMul", ["x1", "w2"]), ("Concat_1", ["0:0", "1:0"])],
               ["2:0"])
    ev = verify_candidate(src, dst, ENVS, z3_env={"m": 1, "k": 2, "n": 2})
    assert ev.ok, ev.reason
    assert ev.z3["result"] == "proved"
    assert {t["dtype"] for t in ev.random_tests} == {"float32", "float64"}
    assert len({repr(t["env"]) for t in ev.random_tests}) == 4


def test_verification_rejects_a_false_rule():
    # Relu commutes with Transpose but not with Concat's partner being un-Relu'd
    src = _pat([X1, X2], [("Add", ["x1", "x2"]), ("Relu", ["0:0"])], ["1:0"])
    dst = _pat([X1, X2], [("Relu", ["x1"]), ("Relu", ["x2"]), ("Add", ["0:0", "1:0"])], ["2:0"])
    ev = verify_candidate(src, dst, ENVS, z3_env={"m": 1, "k": 2, "n": 2})
    assert not ev.ok and "random test failed" in ev.reason


def test_z3_refutes_what_random_tests_could_miss():
    src = _pat([X1, X2], [("Add", ["x1", "x2"]), ("Relu", ["0:0"])], ["1:0"])
    dst = _pat([X1, X2], [("Relu", ["x1"]), ("Relu", ["x2"]), ("Add", ["0:0", "1:0"])], ["2:0"])
    assert smt_check(src, dst, {"m": 1, "k": 1})["result"] == "refuted"
    same = _pat([X1, X2], [("Add", ["x2", "x1"])], ["0:0"])
    assert smt_check(_pat([X1, X2], [("Add", ["x1", "x2"])], ["0:0"]), same, {"m": 1, "k": 2})["result"] == "proved"


def test_committed_rule_set_has_100_verified_rules_with_provenance():
    from xflow.rewrites.generator.rule import load_rule_set

    doc = load_rule_set()
    assert len(doc["rules"]) >= 100
    classes = {r["class"] for r in doc["rules"]}
    assert {"matmul", "conv", "pool", "concat_split", "transpose", "elementwise"} <= classes
    for r in doc["rules"]:
        ev = r["verification"]
        assert ev["verified"] and all(t["ok"] for t in ev["random_tests"]) and len(ev["random_tests"]) >= 4
        assert ev["z3"]["result"] in ("proved", "unknown")
        assert r["provenance"]["origin"] in ("fingerprint", "collapse")
        Pattern.from_json(r["src"]).shapes()  # type-checks
        Pattern.from_json(r["dst"]).shapes()
    assert doc["generator"]["domains"]["matrix"]["prune"]["common_subgraph"] > 0


def test_domains_cover_the_zoo_operator_set():
    ops = {o for d in DOMAINS.values() for o in d.ops}
    from xflow.rewrites.generator.ops import OPS

    types = {OPS[o].op_type for o in ops}
    assert {"MatMul", "Gemm", "Conv", "Add", "Mul", "Relu", "Concat", "Split", "Transpose", "MaxPool",
            "AveragePool"} <= types


@pytest.mark.slow
def test_full_generation_reproduces_the_committed_rule_count():
    from xflow.rewrites.generator.generate import generate
    from xflow.rewrites.generator.rule import load_rule_set

    doc = generate(3)
    assert {r["name"] for r in doc["rules"]} == {r["name"] for r in load_rule_set()["rules"]}
    assert np.isfinite(doc["generator"]["time_s"])
