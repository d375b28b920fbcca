"""Propagation kernels that only touch the edges they are given (so pruned edges cost nothing).

* :func:`gcn_normalize` — ``Â = D^{-1/2}(A + I)D^{-1/2}`` as (edge_index, edge_weight) via PyG's ``gcn_norm``.
* :func:`propagate` — gather–scatter ``out[v] += w_uv · h[u]`` over the given edges (autograd-friendly).
* :func:`propagate_masked` — the same over ``mask``-selected edges only (compacts first).
* :func:`csr_adjacency` / :func:`spmm_csr` — a CSR matrix of kept edges and ``torch.sparse.mm`` (inference).
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["gcn_normalize", "propagate", "propagate_masked", "csr_adjacency", "spmm_csr"]


def gcn_normalize(edge_index: Tensor, num_nodes: int) -> tuple[Tensor, Tensor]:
    r"""Symmetric GCN normalisation with self-loops: :math:`\hat A = \tilde D^{-1/2}(A+I)\tilde D^{-1/2}`."""
    from torch_geometric.nn.conv.gcn_conv import gcn_norm

    ei, w = gcn_norm(edge_index, None, num_nodes, add_self_loops=True)
    return ei, w


def propagate(h: Tensor, edge_index: Tensor, edge_weight: Tensor, num_nodes: int) -> Tensor:
    """``out[v] = Σ_{(u,v)} w_uv · h[u]`` (``edge_index[0]`` = source). ``h`` is ``(N, F)`` or ``(N, H, F)``."""
    src, dst = edge_index[0], edge_index[1]
    w = edge_weight
    msg = h.index_select(0, src)
    msg = msg * (w.view(-1, *([1] * (h.dim() - 1))) if w.dim() == 1 else w.unsqueeze(-1))
    out = h.new_zeros((num_nodes,) + tuple(h.shape[1:]))
    return out.index_add_(0, dst, msg)


def propagate_masked(h: Tensor, edge_index: Tensor, edge_weight: Tensor, mask: Tensor, num_nodes: int) -> Tensor:
    """:func:`propagate` restricted to edges where ``mask`` is true (work ∝ kept edges)."""
    idx = mask.nonzero().view(-1)
    return propagate(h, edge_index.index_select(1, idx), edge_weight.index_select(0, idx), num_nodes)


def csr_adjacency(edge_index: Tensor, edge_weight: Tensor, num_nodes: int, mask: Tensor | None = None) -> Tensor:
    """Sparse CSR matrix ``M[v, u] = w_uv`` of the (kept) edges, for ``out = M @ h``."""
    if mask is not None:
        idx = mask.nonzero().view(-1)
        edge_index, edge_weight = edge_index.index_select(1, idx), edge_weight.index_select(0, idx)
    coo = torch.sparse_coo_tensor(torch.stack([edge_index[1], edge_index[0]]), edge_weight,
                                  (num_nodes, num_nodes)).coalesce()
    return coo.to_sparse_csr()


def spmm_csr(adj: Tensor, h: Tensor) -> Tensor:
    """``adj @ h`` with a CSR ``adj`` (inference kernel; no gradient to the values)."""
    return torch.sparse.mm(adj, h)
