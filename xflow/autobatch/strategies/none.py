"""``none``: no batching — every node is its own group, in creation order. ``O(N)``.

The reference point of DyNet's paper (autobatching off): one kernel launch per operation.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from ..graph import Graph

__all__ = ["plan_none"]


def plan_none(graph: "Graph", nodes: Sequence[int]) -> list[list[int]]:
    """One group per node, in creation order (a valid topological order)."""
    return [[n] for n in nodes]
