"""Batching strategies: turn the pending nodes of a graph into an ordered list of groups.

A strategy is a function ``plan(graph, nodes) -> list[list[int]]``: ``nodes`` are the node ids
still to run, in creation order (a topological order); the result lists groups in execution order.
Every group must hold nodes of one signature, and every node must come after the groups that
compute its operands. :func:`validate_plan` checks both (the tests run it on every strategy).

Registered strategies (one file each):

* ``none``   — one node per group, creation order. ``O(N)``. DyNet without autobatching.
* ``depth``  — group by (depth, signature). ``O(N)`` (hashing). Simple, but a node waits for the
  deepest chain of its depth level; nodes of one signature at different depths never merge.
* ``agenda`` — DyNet's agenda: run the *ready* signature group with the lowest average depth.
  ``O(N log S)`` for ``S`` signatures (a heap). Default.

Add a strategy: a new file with a ``plan`` function and one line in :data:`STRATEGIES`.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from xflow.errors import UnknownName

from .agenda import plan_agenda
from .depth import plan_depth
from .none import plan_none

if TYPE_CHECKING:  # pragma: no cover
    from ..graph import Graph

__all__ = ["STRATEGIES", "get_strategy", "validate_plan", "plan_none", "plan_depth", "plan_agenda"]

Planner = Callable[["Graph", Sequence[int]], list[list[int]]]

STRATEGIES: dict[str, Planner] = {
    "none": plan_none,
    "depth": plan_depth,
    "agenda": plan_agenda,
}


def get_strategy(name: str) -> Planner:
    """The planner registered as ``name``; :class:`UnknownName` lists the valid names otherwise."""
    try:
        return STRATEGIES[name]
    except KeyError:
        raise UnknownName(f"unknown autobatch strategy {name!r}; choose one of {sorted(STRATEGIES)}") from None


def validate_plan(graph: "Graph", nodes: Sequence[int], plan: Sequence[Sequence[int]]) -> None:
    """Raise ``AssertionError`` unless ``plan`` runs each node once, after its operands, by signature."""
    pending = set(nodes)
    seen: set[int] = set()
    for k, grp in enumerate(plan):
        assert grp, f"group {k} is empty"
        sigs = {graph.sig[n] for n in grp}
        assert len(sigs) == 1, f"group {k} mixes signatures {sigs}"
        for n in grp:
            assert n in pending and n not in seen, f"node {n} planned twice or not pending"
            for a in graph.args[n]:
                assert a not in pending or a in seen, f"node {n} runs before its operand {a}"
        seen.update(grp)
    assert seen == pending, f"nodes never planned: {sorted(pending - seen)[:10]}"
