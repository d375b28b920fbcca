"""Synthetic graphs with planted labels for timing at scale (10^5–10^6 nodes, up to 10^7+ edges).

Two generators, both vectorised (no Python loop over edges) and seeded:

* :func:`sbm_graph` — stochastic block model: ``n`` nodes in ``k`` equal blocks; each edge picks a
  uniform source, then with probability ``p_in`` a target in the same block, else a uniform target.
* :func:`powerlaw_graph` — Chung–Lu style: node ``i`` gets weight ``w_i ∝ (i+1)^{-1/(γ-1)}`` so
  expected degrees follow a power law with exponent ``γ``; endpoints are sampled ∝ ``w``; with
  probability ``p_in`` the target is re-drawn from the source's class (planted homophily).

Edges are symmetrised and de-duplicated (self-loops dropped). Features are ``x = μ_{y} + σ·ε`` with
one random Gaussian mean per class, so a GNN can learn the labels. Masks: seeded 50/25/25.
"""
from __future__ import annotations

import torch

from xflow.errors import UnknownName
from xflow.sparsify.datasets import random_split

__all__ = ["sbm_graph", "powerlaw_graph", "make_synthetic"]


def _finish(src, dst, y, n, num_features, num_classes, noise, g):
    from torch_geometric.data import Data

    keep = src != dst
    src, dst = src[keep], dst[keep]
    ei = torch.stack([torch.cat([src, dst]), torch.cat([dst, src])])
    key = torch.unique(ei[0] * n + ei[1])  # sorted, de-duplicated
    ei = torch.stack([key // n, key % n])
    means = torch.randn(num_classes, num_features, generator=g)
    x = means[y] + noise * torch.randn(n, num_features, generator=g)
    data = Data(x=x, edge_index=ei, y=y, num_nodes=n)
    data.name = "synthetic"
    return random_split(data, seed=int(torch.randint(0, 2**31 - 1, (1,), generator=g)))


def sbm_graph(num_nodes: int, avg_degree: float = 10.0, *, num_classes: int = 8, p_in: float = 0.8,
              num_features: int = 32, noise: float = 2.0, seed: int = 0):
    """Stochastic block model with ``num_nodes`` nodes and about ``num_nodes·avg_degree`` directed edges."""
    g = torch.Generator().manual_seed(seed)
    n = int(num_nodes)
    m = max(1, int(n * avg_degree / 2))
    y = torch.arange(n) * num_classes // n
    starts = (torch.arange(num_classes) * n + num_classes - 1) // num_classes
    sizes = torch.bincount(y, minlength=num_classes)
    src = torch.randint(0, n, (m,), generator=g)
    inside = torch.rand(m, generator=g) < p_in
    cls = y[src]
    same = starts[cls] + (torch.rand(m, generator=g) * sizes[cls]).long()
    dst = torch.where(inside, same, torch.randint(0, n, (m,), generator=g))
    return _finish(src, dst, y, n, num_features, num_classes, noise, g)


def powerlaw_graph(num_nodes: int, avg_degree: float = 10.0, *, gamma: float = 2.5, num_classes: int = 8,
                   p_in: float = 0.8, num_features: int = 32, noise: float = 2.0, seed: int = 0):
    """Chung–Lu power-law graph (degree exponent ``gamma``) with planted class homophily ``p_in``."""
    g = torch.Generator().manual_seed(seed)
    n = int(num_nodes)
    m = max(1, int(n * avg_degree / 2))
    w = (torch.arange(n, dtype=torch.float64) + 1.0) ** (-1.0 / (gamma - 1.0))
    cdf = torch.cumsum(w, 0)
    cdf = cdf / cdf[-1]
    y = torch.randint(0, num_classes, (n,), generator=g)

    def draw(k):
        return torch.searchsorted(cdf, torch.rand(k, generator=g, dtype=torch.float64)).clamp_(max=n - 1)

    src, dst = draw(m), draw(m)
    # planted homophily: re-draw the target until it shares the source's class (vectorised retries)
    want = torch.rand(m, generator=g) < p_in
    for _ in range(8):
        bad = want & (y[dst] != y[src])
        if not bool(bad.any()):
            break
        dst[bad] = draw(int(bad.sum()))
    return _finish(src, dst, y, n, num_features, num_classes, noise, g)


def make_synthetic(kind: str, num_nodes: int, avg_degree: float = 10.0, **kw):
    """``kind`` in ``{'sbm', 'powerlaw'}`` → the matching generator."""
    if kind == "sbm":
        return sbm_graph(num_nodes, avg_degree, **kw)
    if kind == "powerlaw":
        return powerlaw_graph(num_nodes, avg_degree, **kw)
    raise UnknownName(f"unknown synthetic graph kind {kind!r}; choose 'sbm' or 'powerlaw'")
