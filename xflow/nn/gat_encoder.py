"""Graph-attention encoder that embeds a whole tensor graph into one vector."""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.nn import GATv2Conv, global_max_pool, global_mean_pool

__all__ = ["GATEncoder"]


class GATEncoder(nn.Module):
    r"""Graph encoder of X-RLflow: :math:`k` GATv2 message-passing steps and global pooling.

    From `"How Attentive are Graph Attention Networks?" <https://arxiv.org/abs/2105.14491>`_
    (GATv2) as used by `X-RLflow <https://arxiv.org/abs/2304.14698>`_ to embed every candidate
    graph:

    .. math::
        \mathbf{h}^{(0)}_i = \mathbf{W}_\text{in} \mathbf{x}_i, \qquad
        \mathbf{h}^{(l)}_i = \mathbf{h}^{(l-1)}_i + \mathrm{ELU}\Big(
            \sum_{j \in \mathcal{N}(i) \cup \{i\}} \alpha^{(l)}_{ij}
            \mathbf{\Theta}^{(l)} \mathbf{h}^{(l-1)}_j\Big),

    .. math::
        \alpha^{(l)}_{ij} = \operatorname{softmax}_j\Big(\mathbf{a}^{(l)\top}
            \mathrm{LeakyReLU}\big(\mathbf{\Theta}^{(l)}[\mathbf{h}_i \,\Vert\, \mathbf{h}_j
            \,\Vert\, \mathbf{e}_{ji}]\big)\Big),

    .. math::
        \mathbf{z}_G = \mathbf{W}_\text{out}\Big[\tfrac{1}{|V|}\sum_i \mathbf{h}^{(k)}_i
            \,\Vert\, \max_i \mathbf{h}^{(k)}_i\Big]

    where :math:`\mathbf{e}_{ji}` are the edge (tensor-shape) features. With
    ``bidirectional=True`` every dataflow edge is also added reversed, with a direction flag
    appended to :math:`\mathbf{e}`, so information reaches producers as well as consumers.

    Args:
        in_channels (int): node feature size.
        edge_dim (int): edge feature size.
        hidden_channels (int, optional): width of :math:`\mathbf{h}` (default: :obj:`64`).
        out_channels (int, optional): size of :math:`\mathbf{z}_G` (default: :obj:`64`).
        num_layers (int, optional): message-passing steps :math:`k` (default: :obj:`3`).
        heads (int, optional): attention heads, averaged (default: :obj:`2`).
        bidirectional (bool, optional): add reversed edges (default: :obj:`True`).

    Shapes:
        - **input:** node features :math:`(|V|, F_{in})`, edge indices :math:`(2, |E|)`,
          edge features :math:`(|E|, D)`, batch vector :math:`(|V|)`
        - **output:** graph embeddings :math:`(|\mathcal{G}|, F_{out})`
    """

    def __init__(self, in_channels: int, edge_dim: int, hidden_channels: int = 64,
                 out_channels: int = 64, num_layers: int = 3, heads: int = 2,
                 bidirectional: bool = True) -> None:
        super().__init__()
        self.in_channels, self.edge_dim = in_channels, edge_dim
        self.hidden_channels, self.out_channels = hidden_channels, out_channels
        self.num_layers, self.heads, self.bidirectional = num_layers, heads, bidirectional
        e = edge_dim + (1 if bidirectional else 0)
        self.lin_in = nn.Linear(in_channels, hidden_channels)
        self.convs = nn.ModuleList([
            GATv2Conv(hidden_channels, hidden_channels, heads=heads, concat=False, edge_dim=e)
            for _ in range(num_layers)
        ])
        self.norms = nn.ModuleList([nn.LayerNorm(hidden_channels) for _ in range(num_layers)])
        self.lin_out = nn.Linear(2 * hidden_channels, out_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise all weights."""
        self.lin_in.reset_parameters()
        for conv, norm in zip(self.convs, self.norms):
            conv.reset_parameters()
            norm.reset_parameters()
        self.lin_out.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor,
                batch: Tensor | None = None) -> Tensor:
        """Embed each graph of the (batched) input; returns ``(num_graphs, out_channels)``."""
        if batch is None:
            batch = x.new_zeros(x.size(0), dtype=torch.long)
        if self.bidirectional:
            n_e = edge_index.size(1)
            edge_index = torch.cat([edge_index, edge_index.flip(0)], dim=1)
            flag = torch.cat([edge_attr.new_zeros(n_e, 1), edge_attr.new_ones(n_e, 1)])
            edge_attr = torch.cat([torch.cat([edge_attr, edge_attr]), flag], dim=1)
        h = self.lin_in(x)
        for conv, norm in zip(self.convs, self.norms):
            h = norm(h + torch.nn.functional.elu(conv(h, edge_index, edge_attr)))
        pooled = torch.cat([global_mean_pool(h, batch), global_max_pool(h, batch)], dim=-1)
        return self.lin_out(pooled)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
                f"edge_dim={self.edge_dim}, hidden={self.hidden_channels}, "
                f"layers={self.num_layers}, heads={self.heads})")
