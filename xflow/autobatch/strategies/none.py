"""``none``: no batching — every node is its own group, in creation order. ``O(N)``.

The reference point of DyNet's paper (autobatching off, ``--dynet-autobatch 0``: DyNet's
``SimpleExecutionEngine`` runs node by node in creation order): one kernel launch per operation.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from ..schedule import PlanInput

__all__ = ["plan_none"]


def plan_none(inp: "PlanInput") -> tuple[np.ndarray, np.ndarray]:
    """One group per op node, in creation order (a valid topological order)."""
    order = inp.ops
    return order, np.arange(len(order) + 1, dtype=np.int64)
