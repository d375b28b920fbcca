"""The searches X-RLflow compares against, over one rule set and one cost model.

* :func:`~xflow.rewrites.searches.taso.taso_search` — TASO's cost-based backtracking search
  (priority queue, α pruning, budget);
* :func:`~xflow.rewrites.searches.tensat.tensat_search` — TENSAT's equality saturation with egglog
  (node/iteration/time limits, multi-pattern rules for the first ``k_multi`` iterations, cycle
  filtering) and greedy or ILP extraction under the same cost model.

the rule sets (:mod:`.rules`): :func:`rule_set` names those every search can use: ``generated`` (the verified generated
rules, both directions), ``handwritten`` (:data:`xflow.rewrites.RULES`) and ``all``.
"""
from __future__ import annotations

from xflow.rewrites.searches.rules import RULE_SETS, default_rules, rule_set
from xflow.rewrites.searches.taso import taso_search
from xflow.rewrites.searches.tensat import tensat_search

__all__ = ["rule_set", "default_rules", "RULE_SETS", "taso_search", "tensat_search"]
