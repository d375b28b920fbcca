"""Policy head that scores each candidate graph against the current one."""
from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["CandidatePolicyHead"]


class CandidatePolicyHead(nn.Module):
    r"""Logit of each candidate graph, as in X-RLflow's policy over rewritten graphs.

    .. math::
        \ell_i = \mathrm{MLP}\big([\mathbf{z}_{c_i} \,\Vert\, \mathbf{z}_{c_i} - \mathbf{z}_G]\big),
        \qquad \ell_\text{stop} = \mathrm{MLP}\big([\mathbf{z}_G \,\Vert\, \mathbf{0}]\big)

    where :math:`\mathbf{z}_{c_i}` embeds candidate :math:`i` and :math:`\mathbf{z}_G` the current
    graph: "stop" is scored as the candidate that changes nothing, so the head compares graphs on
    one scale. The policy is :math:`\pi(a) = \operatorname{softmax}(\ell)` over legal actions.

    Args:
        embed_dim (int): size of the graph embeddings.
        hidden_channels (int, optional): MLP width (default: :obj:`64`).

    Shapes:
        - **input:** candidates :math:`(K, F)`, their current graphs :math:`(K, F)`
        - **output:** logits :math:`(K)`
    """

    def __init__(self, embed_dim: int, hidden_channels: int = 64) -> None:
        super().__init__()
        self.embed_dim, self.hidden_channels = embed_dim, hidden_channels
        self.mlp = nn.Sequential(nn.Linear(2 * embed_dim, hidden_channels), nn.Tanh(),
                                 nn.Linear(hidden_channels, 1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Orthogonal init, small last layer (near-uniform initial policy, as in cleanrl)."""
        nn.init.orthogonal_(self.mlp[0].weight, 2 ** 0.5)
        nn.init.zeros_(self.mlp[0].bias)
        nn.init.orthogonal_(self.mlp[2].weight, 0.01)
        nn.init.zeros_(self.mlp[2].bias)

    def forward(self, candidate: Tensor, current: Tensor) -> Tensor:
        """Logits of candidates given the embedding of the graph each was derived from."""
        return self.mlp(torch.cat([candidate, candidate - current], dim=-1)).squeeze(-1)

    def stop(self, current: Tensor) -> Tensor:
        """Logit of the stop action for each current graph."""
        return self.forward(current, current)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.embed_dim}, 1, hidden={self.hidden_channels})"
