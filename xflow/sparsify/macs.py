r"""Exact multiply–accumulate (MAC) counting from the masks a forward pass actually used.

Every pruned operator reports one :class:`OpCount` to a :class:`MacCounter`:

* propagation over kept edges of features of width :math:`F` (per head for GAT):
  :math:`\text{MACs} = |\mathcal E_l| \cdot F` (dense: :math:`|\mathcal E| \cdot F`);
* transformation :math:`X W` with :math:`X \in \mathbb R^{N\times F_{in}}` (treated as dense) and a
  weight mask :math:`M`: :math:`\text{MACs} = N \cdot \lVert M\rVert_0` (dense: :math:`N F_{in} F_{out}`);
* GAT attention logits :math:`a^\top [W h_u \Vert W h_v]`: :math:`2 N H F'` (not pruned).

Element-wise work (bias, activation, softmax, APPNP's :math:`\alpha`-mixing) is not counted, for the
dense and the sparse model alike, so ``macs_dense / macs`` is the reduction in multiply–adds.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

__all__ = ["OpCount", "MacCounter"]


@dataclass
class OpCount:
    """One operator's entries and MACs: ``kind`` is ``propagation``, ``transformation`` or ``attention``."""

    layer: str
    kind: str
    kept: int
    total: int
    macs: int
    macs_dense: int
    always_kept: int = 0  # entries that can never be pruned (self-loops)


@dataclass
class MacCounter:
    """Collects :class:`OpCount` rows during one forward pass and summarises them."""

    ops: list[OpCount] = field(default_factory=list)

    def add(self, layer: str, kind: str, kept: int, total: int, macs: int, macs_dense: int,
            always_kept: int = 0) -> None:
        """Record one operator (``always_kept``: entries exempt from pruning, e.g. self-loops)."""
        self.ops.append(OpCount(layer, kind, int(kept), int(total), int(macs), int(macs_dense), int(always_kept)))

    def extend(self, other: "MacCounter") -> None:
        """Append another counter's rows (e.g. a precomputed propagation)."""
        self.ops.extend(other.ops)

    def rows(self) -> list[dict]:
        """The rows as plain dicts."""
        return [asdict(o) for o in self.ops]

    def summary(self) -> dict[str, float]:
        """Totals: MACs by kind, dense MACs, kept/total edge and weight entries, sparsities.

        ``edge_sparsity`` is ``1 − kept/total`` over all propagation entries of all layers (self-loops,
        which are never pruned, included); ``edge_sparsity_offdiag`` excludes the self-loops from both
        counts (the share of *prunable* edges removed); ``weight_sparsity`` likewise over all weight
        entries; ``total_sparsity`` over edges and weights together (self-loops included) and
        ``prunable_sparsity`` over edges and weights without the self-loops.
        """
        def tot(kind, attr):
            return sum(getattr(o, attr) for o in self.ops if o.kind == kind)

        ek, et = tot("propagation", "kept"), tot("propagation", "total")
        wk, wt = tot("transformation", "kept"), tot("transformation", "total")
        ak = tot("propagation", "always_kept")
        macs = sum(o.macs for o in self.ops)
        dense = sum(o.macs_dense for o in self.ops)
        return {
            "macs": macs,
            "macs_dense": dense,
            "macs_propagation": tot("propagation", "macs"),
            "macs_transformation": tot("transformation", "macs"),
            "macs_attention": tot("attention", "macs"),
            "mac_reduction": dense / macs if macs else float("inf"),
            "edges_kept": ek,
            "edges_total": et,
            "weights_kept": wk,
            "weights_total": wt,
            "edge_sparsity": 1.0 - ek / et if et else 0.0,
            "weight_sparsity": 1.0 - wk / wt if wt else 0.0,
            "edge_sparsity_offdiag": 1.0 - (ek - ak) / (et - ak) if et > ak else 0.0,
            "total_sparsity": 1.0 - (ek + wk) / (et + wt) if (et + wt) else 0.0,
            "prunable_sparsity": 1.0 - (ek - ak + wk) / (et - ak + wt) if (et - ak + wt) else 0.0,
        }
