"""Batching strategies: turn the pending nodes of a graph into an ordered list of groups.

A strategy is a function ``plan(inp: PlanInput) -> (order, starts)`` over the local arrays of
:func:`xflow.autobatch.schedule.analyze`: ``order`` lists the local ids of the pending op nodes in
execution order and group ``k`` is ``order[starts[k]:starts[k+1]]``. Every group must hold nodes
of one signature (unbatchable ones alone), and every node must come after the groups that compute
its operands. :func:`validate_plan` checks both (the tests run it on every strategy). A legacy
planner ``plan(graph, nodes) -> list[list[int]]`` (global node ids) is accepted as well.

Registered strategies (one file each; DyNet's ``--dynet-autobatch`` number in brackets):

* ``none``         — one node per group, creation order [0].
* ``depth``        — group by (relative depth, signature) [2].
* ``agenda``       — DyNet's agenda: unbatchable first, then the ready signature with the lowest
  average depth, affine/matmul deferred on ties [1]. Default.
* ``agenda-level`` — the agenda, but a signature waits for its whole current depth level [3].
* ``auto``         — time ``agenda``, ``depth`` and ``agenda-level`` on the first forward of a
  model and keep the fastest [DyNet: a flag > 99].

Add a strategy: a new file with a ``plan`` function and one line in :data:`STRATEGIES`.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from xflow.errors import UnknownName

from .agenda import plan_agenda, plan_agenda_level
from .auto import AutoStrategy
from .depth import plan_depth
from .none import plan_none

if TYPE_CHECKING:  # pragma: no cover
    from ..graph import Graph
    from ..schedule import PlanInput

__all__ = ["STRATEGIES", "get_strategy", "resolve_strategy", "validate_plan", "plan_none", "plan_depth",
           "plan_agenda", "plan_agenda_level", "AutoStrategy", "AUTO"]

Planner = Callable[["PlanInput"], tuple[np.ndarray, np.ndarray]]

#: The process-wide ``auto`` chooser (one decision per model, see :class:`AutoStrategy`).
AUTO = AutoStrategy()

STRATEGIES: dict[str, Planner] = {
    "none": plan_none,
    "depth": plan_depth,
    "agenda": plan_agenda,
    "agenda-level": plan_agenda_level,
    "auto": AUTO,
}


def get_strategy(name: str) -> Planner:
    """The planner registered as ``name``; :class:`UnknownName` lists the valid names otherwise."""
    try:
        return STRATEGIES[name]
    except KeyError:
        raise UnknownName(f"unknown autobatch strategy {name!r}; choose one of {sorted(STRATEGIES)}") from None


def _legacy(fn: Callable[["Graph", Sequence[int]], list[list[int]]]) -> Planner:
    def plan(inp: "PlanInput") -> tuple[np.ndarray, np.ndarray]:
        first = inp.first
        groups = fn(inp.graph, (inp.ops + first).tolist())
        order = np.asarray([n - first for grp in groups for n in grp], dtype=np.int64)
        starts = np.cumsum([0] + [len(grp) for grp in groups]).astype(np.int64)
        return order, starts
    plan.__name__ = getattr(fn, "__name__", "custom")
    return plan


def resolve_strategy(strategy: Any) -> tuple[str, Planner]:
    """``(name, planner)`` for a registered name, an :class:`AutoStrategy`, or a planner callable."""
    if isinstance(strategy, str):
        return strategy, get_strategy(strategy)
    if isinstance(strategy, AutoStrategy):
        return "auto", strategy
    if not callable(strategy):
        raise UnknownName(f"strategy must be a name {sorted(STRATEGIES)} or a planner callable, got {strategy!r}")
    name = getattr(strategy, "__name__", "custom")
    try:
        n_params = len(inspect.signature(strategy).parameters)
    except (TypeError, ValueError):
        n_params = 1
    return name, (_legacy(strategy) if n_params == 2 else strategy)


def validate_plan(graph: "Graph", nodes: Sequence[int], plan: Sequence[Sequence[int]]) -> None:
    """Raise ``AssertionError`` unless ``plan`` runs each of ``nodes`` once, after its pending operands,
    one signature per group, unbatchable nodes alone.

    ``nodes`` are the op nodes that were pending (take them from the graph, e.g. ``g.pending()``
    before the forward, not from the plan itself: a plan that drops a node must fail).
    """
    pending = set(nodes)
    seen: set[int] = set()
    sig, args = graph.sig, graph.args
    for k, grp in enumerate(plan):
        assert grp, f"group {k} is empty"
        sigs = {sig[n] for n in grp}
        assert len(sigs) == 1, f"group {k} mixes signatures {sigs}"
        if len(grp) > 1:
            assert graph._sig_spec[sig[grp[0]]].batchable, f"group {k} batches an unbatchable op"
        for n in grp:
            assert n in pending and n not in seen, f"node {n} planned twice or not pending"
            for a in args[n]:
                assert a not in pending or a in seen, f"node {n} runs before its operand {a}"
        seen.update(grp)
    assert seen == pending, f"nodes never planned: {sorted(pending - seen)[:10]}"
