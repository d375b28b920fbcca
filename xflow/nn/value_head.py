"""Value head: expected return from the current graph's embedding."""
from __future__ import annotations

from torch import Tensor, nn

__all__ = ["ValueHead"]


class ValueHead(nn.Module):
    r"""State value :math:`V(G) = \mathrm{MLP}(\mathbf{z}_G)` of the current graph.

    Args:
        embed_dim (int): size of the graph embedding.
        hidden_channels (int, optional): MLP width (default: :obj:`64`).

    Shapes:
        - **input:** :math:`(B, F)`
        - **output:** :math:`(B)`
    """

    def __init__(self, embed_dim: int, hidden_channels: int = 64) -> None:
        super().__init__()
        self.embed_dim, self.hidden_channels = embed_dim, hidden_channels
        self.mlp = nn.Sequential(nn.Linear(embed_dim, hidden_channels), nn.Tanh(),
                                 nn.Linear(hidden_channels, 1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Orthogonal init with unit gain on the output (as in cleanrl's critic)."""
        nn.init.orthogonal_(self.mlp[0].weight, 2 ** 0.5)
        nn.init.zeros_(self.mlp[0].bias)
        nn.init.orthogonal_(self.mlp[2].weight, 1.0)
        nn.init.zeros_(self.mlp[2].bias)

    def forward(self, current: Tensor) -> Tensor:
        """Values of a batch of graph embeddings."""
        return self.mlp(current).squeeze(-1)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.embed_dim}, 1, hidden={self.hidden_channels})"
