"""The searches X-RLflow compares against, over one rule set and one cost model.

* :func:`~xflow.rewrites.searches.taso.taso_search` — TASO's cost-based backtracking search
  (priority queue, α pruning, budget);
* :func:`~xflow.rewrites.searches.tensat.tensat_search` — TENSAT's equality saturation with egglog
  (node/iteration/time limits, multi-pattern rules for the first ``k_multi`` iterations, cycle
  filtering) and greedy or ILP extraction under the same cost model.

:func:`rule_set` names the rule sets every search can use: ``generated`` (the verified generated
rules, both directions), ``handwritten`` (:data:`xflow.rewrites.RULES`) and ``all``.
"""
from __future__ import annotations

from xflow.errors import UnknownName

__all__ = ["rule_set", "default_rules", "RULE_SETS", "taso_search", "tensat_search"]

RULE_SETS = ("generated", "handwritten", "all")


def rule_set(name: str = "all") -> list:
    """The rules of set ``name`` (``generated`` | ``handwritten`` | ``all``)."""
    from xflow.rewrites import RULES
    from xflow.rewrites.generator.rule import generated_rules

    if name == "generated":
        return generated_rules()
    if name == "handwritten":
        return list(RULES)
    if name == "all":
        return list(RULES) + generated_rules()
    raise UnknownName(f"unknown rule set {name!r}; use one of {', '.join(RULE_SETS)}")


def default_rules() -> list:
    """The rule set searches use when none is given: ``all``."""
    return rule_set("all")


def __getattr__(name: str):
    if name == "taso_search":
        from xflow.rewrites.searches.taso import taso_search

        return taso_search
    if name == "tensat_search":
        from xflow.rewrites.searches.tensat import tensat_search

        return tensat_search
    raise AttributeError(name)
