"""Candidate enumeration on the IR: tensor-sharing graphs, digest-cached hashing, the same results.

``candidates_golden.json`` holds, per builder graph, the (rule, location) list in order and a
SHA-256 of each candidate's serialized model. It was regenerated when the rules moved onto the
onnx-ir IR, after checking that every candidate of the previous protobuf implementation and of
the IR one are node-by-node identical (names, op types, wiring, attributes, initializer names and
values, graph inputs and outputs) on every builder graph, squeezenet1_1 and inception_v3, one and
two rewrite steps deep; only the serialization of the same graphs changed.
"""
import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from xflow.envs.features import featurize
from xflow.graphs import builders
from xflow.graphs.hashing import array_digest, model_hash, tensor_digest
from xflow.graphs.ir import Graph
from xflow.rewrites import RULES, candidates
from xflow.rewrites.verify import verify_local

GOLDEN = json.loads((Path(__file__).with_name("candidates_golden.json")).read_text())


def _digest(m: onnx.ModelProto) -> str:
    return hashlib.sha256(m.SerializeToString(deterministic=True)).hexdigest()[:16]


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_candidates_match_recorded_results(name):
    model = getattr(builders, f"make_{name}")()
    cands = candidates(model, verify=False)
    got = [[c.rule, c.location.to_json(), _digest(c.model)] for c in cands]
    assert got == GOLDEN[name]
    for c in cands:
        assert model_hash(c.model) == c.hash  # the graph's hash == the hash of its serialized model


def _independent(model: onnx.ModelProto):
    """Reference: every (rule, location) applied to the ModelProto itself (a fresh IR per
    application, nothing shared between candidates), deduplicated by the hash of the result."""
    seen, out = {model_hash(model)}, []
    for rule in RULES:
        for loc in rule.match(model):
            new = rule.apply(model, loc)
            h = model_hash(new)
            if h not in seen:
                seen.add(h)
                out.append((rule.name, loc, new))
    return out


def test_zoo_model_candidates_equal_independent_reference():
    from xflow.graphs import zoo

    model = zoo.load("squeezenet1_1")
    src = Graph.from_proto(model)
    cands = candidates(src, verify=False)
    ref = _independent(model)
    assert [(c.rule, c.location) for c in cands] == [(r, loc) for r, loc, _ in ref]
    assert len({c.hash for c in cands}) == len(cands) and src.content_hash not in {c.hash for c in cands}
    for c, (_, _, m) in zip(cands[:4], ref[:4]):
        assert c.model.SerializeToString(deterministic=True) == m.SerializeToString(deterministic=True)
    c = cands[-1]
    shared = [k for k, v in c.graph.initializer_values.items() if src.value(k) is not None]
    assert shared and all(c.graph.value(k).const_value is src.value(k).const_value for k in shared)
    f_graph, f_model = featurize(c.graph), featurize(c.model)
    assert all(np.array_equal(a, b) for a, b in zip(f_graph, f_model))


def test_local_verification_uses_the_recorded_changes():
    view = Graph.of(builders.make_inception_like())
    rule = next(r for r in RULES if r.name == "merge_sibling_convs")
    new = rule.apply(view, rule.match(view)[0])
    assert set(new.changes.removed) >= set(rule.match(view)[0].nodes)
    assert verify_local(view, new).ok
    assert new.model is new.model  # the ModelProto is built once


def test_digest_helpers_agree():
    arr = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    t = numpy_helper.from_array(arr, "w")
    assert array_digest(arr) == tensor_digest(t)
    as_floats = onnx.helper.make_tensor("w", onnx.TensorProto.FLOAT, arr.shape, arr.reshape(-1).tolist())
    assert tensor_digest(as_floats) == tensor_digest(t)  # raw_data vs float_data storage
    assert array_digest(arr[:, ::2]) == tensor_digest(numpy_helper.from_array(np.ascontiguousarray(arr[:, ::2])))
    import onnx_ir as ir

    assert tensor_digest(ir.tensor(arr)) == tensor_digest(t)  # IR tensor == TensorProto


def test_roofline_of_a_candidate_equals_roofline_of_its_model():
    from xflow.costs import Roofline
    from xflow.graphs import zoo

    cost = Roofline()
    for c in candidates(zoo.load("squeezenet1_1"), verify=False)[-3:]:
        assert cost(c.graph) == cost(Graph.from_proto(c.model))


def test_region_graph_links_a_rewired_nodes_output_to_its_rewired_reader():
    """``concat_split_cancel`` rewires both readers of the Split: ``p = Relu(s1)`` and
    ``q = Add(p, s2)``, and ``q`` reads ``p``'s output. The region graph that the per-node cost
    models run in ONNX Runtime must define ``p`` once (found training on ``zoo:resnext_toy``: ORT
    rejected such a region, "Duplicate definition of name"). Kills: building the rewired nodes'
    outputs after their readers' inputs (``q`` reads a copy of ``p`` named like it)."""
    import onnxruntime as ort

    from tests.rewrites.toy import model, node
    from xflow.rewrites import get_rule
    from xflow.rewrites.candidates import edit_diff

    m = model([node("Concat", ["a", "b"], ["c"], axis=1),
               node("Split", ["c"], ["s1", "s2"], axis=1, num_outputs=2, name="split"),
               node("Relu", ["s1"], ["p"]), node("Add", ["p", "s2"], ["q"])],
              {"a": (1, 4), "b": (1, 4)}, ["q"], opset=18)
    view = Graph.of(m)
    rule = get_rule("concat_split_cancel")
    (loc,) = rule.match(m)
    d = edit_diff(rule, view, loc)
    assert d.rewired == {"p", "q"}
    region = d.region_graph(view.ir.graph.opset_imports).model
    defined = [o for n in region.graph.node for o in n.output] + [i.name for i in region.graph.input]
    assert sorted(defined) == sorted(set(defined)) and "p" not in [i.name for i in region.graph.input]
    ort.InferenceSession(region.SerializeToString(), providers=["CPUExecutionProvider"])  # loads
