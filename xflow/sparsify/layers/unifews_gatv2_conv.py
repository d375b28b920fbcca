r"""``UnifewsGATv2Conv``: GATv2 attention with the reference code's Unifews edge rule (``GATv2ConvThr``).

.. math::
    x^l_u = x_u (W_l \odot M_l) + b_l,\quad x^r_v = x_v (W_r \odot M_r) + b_r,\qquad
    e_{uv,h} = a_h^\top \mathrm{LeakyReLU}_{0.2}\big(x^l_{u,h} + x^r_{v,h}\big),

:math:`\alpha_{uv} = \operatorname{softmax}_{u \in \mathcal N_{l-1}(v)}(e_{uv})` over the edges the
previous layer kept (:math:`\mathcal E_{l-1}`), and :math:`h'_v = \sum_{u:(u,v)\in\mathcal E_l}
\alpha_{uv} x^l_u` per head. Edge rule (gdmnl/Unifews ``archs/layers.py``, ``GATv2ConvThr.edge_update``):
edge :math:`(u,v)` is dropped when

.. math::
    \frac{\lVert \alpha_{uv} \rVert_2}{H}\;\lVert x^l_u \rVert \;<\; \delta_a \cdot
    \operatorname{mean}_{(s,t)\in\mathcal E_{l-1}} \lVert x^l_s \rVert

(``‖α‖/H < δ_a · mean‖x_j‖ / ‖x_j‖``; norms over all heads and channels). Self-loops are locked; the
softmax is taken before pruning and the kept coefficients are not renormalised (pruned ones are
zeroed, as the reference does). Both projections get the same per-input-column weight threshold
from the layer input (each with its own ``0.999·max|W|`` cap). This differs from
:class:`~xflow.sparsify.layers.UnifewsGATConv` (GAT v1 with the message-norm rule of GCN).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from xflow.sparsify.layers.pruned_linear import PrunedLinear
from xflow.sparsify.layers.pruned_propagation import Graph, PrunedPropagation
from xflow.sparsify.macs import MacCounter

__all__ = ["UnifewsGATv2Conv", "gatv2_edge_mask"]


@torch.no_grad()
def gatv2_edge_mask(alpha: Tensor, src_norm: Tensor, candidates: Tensor, locked: Tensor, delta_a: float) -> Tensor:
    r"""The reference GATv2 rule on the candidate edges.

    Args:
        alpha: ``(E_c, H)`` attention coefficients of the candidate edges (after softmax).
        src_norm: ``(E_c,)`` :math:`\lVert x^l_u\rVert` of each candidate edge's source.
        candidates: ``(E,)`` bool, which graph edges are candidates (``E_c`` of them, in order).
        locked: ``(E,)`` bool, edges never pruned (self-loops).
        delta_a: threshold factor.

    Returns:
        ``(E,)`` bool kept mask ⊆ ``candidates``.
    """
    if delta_a < 0:
        raise ValueError(f"delta_a must be >= 0, got {delta_a}")
    if delta_a == 0 or src_norm.numel() == 0:
        return candidates.clone()
    score = alpha.norm(dim=1) / alpha.shape[1] * src_norm
    keep_c = score >= delta_a * src_norm.mean()
    mask = torch.zeros_like(candidates)
    mask[candidates.nonzero().view(-1)] = keep_c
    return (mask | locked) & candidates


class UnifewsGATv2Conv(nn.Module):
    r"""Multi-head GATv2 with entry-wise pruning (reference-code rule).

    Args:
        in_channels (int): input width.
        out_channels (int): width per head :math:`C`.
        heads (int, optional): :math:`H` (default: :obj:`1`).
        concat (bool, optional): concatenate heads (else average) (default: :obj:`True`).
        delta_a, delta_w (float, optional): thresholds (default: :obj:`0.0`).
        att_dropout (float, optional): dropout on the coefficients (reference: 0) (default: :obj:`0.0`).
        negative_slope (float, optional): LeakyReLU slope (default: :obj:`0.2`).

    Shapes:
        ``x`` :math:`(N, F_{in})` → (:math:`(N, H C)` or :math:`(N, C)`, kept mask :math:`(E,)`).
    """

    def __init__(self, in_channels: int, out_channels: int, heads: int = 1, concat: bool = True,
                 delta_a: float = 0.0, delta_w: float = 0.0, att_dropout: float = 0.0, negative_slope: float = 0.2):
        super().__init__()
        self.in_channels, self.out_channels, self.heads, self.concat = in_channels, out_channels, heads, concat
        self.att_dropout, self.negative_slope = att_dropout, negative_slope
        self.lin_l = PrunedLinear(in_channels, heads * out_channels, delta_w, bias=True)
        self.lin_r = PrunedLinear(in_channels, heads * out_channels, delta_w, bias=True)
        self.att = nn.Parameter(torch.empty(heads, out_channels))
        self.bias = nn.Parameter(torch.zeros(heads * out_channels if concat else out_channels))
        self.prop = PrunedPropagation(delta_a)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot projections and attention vector, zero biases, fresh masks."""
        self.lin_l.reset_parameters()
        self.lin_r.reset_parameters()
        self.prop.reset_parameters()
        a = math.sqrt(6.0 / (self.heads + self.out_channels))
        nn.init.uniform_(self.att, -a, a)
        nn.init.zeros_(self.bias)

    def forward(self, x: Tensor, graph: Graph, candidates: Tensor | None = None,
                counter: MacCounter | None = None, name: str = "gatv2") -> tuple[Tensor, Tensor]:
        """Attention over the candidate edges, reference edge rule, aggregation; ``(out, kept_mask)``."""
        from torch_geometric.utils import softmax

        n, h, c = graph.num_nodes, self.heads, self.out_channels
        xl = self.lin_l(x, counter, f"{name}.lin_l").view(n, h, c)
        xr = self.lin_r(x, counter, f"{name}.lin_r").view(n, h, c)
        cand = torch.ones(graph.num_edges, dtype=torch.bool, device=xl.device) if candidates is None else candidates
        idx = cand.nonzero().view(-1)
        src, dst = graph.edge_index[0, idx], graph.edge_index[1, idx]
        e = F.leaky_relu(xl.index_select(0, src) + xr.index_select(0, dst), self.negative_slope)
        alpha_c = softmax((e * self.att).sum(-1), dst, num_nodes=n)  # (E_c, H)
        if counter is not None:
            counter.add(f"{name}.att", "attention", 0, 0, int(idx.numel()) * h * c, graph.num_edges * h * c)
        prop = self.prop
        if prop.frozen and prop.mask is not None:
            mask = prop.mask
        elif prop.delta_a > 0:
            src_norm = xl.detach().flatten(1).norm(dim=1).index_select(0, src)
            mask = gatv2_edge_mask(alpha_c.detach(), src_norm, cand, graph.self_loops, prop.delta_a)
            prop.mask = mask
        else:
            mask = cand.clone()
            prop.mask = mask
        alpha_c = F.dropout(alpha_c, self.att_dropout, self.training)
        alpha = xl.new_zeros(graph.num_edges, h).index_copy(0, idx, alpha_c)
        out = prop.aggregate(xl, graph, alpha, mask, cand, counter, f"{name}.prop")
        out = out.reshape(n, h * c) if self.concat else out.mean(1)
        return out + self.bias, mask

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, heads={self.heads})"
