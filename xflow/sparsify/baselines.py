r"""Baselines at the same sparsity levels and seeds as Unifews.

* :func:`random_edge_mask` / :func:`random_weight_masks` — uniform random dropping.
* :func:`dspar_edge_mask` — DSpar-style degree-based sampling: edge :math:`(u,v)` is kept with
  probability :math:`\propto 1/d_u + 1/d_v` (sampled without replacement via Gumbel top-k), so edges
  between low-degree nodes survive and hub edges go.
* :func:`train_ugs` — UGS-style lottery ticket: a learnable adjacency mask (one score per edge,
  multiplied into :math:`\hat A`, L1-penalised) is trained with the weights; after each round the
  lowest-score edges and lowest-:math:`|W|` weights are pruned and the weights rewound to their
  initialisation. The issue suggests 5% of edges and 20% of weights per round; here the number of
  rounds is set by the weight target at 20%/round (capped by ``max_rounds``) and the edge share per
  round is chosen so both targets are met in the same last round
  (:math:`p_e = 1 - (1-s_e)^{1/R}`).

Edge sparsity targets are measured like :meth:`MacCounter.summary` does: over all entries of
:math:`\hat A` (self-loops are never dropped, so targets above the non-self-loop share are clipped).
The same mask is used in every layer/hop.
"""
from __future__ import annotations

import copy
import math

import torch
from torch import Tensor, nn

from xflow.errors import UnknownName
from xflow.sparsify.layers import Graph
from xflow.sparsify.models import GCN, SparseGNN
from xflow.sparsify.train import train_model

__all__ = ["random_edge_mask", "dspar_edge_mask", "random_weight_masks", "magnitude_weight_masks",
           "apply_baseline", "train_ugs", "BASELINES"]

BASELINES = ("random", "dspar", "ugs")


def _keep_count(graph: Graph, sparsity: float) -> int:
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"edge sparsity must be in [0, 1), got {sparsity}")
    n_loops = int(graph.self_loops.sum())
    want = int(round((1.0 - sparsity) * graph.num_edges))
    return max(0, min(graph.num_edges - n_loops, want - n_loops))


def _mask_from_scores(graph: Graph, scores: Tensor, k: int) -> Tensor:
    mask = graph.self_loops.clone()
    cand = (~graph.self_loops).nonzero().view(-1)
    scores = scores.to(mask.device)
    if k > 0:
        top = torch.topk(scores[cand], k).indices
        mask[cand[top]] = True
    return mask


def random_edge_mask(graph: Graph, sparsity: float, seed: int = 0) -> Tensor:
    """Keep a uniformly random set of non-self-loop edges so that ``sparsity`` of ``Â``'s entries go."""
    g = torch.Generator().manual_seed(seed)
    return _mask_from_scores(graph, torch.rand(graph.num_edges, generator=g), _keep_count(graph, sparsity))


def dspar_edge_mask(graph: Graph, sparsity: float, seed: int = 0) -> Tensor:
    r"""DSpar-style: sample edges without replacement with probability :math:`\propto 1/d_u + 1/d_v`."""
    g = torch.Generator().manual_seed(seed)
    src, dst = graph.edge_index.cpu()
    off = ~graph.self_loops.cpu()
    deg = torch.bincount(src[off], minlength=graph.num_nodes).clamp(min=1).float()
    p = 1.0 / deg[src] + 1.0 / deg[dst]
    gumbel = -torch.log(-torch.log(torch.rand(graph.num_edges, generator=g).clamp(1e-12, 1 - 1e-12)))
    return _mask_from_scores(graph, p.log() + gumbel, _keep_count(graph, sparsity))


def random_weight_masks(model: SparseGNN, sparsity: float, seed: int = 0) -> list[Tensor]:
    """One mask per pruned linear layer with exactly ``round(sparsity·numel)`` random entries dropped."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"weight sparsity must be in [0, 1), got {sparsity}")
    g = torch.Generator().manual_seed(seed + 1)
    out = []
    for lin in model.linears():
        n = lin.weight.numel()
        keep = n - int(round(sparsity * n))
        m = torch.zeros(n, dtype=torch.bool)
        m[torch.randperm(n, generator=g)[:keep]] = True
        out.append(m.view_as(lin.weight))
    return out


def magnitude_weight_masks(model: SparseGNN, keep_fracs: list[float], current: list[Tensor]) -> list[Tensor]:
    """Keep the ``keep_frac`` largest-|W| entries among those ``current`` keeps, per layer."""
    out = []
    for lin, frac, cur in zip(model.linears(), keep_fracs, current):
        n = lin.weight.numel()
        k = max(1, int(round(frac * n)))
        score = lin.weight.detach().abs().masked_fill(~cur, -1.0).view(-1)
        m = torch.zeros(n, dtype=torch.bool)
        m[torch.topk(score, k).indices] = True
        out.append(m.view_as(lin.weight))
    return out


def apply_baseline(method: str, model: SparseGNN, graph: Graph, edge_sparsity: float, weight_sparsity: float,
                   seed: int = 0) -> None:
    """Impose the fixed masks of baseline ``random`` or ``dspar`` (weights: random in both)."""
    if method == "random":
        em = random_edge_mask(graph, edge_sparsity, seed)
    elif method == "dspar":
        em = dspar_edge_mask(graph, edge_sparsity, seed)
    else:
        raise UnknownName(f"unknown one-shot baseline {method!r}; choose 'random' or 'dspar' (or 'ugs')")
    dev = graph.device
    model.set_masks([em.to(dev)] * len(model.propagations()),
                    [m.to(dev) for m in random_weight_masks(model, weight_sparsity, seed)])


def train_ugs(model: GCN, data, graph: Graph, *, edge_sparsity: float, weight_sparsity: float,
              epochs: int = 200, round_epochs: int | None = None, lr: float = 0.01, weight_decay: float = 5e-4,
              l1: float = 1e-4, max_rounds: int = 5) -> dict:
    """UGS-style iterative pruning, then a final training run on the winning ticket; returns metrics."""
    if not isinstance(model, GCN):
        raise UnknownName("the UGS baseline needs the learnable adjacency mask of model 'gcn'")
    rounds = 1 if weight_sparsity <= 0 else math.ceil(math.log(1 - weight_sparsity) / math.log(0.8))
    rounds = max(1, min(max_rounds, rounds))
    round_epochs = round_epochs or max(1, epochs // 2)
    init = copy.deepcopy(model.state_dict())
    n_ns = int((~graph.self_loops).sum())
    keep_e_final = _keep_count(graph, edge_sparsity) / max(1, n_ns)
    edge_mask = torch.ones(graph.num_edges, dtype=torch.bool, device=graph.device)
    w_masks = [torch.ones_like(lin.weight, dtype=torch.bool) for lin in model.linears()]
    for r in range(1, rounds + 1):
        model.edge_scale = None
        model.load_state_dict(init)
        model.set_masks([edge_mask] * len(model.propagations()), w_masks)
        model.edge_scale = nn.Parameter(torch.ones(graph.num_edges, device=graph.device))

        def penalty(m, em=edge_mask):
            return l1 * m.edge_scale[em].abs().sum()

        train_model(model, data, graph, epochs=round_epochs, lr=lr, weight_decay=weight_decay,
                    freeze_at=0, extra_loss=penalty, infer_repeats=1)
        frac = (1 - weight_sparsity) ** (r / rounds)
        w_masks = magnitude_weight_masks(model, [frac] * len(w_masks), w_masks)
        k = int(round(n_ns * keep_e_final ** (r / rounds)))
        score = model.edge_scale.detach().abs().masked_fill(~edge_mask, -1.0)
        edge_mask = _mask_from_scores(graph, score, k)
    model.edge_scale = None
    model.load_state_dict(init)
    model.set_masks([edge_mask] * len(model.propagations()), w_masks)
    out = train_model(model, data, graph, epochs=epochs, lr=lr, weight_decay=weight_decay, freeze_at=0)
    out["ugs_rounds"] = rounds
    return out
