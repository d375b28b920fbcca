"""The generic matcher/applier on generated rules: a positive and a negative test per rule class,
and a sample of generated rules applied to zoo models, checked against ONNX Runtime."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper

from xflow.rewrites import apply_action, get_rule
from xflow.rewrites.generator.ops import shape_value
from xflow.rewrites.generator.rule import generated_rules
from xflow.rewrites.generator.verify import pattern_model
from xflow.rewrites.verify import Verifier, verify_rewrite

ENVS = {"matrix": {"m": 3, "k": 4, "n": 5, "p": 2}, "image": {"b": 1, "c": 2, "d": 3, "h": 5, "w": 4}}
CLASSES = ["matmul", "conv", "pool", "concat_split", "transpose", "elementwise"]


def _representative(cls: str):
    """A forward rule of class ``cls`` with an intermediate tensor and one output."""
    for r in generated_rules():
        if (r.rule_class == cls and not r.name.endswith("~r") and len(r.src.nodes) >= 2
                and len(r.src.outputs) == 1 and r.dst.nodes):
            return r
    raise AssertionError(f"no rule of class {cls}")


def _weights_as_initializers(model: onnx.ModelProto, rule) -> onnx.ModelProto:
    """Turn the pattern's weight-like variables (w*, k*, v*, s) into seeded initializers."""
    rng = np.random.default_rng(1)
    g = model.graph
    keep, inits = [], []
    for i in g.input:
        if i.name[0] in "wkvs":
            shape = [d.dim_value for d in i.type.tensor_type.shape.dim]
            inits.append(onnx.numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), i.name))
        else:
            keep.append(i)
    del g.input[:]
    g.input.extend(keep)
    g.initializer.extend(inits)
    return model


def _outputs_without_identity(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` with the Identity nodes that name its outputs removed (the pattern's tensors
    become the graph outputs)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    outs = {o.name: o for o in m.graph.output}
    for n in [n for n in m.graph.node if n.op_type == "Identity" and n.output[0] in outs]:
        outs[n.output[0]].name = n.input[0]
        m.graph.node.remove(n)
    return m


@pytest.mark.parametrize("cls", CLASSES)
def test_positive_generated_rule_per_class(cls):
    rule = _representative(cls)
    env = ENVS[rule.meta["domain"]]
    model = _weights_as_initializers(pattern_model(rule.src, env), rule)
    before = onnx.ModelProto()
    before.CopyFrom(model)
    locs = rule.match(model)
    assert locs, f"{rule.name} ({rule.src}) does not match its own source pattern"
    new = rule.apply(model, locs[0])
    onnx.checker.check_model(new, full_check=True)
    assert verify_rewrite(model, new, n_trials=2) < 1e-3
    assert model == before  # input untouched
    from xflow.rewrites import graph_hash

    assert graph_hash(new) != graph_hash(model)  # the graph did change
    # with the pattern's output as the graph output, the target's last node writes that name:
    # no bridging Identity is added (it would cost what the source graph does not pay)
    bare = _outputs_without_identity(pattern_model(rule.src, env))  # inputs only: nothing folds
    new_bare = rule.apply(bare, rule.match(bare)[0])
    assert not any(n.op_type == "Identity" for n in new_bare.graph.node)
    assert [o.name for o in new_bare.graph.output] == [o.name for o in bare.graph.output]
    assert verify_rewrite(bare, new_bare, n_trials=1) < 1e-3
    # replay by name (actions are {"rule", "location"})
    again = apply_action(model, {"rule": rule.name, "location": locs[0].to_json()})
    assert again == new
    # the output does not vanish (the check could fail)
    sess_out = Verifier(model).expected[0][0]
    assert np.std(sess_out) > 0


@pytest.mark.parametrize("cls", CLASSES)
def test_negative_generated_rule_per_class(cls):
    """An intermediate tensor read outside the match blocks the rewrite, with the reason."""
    rule = _representative(cls)
    env = ENVS[rule.meta["domain"]]
    model = _weights_as_initializers(pattern_model(rule.src, env), rule)
    inner = next(n for n in model.graph.node if n.output[0] not in
                 {m.input[0] for m in model.graph.node if m.op_type == "Identity"})
    shapes = rule.src.shapes()
    ref = f"{inner.name[1:]}:0"
    model.graph.output.append(helper.make_tensor_value_info(inner.output[0], onnx.TensorProto.FLOAT,
                                                            list(shape_value(shapes[ref], env))))
    assert rule.match(model) == []
    reasons = [why for _, why in rule.explain(model)]
    assert reasons and any("intermediate" in why for why in reasons)


def test_negative_shape_mismatch_and_attribute():
    rule = next(r for r in generated_rules() if str(r.src) == "MatMul(x1, w1)" and "Gemm" in str(r.dst))
    model = pattern_model(rule.src, ENVS["matrix"])
    assert rule.match(model)
    # an int64 MatMul is not a float pattern
    bad = pattern_model(rule.src, ENVS["matrix"], dtype=onnx.TensorProto.INT64)
    assert rule.match(bad) == []
    assert "floating point" in rule.explain(bad)[0][1]
    # Gemm with transB=0 does not match a Gemm_tB pattern
    inv = get_rule(rule.name + "~r")
    m2 = pattern_model(inv.src, ENVS["matrix"])
    for n in m2.graph.node:
        if n.op_type == "Gemm":
            n.attribute[0].i = 0
    assert inv.match(m2) == []


def test_generated_rules_on_zoo_models_match_ort():
    """A sample of generated rules (one site per rule) applied to zoo models, checked in ORT."""
    from xflow.graphs import zoo
    from xflow.rewrites import candidates

    rules = generated_rules()
    checked = {}
    for name, cfg in (("nasrnn", dict(hidden=64, seq=2)), ("squeezenet1_1", {})):
        model = zoo.load(name, **cfg)
        ver = Verifier(model, n_trials=1)
        for c in candidates(model, rules, max_candidates=400, verify=False):
            if c.rule in checked:
                continue
            v = ver.check(c.model)
            assert v.ok, f"{c.rule} at {c.location} on {name}: {v.reason}"
            checked[c.rule] = name
            if len(checked) >= 12:
                break
    assert len(checked) >= 8
    assert {"nasrnn", "squeezenet1_1"} <= set(checked.values())


def test_graph_core_is_reached_only_through_the_adapter():
    """The generic applier and TENSAT's encoder read/edit graphs only via ``generator/graph_api.py``,
    so moving the graph core to another IR changes that one file."""
    import ast
    from pathlib import Path

    import xflow.rewrites as rw

    root = Path(rw.__file__).parent
    core = ("xflow.rewrites._graph", "xflow.graphs.ir", "xflow.graphs.edit", "onnx_ir")
    offenders = []
    for f in sorted((root / "generator").glob("*.py")) + sorted((root / "searches").glob("*.py")):
        if f.name == "graph_api.py":
            continue
        for node in ast.walk(ast.parse(f.read_text())):
            mods = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            offenders += [f"{f.name}: {m}" for m in mods if m.startswith(core)]
    assert offenders == []
