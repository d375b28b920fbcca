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
from xflow.sparsify.ops import csr_rows, gcn_normalize, propagate
from xflow.sparsify.pruning import edge_prune_mask, message_norms, self_loop_mask

__all__ = ["Graph", "prepare_graph", "PrunedPropagation", "COMPACT_EDGE_COST", "ONTHEFLY_ABOVE", "compact_pays"]

#: while masks change every pass (training), the kept edges are compacted (gathered) only when it
#: pays: gathering costs about this many edge-feature multiply-adds of propagation (forward +
#: backward) per edge of the graph — measured on one core with thread CPU time: 18 ns per edge to
#: compact vs 0.9–7 ns per edge-feature for propagation at F = 512…7 on SBM graphs of 2.5·10³ and
#: 5·10⁴ nodes (ratio 2.5–22; the largest is taken). So a layer of width F compacts when the pruned
#: share p of its edges satisfies ``p·F ≥ COMPACT_EDGE_COST`` (F = 512: p ≥ 5 %; F = 7: never below
#: the 100 % it cannot reach, i.e. ≥ 24/F); below it the full edge list runs with the pruned edges'
#: weights zeroed — the same sums (adding 0·h changes no float). Frozen masks (inference) are always
#: compacted (cached).
COMPACT_EDGE_COST = 24.0

#: while masks change every pass, the rule runs inside the aggregation pass (no separate mask pass,
#: no gather, a kept-edges-only backward) when the layer pruned at least this share of its edges at
#: its previous pass (masks move slowly from epoch to epoch); below it the per-edge test costs more
#: than the few skipped edges save and the mask is computed first, then aggregated (zero-weighted or
#: compacted, see :data:`COMPACT_EDGE_COST`). Measured on one core (thread CPU time, a shared
#: machine): on SBM graphs of 5·10⁴ nodes at F = 128 and 16 the fused pass ties with the
#: mask-then-aggregate path at 6–22 % pruned and is faster from ~38 % (1.4× at 48 %, 2.5× at 73 %).
#: Both paths give the same mask and the same sums (tested).
ONTHEFLY_ABOVE = 0.15


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


def compact_pays(kept: int, num_edges: int, width: int) -> bool:
    """Whether gathering the ``kept`` of ``num_edges`` edges before a width-``width`` propagation
    costs less than it saves (break-even :data:`COMPACT_EDGE_COST`)."""
    return (num_edges - kept) * max(1, int(width)) >= COMPACT_EDGE_COST * num_edges


def _fused_ok(h: Tensor, w: Tensor) -> bool:
    """Whether the compiled edge-rule kernels apply (CPU, float32, ``(N, F)`` features, 1-D weights)."""
    if h.device.type != "cpu" or h.dtype != torch.float32 or h.dim() != 2 or w.dim() != 1:
        return False

    return kernels.available()


class _PruneRowsFn(torch.autograd.Function):
    """Training-time pruned propagation on the compiled kernels, the edge rule applied inside the
    aggregation pass (:func:`xflow.sparsify.kernels.prune_spmm`): ``(out, keep)``; the backward
    scatters over the kept edges only. No gather of kept edges, no separate mask pass."""

    @staticmethod
    def forward(ctx, h, ptr, src, dst, w, nrm, cand, loops, thr):  # noqa: D102 - autograd protocol
        out, keep = kernels.prune_spmm(ptr, src, w, nrm, cand, loops, thr, h)
        ctx.save_for_backward(src, dst, w, keep)
        ctx.n = h.shape[0]
        ctx.mark_non_differentiable(keep)
        return out, keep

    @staticmethod
    def backward(ctx, g, _gkeep):  # noqa: D102
        src, dst, w, keep = ctx.saved_tensors
        gh = kernels.scatter_rows_keep(ctx.n, src, dst, w, keep, g.contiguous()) if ctx.needs_input_grad[0] else None
        return gh, None, None, None, None, None, None, None, None


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
        self._graph_rows: tuple | None = None  # (graph edge_index, CSR row pointer, src, dst, loops)
        self._last_pruned: float | None = None  # share of edges pruned at the previous training pass
        # reference-code evaluation artefact (``node_lock``): with frozen masks, edges into these
        # nodes are used even if pruned (the next layer still inherits only the kept mask)
        self.lock_nodes: Tensor | None = None

    def reset_parameters(self) -> None:
        """Forget the stored mask."""
        self.mask, self.frozen, self._kept, self._last_pruned = None, False, None, None

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
        if (not self.frozen and self.delta_a > 0 and _fused_ok(h, w) and h.layout == torch.strided
                and not (w.requires_grad and torch.is_grad_enabled())
                and (self._last_pruned is None or self._last_pruned >= ONTHEFLY_ABOVE)):
            out, keep = self._forward_onthefly(h, graph, w, candidates, counter, name)
        else:
            keep = self.compute_mask(h, graph, w, candidates)
            out = self.aggregate(h, graph, w, keep, candidates, counter, name)
        if not self.frozen:
            self._last_pruned = 1.0 - float(keep.sum()) / max(1, graph.num_edges)
        return out, keep

    def _rows(self, graph: Graph) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(row pointer, source, target, self-loop flags as uint8)`` of the graph (cached per graph)."""
        c = self._graph_rows
        if c is None or c[0] is not graph.edge_index:
            ei = graph.edge_index
            c = (ei, csr_rows(ei[1], graph.num_nodes), ei[0].contiguous(), ei[1].contiguous(),
                 graph.self_loops.to(torch.uint8))
            self._graph_rows = c
        return c[1], c[2], c[3], c[4]

    def _forward_onthefly(self, h: Tensor, graph: Graph, w: Tensor, candidates: Tensor | None,
                          counter: MacCounter | None, name: str) -> tuple[Tensor, Tensor]:
        """Training with masks recomputed: rule and aggregation in one pass over the edges (the same
        mask as :meth:`compute_mask`, the same sums as :meth:`aggregate`), work ∝ kept edges."""
        ptr, src, dst, loops = self._rows(graph)
        wd = w.detach().contiguous()
        cand = (torch.ones(graph.num_edges, dtype=torch.uint8) if candidates is None
                else candidates.view(torch.uint8) if candidates.dtype == torch.bool else candidates.to(torch.uint8))
        nrm = kernels.row_norms(h.detach())
        thr = kernels.edge_threshold(src, wd, nrm, cand, self.delta_a)
        out, keep = _PruneRowsFn.apply(h.contiguous(), ptr, src, dst, wd, nrm, cand, loops, thr)
        self.mask = keep
        if counter is not None:
            width = math.prod(h.shape[1:])
            n_kept, loops_kept = int(keep.sum()), int((graph.self_loops & keep).sum())
            counter.add(name, "propagation", n_kept, graph.num_edges, n_kept * width, graph.num_edges * width,
                        loops_kept)
        return out, keep

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
        width = math.prod(h.shape[1:]) if h.dim() > 1 else 1
        n_used = int(used.sum())
        if not self.frozen and w.dim() == 1 and not compact_pays(n_used, graph.num_edges, width):
            ei, wk, kept = graph.edge_index, w * used.to(w.dtype), n_used
        elif used is mask:
            ei, wk, kept = self._compact(graph, w, used)
        else:
            ei, wk, kept = self._compact_uncached(graph, w, used)
        out = propagate(h, ei, wk, graph.num_nodes, sorted_by_dst=True)
        if counter is not None:
            n_kept = kept if used is mask else int(mask.sum())
            loops = int((graph.self_loops & mask).sum())
            counter.add(name, "propagation", n_kept, graph.num_edges, n_kept * width, graph.num_edges * width, loops)
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(delta_a={self.delta_a})"
