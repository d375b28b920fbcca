"""The rule registry: every rewrite rule, in the order candidates are enumerated."""
from __future__ import annotations

from typing import Any

import onnx

from xflow.errors import UnknownName
from xflow.graphs.ir import Graph
from xflow.rewrites._base import Location, Rule
from xflow.rewrites._enlarge_conv import enlarge_conv_rule, shrink_conv_rule
from xflow.rewrites._fold_scale_into_weights import fold_into_conv_rule, fold_into_matmul_rule
from xflow.rewrites._group_parallel_convs import group_parallel_convs_rule, ungroup_conv_rule
from xflow.rewrites._merge_group_convs import merge_group_convs_rule
from xflow.rewrites._matmul_reassoc import (concat_matmul_add_rule, factor_matmul_add_rule, reassoc_left_rule,
                                            reassoc_right_rule)
from xflow.rewrites._merge_sibling_convs import merge_sibling_convs_rule, split_conv_rule
from xflow.rewrites._merge_sibling_matmuls import merge_sibling_matmuls_rule, split_matmul_rule
from xflow.rewrites._split_concat import concat_split_rule, split_concat_rule
from xflow.rewrites._transpose_reshape import (fuse_reshapes_rule, fuse_transposes_rule, remove_identity_reshape_rule,
                                               remove_identity_transpose_rule)
from xflow.rewrites._unary_across_concat import (binary_before_split_rule, unary_after_concat_rule,
                                                 unary_after_split_rule, unary_before_concat_rule,
                                                 unary_before_split_rule)
from xflow.rewrites.generator.rule import generated_rules

__all__ = ["RULES", "get_rule", "rule_names", "apply_action", "apply_actions"]

#: Every registered rule, in the order candidates are enumerated.
RULES: list[Rule] = [
    # 1-2: sibling conv merges (TASO) and kernel enlargement, with inverses
    merge_sibling_convs_rule,
    split_conv_rule,
    enlarge_conv_rule,
    shrink_conv_rule,
    # 3: Q/K/V-style sibling MatMul merges
    merge_sibling_matmuls_rule,
    split_matmul_rule,
    # 4: Split/Concat cancellation
    split_concat_rule,
    concat_split_rule,
    # 5: unary ops across Concat/Split
    unary_after_concat_rule,
    unary_before_concat_rule,
    unary_after_split_rule,
    unary_before_split_rule,
    binary_before_split_rule,
    # 6: Transpose/Reshape fusion and removal
    fuse_transposes_rule,
    remove_identity_transpose_rule,
    fuse_reshapes_rule,
    remove_identity_reshape_rule,
    # 7: MatMul reassociation, factoring, concatenation of sums
    reassoc_right_rule,
    reassoc_left_rule,
    factor_matmul_add_rule,
    concat_matmul_add_rule,
    # 8: constant scale/shift folding into weights
    fold_into_conv_rule,
    fold_into_matmul_rule,
    # 9: parallel convs on different inputs -> grouped conv, and back
    group_parallel_convs_rule,
    ungroup_conv_rule,
    # 10: fewer, wider groups of one grouped conv (TASO's merge_group_convs; no inverse)
    merge_group_convs_rule,
]


def rule_names() -> list[str]:
    """Names of all registered rules, in registry order."""
    return [r.name for r in RULES]


def get_rule(name: str) -> Rule:
    """The registered rule called ``name`` (raises :class:`~xflow.errors.UnknownName`)."""
    for r in RULES:
        if r.name == name:
            return r
    if name.startswith("gen_"):  # a generated rule (xflow/rewrites/generated/rules.json)
        for r in generated_rules():
            if r.name == name:
                return r
    raise UnknownName(f"unknown rewrite rule {name!r}; known rules: {', '.join(rule_names())}")


def apply_action(model: onnx.ModelProto | Graph, action: dict[str, Any]) -> onnx.ModelProto | Graph:
    """Apply ``{"rule": name, "location": Location.to_json()}`` (as from ``Candidate.action()``);
    a :class:`~xflow.graphs.Graph` gives a ``Graph``, a ``ModelProto`` a ``ModelProto``."""
    loc = action["location"]
    loc = loc if isinstance(loc, Location) else Location.from_json(loc)
    return get_rule(action["rule"]).apply(model, loc)


def apply_actions(model: onnx.ModelProto | Graph, actions: list[dict[str, Any]]) -> onnx.ModelProto | Graph:
    """Replay a list of actions in order (deterministic: same model, same actions, same graph)."""
    g = Graph.of(model)
    for a in actions:
        g = apply_action(g, a)
    return g if isinstance(model, Graph) else g.model
