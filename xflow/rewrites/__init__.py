"""Verified tensor-graph rewrite rules (TASO / X-RLflow style substitutions) on ONNX models.

Every rule is an object with ``name``, ``match(model) -> list[Location]``,
``apply(model, location) -> new model`` (never mutating its input), ``check(model, loc)`` and
``explain(model)`` (sites that do not match, with the reason). One rule family per private module
(``_merge_sibling_convs.py`` …); :data:`RULES` lists them all, most specific first.

:func:`candidates` enumerates every distinct one-step rewrite (verified numerically), and
:mod:`xflow.rewrites.search` runs greedy / beam / random-walk baselines over a cost function
(:mod:`xflow.costs`).
"""
from __future__ import annotations

from xflow.rewrites._base import Location, Rule, RuleNotApplicable
from xflow.rewrites._registry import RULES, apply_action, apply_actions, get_rule, rule_names
from xflow.rewrites.candidates import Candidate, candidates, graph_hash

__all__ = [
    "Location", "Rule", "RuleNotApplicable", "RULES", "get_rule", "rule_names", "apply_action",
    "apply_actions", "Candidate", "candidates", "graph_hash",
]
