"""The rule sets every search can use, by name (``generated``, ``handwritten``, ``all``).

Kept apart from the package ``__init__`` so that the searches (:mod:`.taso`, :mod:`.tensat`) can
import their default rule set while the package re-exports them.
"""
from __future__ import annotations

from xflow.errors import UnknownName
from xflow.rewrites import RULES
from xflow.rewrites.generator.rule import generated_rules

__all__ = ["RULE_SETS", "rule_set", "default_rules"]

RULE_SETS = ("generated", "handwritten", "all")


def rule_set(name: str = "all") -> list:
    """The rules of set ``name`` (``generated`` | ``handwritten`` | ``all``)."""
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
