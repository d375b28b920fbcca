"""Verified tensor-graph rewrite rules (TASO / X-RLflow style substitutions) on ONNX models.

Every rule is an object with ``name``, ``match(model) -> list[Location]``,
``apply(model, location) -> new model`` (never mutating its input), ``check(model, loc)`` and
``explain(model)`` (sites that do not match, with the reason). One rule family per private module
(``_merge_sibling_convs.py`` …); :data:`RULES` lists them all, most specific first.

:func:`candidates` enumerates every distinct one-step rewrite (verified numerically), and
:mod:`xflow.rewrites.search` runs greedy / beam / random-walk baselines over a cost function
(:mod:`xflow.rewrites.cost`).
"""
from __future__ import annotations

from typing import Any

import onnx

from xflow.errors import UnknownName
from xflow.rewrites._base import Location, Rule, RuleNotApplicable
from xflow.rewrites._merge_sibling_convs import merge_sibling_convs_rule, split_conv_rule
from xflow.rewrites._split_concat import concat_split_rule, split_concat_rule
from xflow.rewrites._transpose_reshape import (
    fuse_reshapes_rule,
    fuse_transposes_rule,
    remove_identity_reshape_rule,
    remove_identity_transpose_rule,
)
from xflow.rewrites.candidates import Candidate, candidates, graph_hash

__all__ = [
    "Location", "Rule", "RuleNotApplicable", "RULES", "get_rule", "rule_names", "apply_action",
    "apply_actions", "Candidate", "candidates", "graph_hash",
]

#: Every registered rule, in the order candidates are enumerated.
RULES: list[Rule] = [
    merge_sibling_convs_rule,
    split_conv_rule,
    split_concat_rule,
    concat_split_rule,
    fuse_transposes_rule,
    remove_identity_transpose_rule,
    fuse_reshapes_rule,
    remove_identity_reshape_rule,
]


def rule_names() -> list[str]:
    """Names of all registered rules, in registry order."""
    return [r.name for r in RULES]


def get_rule(name: str) -> Rule:
    """The registered rule called ``name`` (raises :class:`~xflow.errors.UnknownName`)."""
    for r in RULES:
        if r.name == name:
            return r
    raise UnknownName(f"unknown rewrite rule {name!r}; known rules: {', '.join(rule_names())}")


def apply_action(model: onnx.ModelProto, action: dict[str, Any]) -> onnx.ModelProto:
    """Apply ``{"rule": name, "location": Location.to_json()}`` (as from :meth:`Candidate.action`)."""
    loc = action["location"]
    loc = loc if isinstance(loc, Location) else Location.from_json(loc)
    return get_rule(action["rule"]).apply(model, loc)


def apply_actions(model: onnx.ModelProto, actions: list[dict[str, Any]]) -> onnx.ModelProto:
    """Replay a list of actions in order (deterministic: same model, same actions, same graph)."""
    for a in actions:
        model = apply_action(model, a)
    return model
