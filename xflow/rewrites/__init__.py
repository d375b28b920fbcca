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

from xflow.graphs.ir import Graph
from xflow.rewrites._base import Location, Rule, RuleNotApplicable
from xflow.rewrites._registry import RULES, get_rule, rule_names
from xflow.rewrites.candidates import Candidate, candidates, graph_hash

__all__ = [
    "Location", "Rule", "RuleNotApplicable", "RULES", "get_rule", "rule_names", "apply_action",
    "apply_actions", "Candidate", "candidates", "graph_hash",
]


def apply_action(model: onnx.ModelProto | Graph, action: dict[str, Any]) -> onnx.ModelProto | Graph:
    """Apply ``{"rule": name, "location": Location.to_json()}`` (as from :meth:`Candidate.action`);
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
