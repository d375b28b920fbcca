"""``depth``: group nodes by (depth, signature); run depth levels in increasing order.

Depth is the longest path from a leaf (recorded when the node is created: ``1 + max`` over the
operands). Two nodes of equal depth never depend on each other, and every operand of a node has a
smaller depth, so running levels in order is valid. Cost ``O(N)`` dict operations.

Weakness (the reason for ``agenda``): the same operation sitting at different depths in different
examples never merges — e.g. the output layer of a short sentence and of a long one, or the
Tree-LSTM nodes of unbalanced trees — so the number of kernels grows with the spread of depths.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from ..graph import Graph

__all__ = ["plan_depth"]


def plan_depth(graph: "Graph", nodes: Sequence[int]) -> list[list[int]]:
    """Groups keyed by ``(depth, signature)``, ordered by depth then first appearance."""
    depth = graph.depth
    sig = graph.sig
    groups: dict[tuple[int, int], list[int]] = {}
    for n in nodes:
        key = (depth[n], sig[n])
        grp = groups.get(key)
        if grp is None:
            groups[key] = [n]
        else:
            grp.append(n)
    return [groups[k] for k in sorted(groups, key=lambda k: k[0])]
