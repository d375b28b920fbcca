r"""``UnifewsGATConv``: a GAT layer with Unifews weight and edge pruning.

.. math::
    z_u = x_u (W \odot M), \quad
    \alpha_{uv} = \operatorname{softmax}_{u \in \mathcal N_{l-1}(v)}\big(\mathrm{LeakyReLU}(a_s^\top z_u + a_d^\top z_v)\big),
    \quad h'_v = \sum_{u : (u,v) \in \mathcal E_l} \alpha_{uv} z_u

per head. Attention is computed over the edges the previous layer kept (:math:`\mathcal E_{l-1}`);
the message :math:`m_{uv} = \alpha_{uv} z_u` (norm over all heads,
:math:`\lVert m_{uv}\rVert^2 = \sum_h \alpha_{uv,h}^2\lVert z_{u,h}\rVert^2`) is then pruned with the
Unifews edge rule, and the surviving messages are aggregated without re-normalisation (a dropped
message is simply skipped, as in Unifews).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from xflow.sparsify.layers.pruned_linear import PrunedLinear
from xflow.sparsify.layers.pruned_propagation import Graph, PrunedPropagation
from xflow.sparsify.macs import MacCounter

__all__ = ["UnifewsGATConv"]


class UnifewsGATConv(nn.Module):
    r"""Multi-head graph attention with entry-wise pruning.

    Args:
        in_channels (int): input width.
        out_channels (int): width per head :math:`F'`.
        heads (int, optional): number of heads :math:`H` (default: :obj:`1`).
        concat (bool, optional): concatenate heads (else average) (default: :obj:`True`).
        delta_a (float, optional): edge threshold (default: :obj:`0.0`).
        delta_w (float, optional): weight threshold (default: :obj:`0.0`).
        att_dropout (float, optional): dropout on attention coefficients (default: :obj:`0.6`).

    Shapes:
        ``x`` :math:`(N, F_{in})` → :math:`(N, H F')` (concat) or :math:`(N, F')`.
    """

    def __init__(self, in_channels: int, out_channels: int, heads: int = 1, concat: bool = True,
                 delta_a: float = 0.0, delta_w: float = 0.0, att_dropout: float = 0.6):
        super().__init__()
        self.in_channels, self.out_channels, self.heads, self.concat = in_channels, out_channels, heads, concat
        self.att_dropout = att_dropout
        self.lin = PrunedLinear(in_channels, heads * out_channels, delta_w, bias=False)
        self.att_src = nn.Parameter(torch.empty(heads, out_channels))
        self.att_dst = nn.Parameter(torch.empty(heads, out_channels))
        self.bias = nn.Parameter(torch.zeros(heads * out_channels if concat else out_channels))
        self.prop = PrunedPropagation(delta_a)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot attention vectors, zero bias, fresh masks."""
        self.lin.reset_parameters()
        self.prop.reset_parameters()
        a = math.sqrt(6.0 / (self.heads + self.out_channels))
        nn.init.uniform_(self.att_src, -a, a)
        nn.init.uniform_(self.att_dst, -a, a)
        nn.init.zeros_(self.bias)

    def forward(self, x: Tensor, graph: Graph, candidates: Tensor | None = None,
                counter: MacCounter | None = None, name: str = "gat") -> tuple[Tensor, Tensor]:
        """Attention over candidate edges, prune messages, aggregate; returns ``(out, kept_mask)``."""
        from torch_geometric.utils import softmax

        n, h, f = graph.num_nodes, self.heads, self.out_channels
        z = self.lin(x, counter, f"{name}.lin").view(n, h, f)
        a_s = (z * self.att_src).sum(-1)
        a_d = (z * self.att_dst).sum(-1)
        if counter is not None:
            counter.add(f"{name}.att", "attention", 0, 0, 2 * n * h * f, 2 * n * h * f)
        if self.prop.frozen and self.prop.mask is not None:
            cand = self.prop.mask
        else:
            cand = (torch.ones(graph.num_edges, dtype=torch.bool, device=z.device)
                    if candidates is None else candidates)
        idx = cand.nonzero().view(-1)
        src, dst = graph.edge_index[0, idx], graph.edge_index[1, idx]
        e = F.leaky_relu(a_s[src] + a_d[dst], 0.2)
        alpha_c = softmax(e, dst, num_nodes=n)
        alpha_c = F.dropout(alpha_c, self.att_dropout, self.training)
        alpha = z.new_zeros(graph.num_edges, h).index_copy(0, idx, alpha_c)
        out, mask = self.prop(z, graph, alpha, cand, counter, f"{name}.prop")
        out = out.reshape(n, h * f) if self.concat else out.mean(1)
        return out + self.bias, mask

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, heads={self.heads})"
