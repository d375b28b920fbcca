r"""``PrunedPropagation``: :math:`H' = \hat A_{\mathcal E_l} H` over the edges Unifews keeps.

For each candidate edge (kept by the previous layer) the message norm
:math:`\lVert m_{uv}\rVert = |\hat A_{vu}|\lVert h_u\rVert` is compared with
:math:`\delta_a` times the mean norm over the candidates; edges below are dropped, self-loops stay
(:func:`xflow.sparsify.pruning.edge_prune_mask`). Only kept edges are gathered and scattered, so
the work (and the counted MACs, :math:`|\mathcal E_l|\cdot F`) shrinks with the mask.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from xflow.sparsify import kernels
from xflow.sparsify.macs import MacCounter
from xflow.sparsify.ops import gcn_normalize, propagate
from xflow.sparsify.pruning import edge_prune_mask, message_norms, self_loop_mask

__all__ = ["Graph", "prepare_graph", "PrunedPropagation", "COMPACT_BELOW"]

#: while masks change every pass (training), the kept edges are compacted (gathered) only when fewer
#: than this share of the edges is kept; above it the full edge list runs with the pruned edges'
#: weights zeroed — the same sums (adding 0·h changes no float), without the gather that would cost
#: more than the few skipped edges save. Frozen masks (inference) are always compacted (cached).
COMPACT_BELOW = 0.7


@dataclass
class Graph:
    """A normalised graph ready for propagation: ``Â`` as (edge_index, edge_weight) with self-loops."""

    edge_index: Tensor
    edge_weight: Tensor
    self_loops: Tensor
    num_nodes: int

    @property
    def num_edges(self) -> int:
        """Entries of ``Â`` (self-loops included)."""
        return int(self.edge_index.shape[1])

    @property
    def device(self) -> torch.device:
        """Where the graph's tensors live."""
        return self.edge_index.device

    def to(self, device: "torch.device | str") -> "Graph":
        """A copy on ``device`` (tensors moved; the same object if already there)."""
        device = torch.device(device)
        if self.edge_index.device == device:
            return self
        return Graph(self.edge_index.to(device), self.edge_weight.to(device), self.self_loops.to(device), self.num_nodes)


def prepare_graph(edge_index: Tensor, num_nodes: int, self_loops: "bool | Tensor" = True) -> Graph:
    r"""Build :class:`Graph` with :math:`\hat A = \tilde D^{-1/2}(A+I)\tilde D^{-1/2}` (``self_loops=True``,
    what the reference code builds for Cora from its ``adj.npz``), :math:`D^{-1/2} A D^{-1/2}`
    (``False``) or self-loops on the nodes of a boolean ``(N,)`` mask (the reference's CiteSeer);
    see :func:`xflow.sparsify.ops.gcn_normalize`. Self-loops are never pruned."""
    ei, w = gcn_normalize(edge_index, num_nodes, self_loops)
    return Graph(ei, w, self_loop_mask(ei), int(num_nodes))


def _fused_ok(h: Tensor, w: Tensor) -> bool:
    """Whether the compiled edge-rule kernels apply (CPU, float32, ``(N, F)`` features, 1-D weights)."""
    if h.device.type != "cpu" or h.dtype != torch.float32 or h.dim() != 2 or w.dim() != 1:
        return False

    return kernels.available()


class PrunedPropagation(nn.Module):
    r"""One propagation step with Unifews edge pruning.

    Args:
        delta_a (float, optional): edge threshold factor :math:`\delta_a` (default: :obj:`0.0`, dense).

    Shapes:
        ``h`` :math:`(N, F)` or :math:`(N, H, F)`; ``edge_weight`` :math:`(E,)` or :math:`(E, H)`;
        ``candidates`` :math:`(E,)` bool → (output like ``h``, kept mask :math:`(E,)`).
    """

    def __init__(self, delta_a: float = 0.0):
        super().__init__()
        self.delta_a = float(delta_a)
        self.mask: Tensor | None = None
        self.frozen = False
        self._kept: tuple | None = None  # (graph edge_index, weight, mask) -> compacted edges, frozen only
        # reference-code evaluation artefact (``node_lock``): with frozen masks, edges into these
        # nodes are used even if pruned (the next layer still inherits only the kept mask)
        self.lock_nodes: Tensor | None = None

    def reset_parameters(self) -> None:
        """Forget the stored mask."""
        self.mask, self.frozen, self._kept = None, False, None

    def freeze(self) -> None:
        """Keep the last computed mask fixed from now on."""
        self.frozen = self.mask is not None
        self._kept = None

    def unfreeze(self) -> None:
        """Recompute the mask at the next forward again (reference schedule: masks per epoch)."""
        self.frozen, self._kept = False, None

    def set_mask(self, mask: Tensor) -> None:
        """Impose an external edge mask (baselines) and freeze it."""
        self.mask, self.frozen, self._kept = mask.to(torch.bool).clone(), True, None

    def _compact(self, graph: Graph, w: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, int]:
        """Kept edges and weights; cached while the mask is frozen and the weights are constant."""
        c = self._kept
        if c is not None and c[0] is graph.edge_index and c[1] is w and c[2] is mask:
            return c[3], c[4], c[5]
        idx = mask.nonzero().view(-1)
        ei, wk = graph.edge_index.index_select(1, idx), w.index_select(0, idx)
        if self.frozen and not w.requires_grad:
            self._kept = (graph.edge_index, w, mask, ei, wk, int(idx.numel()))
        return ei, wk, int(idx.numel())

    @staticmethod
    def _compact_uncached(graph: Graph, w: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, int]:
        idx = mask.nonzero().view(-1)
        return graph.edge_index.index_select(1, idx), w.index_select(0, idx), int(idx.numel())

    def compute_mask(self, h: Tensor, graph: Graph, edge_weight: Tensor, candidates: Tensor | None) -> Tensor:
        """The edge mask for this layer: stored one if frozen, else the Unifews rule on ``h``."""
        if self.frozen and self.mask is not None:
            return self.mask
        cand = (torch.ones(graph.num_edges, dtype=torch.bool, device=graph.edge_index.device)
                if candidates is None else candidates)
        if self.delta_a > 0 and _fused_ok(h, edge_weight):
            mask = kernels.edge_rule(graph.edge_index[0], edge_weight.detach(), kernels.row_norms(h.detach()), cand,
                                     graph.self_loops, self.delta_a)
        elif self.delta_a > 0:
            norms = message_norms(h.detach(), graph.edge_index, edge_weight.detach())
            mask = edge_prune_mask(norms, cand, graph.self_loops, self.delta_a)
        else:
            mask = cand.clone()
        self.mask = mask
        return mask

    def forward(self, h: Tensor, graph: Graph, edge_weight: Tensor | None = None,
                candidates: Tensor | None = None, counter: MacCounter | None = None,
                name: str = "prop") -> tuple[Tensor, Tensor]:
        """Prune (unless frozen) and propagate over kept edges; returns ``(out, kept_mask)``."""
        w = graph.edge_weight if edge_weight is None else edge_weight
        mask = self.compute_mask(h, graph, w, candidates)
        return self.aggregate(h, graph, w, mask, candidates, counter, name), mask

    def used_edges(self, mask: Tensor, graph: Graph, candidates: Tensor | None) -> Tensor:
        """The edges actually aggregated: ``mask``, plus — with frozen masks and ``lock_nodes`` set
        (reference evaluation) — every candidate edge into a locked node."""
        if self.frozen and self.lock_nodes is not None:
            cand = torch.ones_like(mask) if candidates is None else candidates
            return mask | (cand & self.lock_nodes[graph.edge_index[1]])
        return mask

    def aggregate(self, h: Tensor, graph: Graph, w: Tensor, mask: Tensor, candidates: Tensor | None = None,
                  counter: MacCounter | None = None, name: str = "prop") -> Tensor:
        r"""``out[v] = Σ_{(u,v) used} w_uv h_u`` over :meth:`used_edges` (``w`` may be ``(E,)`` or
        per-head ``(E, H)`` for ``h`` of shape ``(N, H, F)``); counts ``|E_l|·F`` MACs for the kept
        mask ``E_l`` — edges restored by an evaluation lock are not counted, as the reference's
        ``cal_flops`` (run without ``node_lock``) does not count them."""
        used = self.used_edges(mask, graph, candidates)
        if not self.frozen and w.dim() == 1 and float(used.sum()) >= COMPACT_BELOW * graph.num_edges:
            ei, wk, kept = graph.edge_index, w * used.to(w.dtype), int(used.sum())
        elif used is mask:
            ei, wk, kept = self._compact(graph, w, used)
        else:
            ei, wk, kept = self._compact_uncached(graph, w, used)
        out = propagate(h, ei, wk, graph.num_nodes, sorted_by_dst=True)
        if counter is not None:
            width = math.prod(h.shape[1:]) if h.dim() > 1 else 1
            n_kept = kept if used is mask else int(mask.sum())
            loops = int((graph.self_loops & mask).sum())
            counter.add(name, "propagation", n_kept, graph.num_edges, n_kept * width, graph.num_edges * width, loops)
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(delta_a={self.delta_a})"
