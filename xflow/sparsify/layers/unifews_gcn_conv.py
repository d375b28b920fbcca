r"""``UnifewsGCNConv``: a GCN layer with Unifews weight and edge pruning.

.. math::
    H^{(l+1)} = \hat A_{\mathcal E_l}\,\big(H^{(l)} (W^{(l)} \odot M^{(l)})\big) + b^{(l)}

Transformation first (weight mask :math:`M^{(l)}` from :class:`PrunedLinear`), then propagation of
the :math:`F_{out}`-wide result over the kept edges :math:`\mathcal E_l \subseteq \mathcal E_{l-1}`,
where the message of edge :math:`(u,v)` is :math:`m_{uv} = \hat A_{vu} (H W)_u`. With
:math:`\delta_a = \delta_w = 0` this is exactly PyG's ``GCNConv`` (tested).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from xflow.sparsify.layers.pruned_linear import PrunedLinear
from xflow.sparsify.layers.pruned_propagation import Graph, PrunedPropagation
from xflow.sparsify.macs import MacCounter

__all__ = ["UnifewsGCNConv"]


class UnifewsGCNConv(nn.Module):
    r"""GCN convolution with entry-wise pruning.

    Args:
        in_channels (int): input width.
        out_channels (int): output width.
        delta_a (float, optional): edge threshold :math:`\delta_a` (default: :obj:`0.0`).
        delta_w (float, optional): weight threshold :math:`\delta_w` (default: :obj:`0.0`).

    Shapes:
        ``x`` :math:`(N, F_{in})`, candidates :math:`(E,)` → (:math:`(N, F_{out})`, kept :math:`(E,)`).
    """

    def __init__(self, in_channels: int, out_channels: int, delta_a: float = 0.0, delta_w: float = 0.0):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.lin = PrunedLinear(in_channels, out_channels, delta_w, bias=False)
        self.prop = PrunedPropagation(delta_a)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Reset weights, bias and masks."""
        self.lin.reset_parameters()
        self.prop.reset_parameters()
        nn.init.zeros_(self.bias)

    def forward(self, x: Tensor, graph: Graph, candidates: Tensor | None = None,
                counter: MacCounter | None = None, name: str = "gcn", edge_weight: Tensor | None = None
                ) -> tuple[Tensor, Tensor]:
        """Transform, prune edges, propagate; returns ``(out, kept_edge_mask)``."""
        h = self.lin(x, counter, f"{name}.lin")
        out, mask = self.prop(h, graph, edge_weight, candidates, counter, f"{name}.prop")
        return out + self.bias, mask

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels})"
