"""Editor: edits a tensor-sharing clone, records what changed, infers only the new shapes."""
from __future__ import annotations

import random

import numpy as np
import onnx
import pytest

from xflow.errors import InvalidModel
from xflow.graphs import builders
from xflow.graphs.edit import Editor
from xflow.graphs.ir import Graph, ins, outs
from xflow.rewrites import candidates


def test_edit_shares_tensors_and_leaves_the_source_alone():
    src = Graph.of(builders.make_sibling_convs())
    before = src.model.SerializeToString()
    ed = Editor(src, tag="t")
    relu = next(n for n in src.nodes if n.op_type == "Relu")
    ed.remove(relu)
    ed.add_node("Sigmoid", [ins(relu)[0]], [outs(relu)[0]], name="sig")
    new = ed.finish()
    assert src.model.SerializeToString() == before  # the source graph is untouched
    assert new.changes.removed == (relu.name,) and new.changes.added == ("sig",)
    for name, v in new.initializer_values.items():  # every weight is the source's tensor object
        assert v.const_value is src.value(name).const_value
    assert new.shape(outs(relu)[0]) == src.shape(outs(relu)[0])
    onnx.checker.check_model(new.model, full_check=True)


def test_renamed_graph_output_is_bridged_and_dead_code_dropped():
    src = Graph.of(builders.make_transpose_chain())
    ed = Editor(src, tag="t")
    last = src.producer(src.outputs[0])
    ed.remove(last)
    ed.replace_uses(outs(last)[0], ins(last)[0])
    new = ed.finish()
    assert new.outputs == src.outputs  # the output keeps its name, produced by an Identity
    assert new.producer(new.outputs[0]).op_type == "Identity"
    assert new.shape(new.outputs[0]) is not None


def test_reading_an_unknown_tensor_or_making_a_cycle_is_an_error():
    src = Graph.of(builders.make_sibling_convs())
    ed = Editor(src)
    ed.add_node("Relu", ["no_such_tensor"], ["r"])
    with pytest.raises(InvalidModel, match="no_such_tensor"):
        ed.finish()
    ed = Editor(src)
    ed.add_node("Relu", ["b"], ["a"])
    ed.add_node("Relu", ["a"], ["b"])
    ed.add_node("Add", [src.outputs[0], "b"], [ed.fresh("o")])
    ed.replace_uses(src.outputs[0], "b")
    with pytest.raises(InvalidModel, match="cycle"):
        ed.finish()


@pytest.mark.parametrize("name", ["split_concat", "sibling_convs", "inception_like", "qkv_matmuls"])
def test_edited_shapes_equal_a_fresh_inference(name):
    """Random 4-step rewrite walks: every value of every edited graph has exactly the shape that
    whole-graph inference of its serialized model gives (local inference in topological order)."""
    rng = random.Random(0)
    for _ in range(3):
        g = Graph.of(getattr(builders, f"make_{name}")())
        for _ in range(4):
            cs = candidates(g, verify=False)
            if not cs:
                break
            c = cs[rng.randrange(len(cs))]
            ref = Graph.from_proto(c.model)
            for n in c.graph.nodes:
                for o in outs(n):
                    assert c.graph.dims(o) == ref.dims(o), (c.rule, o)
            g = c.graph


def test_clone_copies_digests_and_hash_matches_the_serialized_model():
    from xflow.graphs.hashing import graph_hash, model_hash

    src = Graph.of(builders.make_inception_like())
    h = src.content_hash
    c = candidates(src, verify=False)[0]
    assert c.hash == graph_hash(c.graph) == model_hash(c.model) != h
    w = next(k for k in src.initializer_values if c.graph.value(k) is not None)
    assert "xflow.tensor_digest" in c.graph.value(w).meta  # cached on the source, copied by the clone
    assert np.array_equal(c.graph.const(w), src.const(w))
