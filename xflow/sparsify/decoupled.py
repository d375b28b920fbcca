r"""Decoupled models as in the paper and the reference code: per-feature push propagation with absolute
thresholds, then a mini-batch MLP (SGC and APPNP; gdmnl/Unifews ``precompute/algprop.cpp``,
``run_mb.py``, ``archs/models.py:MLP``).

Propagation (``A2prop``, read from the C++; rewritten here vectorised over nodes and features)
---------------------------------------------------------------------------------------------
Every feature column :math:`f` is propagated on its own over :math:`L` hops (20 in the paper) on the
graph's rows, each source's neighbours sorted by ascending degree (``adj_el.bin``); ``d_v`` counts the
row's self-loop, :math:`\rho = 1/2` (``rrz``). The absolute threshold of a feature is

.. math::
    \delta_f^{\pm} = \frac{\delta_a}{1-\alpha}\sum_{u:\ \pm x_f(u) > 0} x_f(u)\, d_u^{\rho},

and one hop, with residue :math:`r` (initially :math:`x_f`), for every node :math:`u` with
:math:`|r_u| > |\delta_f|` (``thr = r_u / δ_f > 1``):

* **deterministic pushes** to the neighbours :math:`v` with :math:`d_v^{1-\rho} < r_u/\delta_f` — a
  prefix of the degree-sorted list: SGC adds :math:`r_u / d_v`, APPNP adds
  :math:`(1-\alpha)\, r_u\, d_u^{-\rho} d_v^{-(1-\rho)}` (and moves :math:`\alpha r_u` into the
  estimate);
* **random pushes** (AGP-style rounding) to the following neighbours with
  :math:`d_v^{1-\rho} < (r_u/\delta_f)/U`, :math:`U \sim \mathcal U(0,1]`, each adding the quantum
  :math:`\delta_f\, d_v^{-(1-\rho)}`;
* **progressive pruning**: the neighbour list of :math:`u` used at later hops is cut to the middle
  of the deterministic and random stops (``plshort``), and the random range to the middle of the
  random stop and the row end (``plshort2``), per feature;
* nodes below the threshold push nothing: APPNP absorbs their residue into the estimate; SGC keeps
  :math:`r_u` at :math:`u` (``rcurr(u) += old`` at every hop, for every node).

So with :math:`\delta_a = 0` the reference's *thresholded SGC* computes
:math:`(I + D^{-1}\tilde A)^L x` — a lazy random walk — while its dense SGC (``feat_ori``)
computes :math:`(D^{-1}\tilde A)^L x`; APPNP (``gbp``) in both cases
:math:`\sum_{l<L}\alpha(1-\alpha)^l T^l x + (1-\alpha)^L T^L x`, :math:`T = D^{-1/2}\tilde A D^{-1/2}`.
The number of pushes is the propagation MAC count (dense: :math:`L\cdot m\cdot F`); "edge sparsity"
is :math:`1 - \text{pushes} / (L m F)`.

Training (``run_mb.py``)
------------------------
The propagated features are standardised with the training nodes' mean and standard deviation, then
a 2-layer MLP (``Linear → ReLU → BatchNorm(momentum 0.1) → Dropout(0.5) → Linear``, hidden 512) is
trained on mini-batches of 512 shuffled training nodes, Adam lr 0.01, weight decay 1e-5, 200 epochs,
LR halved on a 15-epoch validation plateau; weight masks follow the Unifews rule on the first batch of
each epoch (recomputed in the first half, cumulative in the second), test accuracy of the
best-validation epoch.
"""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from xflow.errors import UnknownName
from xflow.sparsify import kernels
from xflow.sparsify.layers import Graph, PrunedLinear
from xflow.sparsify.macs import MacCounter
from xflow.sparsify.ops import dropout_any

__all__ = ["PushGraph", "push_graph", "propagate_dense", "propagate_push", "delta_for_push_sparsity",
           "DecoupledMLP", "standardize", "train_mlp_minibatch", "run_decoupled", "KINDS"]

log = logging.getLogger(__name__)

KINDS = ("sgc", "appnp")
RHO = 0.5  # ``rrz``: right normalisation exponent (left: 1 - rho)


@dataclass
class PushGraph:
    """Rows of the propagation graph in the reference's order: ``nbr[ptr[u]:ptr[u+1]]`` are the
    neighbours of ``u`` (its self-loop included if it has one), sorted by ascending degree."""

    ptr: Tensor  # (n+1,) long
    nbr: Tensor  # (m,) long
    src: Tensor  # (m,) long, the row of each slot
    pos: Tensor  # (m,) long, the slot's position within its row
    deg: Tensor  # (n,) float, row lengths (≥ 1)

    @property
    def num_nodes(self) -> int:
        """Nodes."""
        return int(self.ptr.numel() - 1)

    @property
    def num_entries(self) -> int:
        """Entries (edges both ways plus self-loops), the reference's ``m``."""
        return int(self.nbr.numel())


def push_graph(graph: Graph) -> PushGraph:
    """The :class:`PushGraph` of a prepared :class:`~xflow.sparsify.layers.Graph` (its entries,
    self-loops included, without the normalisation weights)."""
    n = graph.num_nodes
    src, dst = graph.edge_index[0].cpu(), graph.edge_index[1].cpu()
    counts = torch.bincount(src, minlength=n)
    deg = counts.clamp(min=1).to(torch.float64)
    # sort each source's neighbours by the neighbour's degree (stable: ties keep neighbour-id order)
    key = src.to(torch.float64) * (float(counts.max()) + 2.0) + counts[dst].to(torch.float64)
    order = torch.argsort(key, stable=True)
    s, v = src[order], dst[order]
    ptr = torch.zeros(n + 1, dtype=torch.long)
    ptr[1:] = torch.cumsum(counts, 0)
    pos = torch.arange(s.numel()) - ptr[s]
    return PushGraph(ptr, v, s, pos, deg.to(torch.float32))


def _thresholds(x: Tensor, deg: Tensor, delta: float, alpha: float) -> tuple[Tensor, Tensor]:
    """``(δ⁺_f, δ⁻_f)`` per feature (``dlt_p``, ``dlt_n`` in ``A2prop::compute``)."""
    w = deg.pow(RHO)[:, None]
    pos = (x.clamp(min=0) * w).sum(0)
    neg = (x.clamp(max=0) * w).sum(0)
    pos = torch.where(pos == 0, torch.full_like(pos, 1e-12), pos)
    neg = torch.where(neg == 0, torch.full_like(neg, -1e-12), neg)
    scale = delta / (1.0 - alpha)
    return pos * scale, neg * scale


def propagate_dense(x: Tensor, pg: PushGraph, hops: int, kind: str = "sgc", alpha: float = 0.1) -> tuple[Tensor, int]:
    r"""The reference's unthresholded propagation (``feat_ori``): SGC :math:`(D^{-1}\tilde A)^L x`,
    APPNP :math:`\sum_{l<L}\alpha(1-\alpha)^l T^l x + (1-\alpha)^L T^L x`; returns ``(P, L·m·F)``."""
    if kind not in KINDS:
        raise UnknownName(f"unknown decoupled model {kind!r}; choose one of {list(KINDS)}")
    n = pg.num_nodes
    with torch.no_grad():
        if kind == "sgc":
            w = 1.0 / pg.deg[pg.nbr]
        else:
            w = (1.0 - alpha) * pg.deg[pg.src].pow(-RHO) * pg.deg[pg.nbr].pow(-(1.0 - RHO))
        adj = torch.sparse_coo_tensor(torch.stack([pg.nbr, pg.src]), w.to(x.dtype), (n, n)).coalesce().to_sparse_csr()
        r = x
        acc = torch.zeros_like(x)
        for _ in range(hops):
            if kind == "appnp":
                acc = acc + alpha * r
            r = torch.sparse.mm(adj, r)
        out = acc + r
    return out, int(hops) * pg.num_entries * int(x.shape[1])


def propagate_push(x: Tensor, pg: PushGraph, delta: float, hops: int, kind: str = "sgc", alpha: float = 0.1,
                   seed: int = 0, randomized: bool = True, backend: str = "auto") -> tuple[Tensor, int]:
    """Thresholded per-feature push (``feat_chn``, see the module docstring); returns ``(P, pushes)``.

    ``backend``: ``"kernel"`` (compiled loop, :mod:`xflow.sparsify.kernels`), ``"torch"``
    (vectorised over nodes and features; ~100× slower, the tests' reference) or ``"auto"`` (the
    kernel when it builds). Both follow the same rule; the random pushes draw from different
    generators (splitmix64 per feature vs ``torch.rand``), so only ``randomized=False`` or
    ``delta=0`` runs are bit-comparable. ``randomized=False`` drops the random pushes (ablation).
    """
    if kind not in KINDS:
        raise UnknownName(f"unknown decoupled model {kind!r}; choose one of {list(KINDS)}")
    if delta < 0:
        raise ValueError(f"delta_a must be >= 0, got {delta}")

    if backend not in ("auto", "kernel", "torch"):
        raise ValueError(f"backend must be 'auto', 'kernel' or 'torch', got {backend!r}")
    if backend == "kernel" or (backend == "auto" and kernels.available()):
        a = float(alpha) if kind == "appnp" else 0.0
        return kernels.push(pg.ptr, pg.nbr, pg.deg, x.detach().float(), float(delta), int(hops), a,
                            kind == "appnp", randomized, int(seed), RHO)
    return _propagate_push_torch(x, pg, delta, hops, kind, alpha, seed, randomized=randomized)


def _propagate_push_torch(x: Tensor, pg: PushGraph, delta: float, hops: int, kind: str = "sgc", alpha: float = 0.1,
                          seed: int = 0, chunk: int | None = None, randomized: bool = True) -> tuple[Tensor, int]:
    """Vectorised twin of the push kernel (``chunk`` features at a time, default ~10⁷ entry-feature
    pairs per step)."""
    if kind not in KINDS:
        raise UnknownName(f"unknown decoupled model {kind!r}; choose one of {list(KINDS)}")
    if delta < 0:
        raise ValueError(f"delta_a must be >= 0, got {delta}")
    x = x.detach().to(torch.float32)
    n, f_all = x.shape
    a = float(alpha) if kind == "appnp" else 0.0
    acc_mode = kind == "appnp"
    deg = pg.deg
    dega = deg.pow(1.0 - RHO)
    dinva = 1.0 / dega
    dinvb = deg.pow(-RHO)
    row_len = pg.ptr[1:] - pg.ptr[:-1]
    big = float(dega.max()) + 2.0
    seq = pg.src.to(torch.float64) * big + dega[pg.nbr].to(torch.float64)
    base = pg.src.to(torch.float64) * big
    m = pg.num_entries
    if chunk is None:
        chunk = max(1, min(f_all, int(1e7 // max(1, m))))
    gen = torch.Generator().manual_seed(int(seed))
    dp_all, dn_all = _thresholds(x, deg, float(delta), a)
    out = torch.empty_like(x)
    pushes = 0
    node_base = torch.arange(n, dtype=torch.float64) * big
    coef_det = (1.0 / deg[pg.nbr]) if not acc_mode else ((1.0 - a) * dinvb[pg.src] * dinva[pg.nbr])
    for f0 in range(0, f_all, chunk):
        f1 = min(f_all, f0 + chunk)
        r = x[:, f0:f1].clone()
        dp, dn = dp_all[f0:f1], dn_all[f0:f1]
        est = torch.zeros_like(r)
        fc = f1 - f0
        short = row_len[:, None].expand(n, fc).clone()   # plshort: usable row length per (u, f)
        short2 = row_len[:, None].expand(n, fc).clone()  # plshort2
        for _ in range(hops):
            active = (r > dp) | (r < dn)
            if not bool(active.any()):
                if acc_mode:
                    est = est + r
                    r = torch.zeros_like(r)
                break
            thr = torch.where(r > 0, r / dp, r / dn)  # > 1 where active
            thr = torch.where(active, thr, torch.zeros_like(thr))
            q = node_base[:, None] + thr.to(torch.float64).clamp(0, big - 1.0)
            cnt_lt = torch.searchsorted(seq, q.reshape(-1), side="left").view(n, fc) - pg.ptr[:-1, None]
            det = torch.minimum(cnt_lt, short)
            det = torch.where(active, det, torch.zeros_like(det))
            if randomized:
                u_rand = torch.rand(n, fc, generator=gen, dtype=torch.float64).clamp_(min=1e-12)
                q2 = node_base[:, None] + (thr.to(torch.float64) / u_rand).clamp(0, big - 1.0)
                cnt2 = torch.searchsorted(seq, q2.reshape(-1), side="left").view(n, fc) - pg.ptr[:-1, None]
                rnd = (torch.minimum(cnt2, short2) - det).clamp(min=0)
                rnd = torch.where(active, rnd, torch.zeros_like(rnd))
            else:
                rnd = torch.zeros_like(det)
            pushes += int(det.sum()) + int(rnd.sum())
            # slot-level masks: slot e of row u at position p is pushed if p < det, or det <= p < det+rnd
            p = pg.pos[:, None]
            d_e, r_e = det[pg.src], rnd[pg.src]
            old = r[pg.src]
            det_m = p < d_e
            rnd_m = (p >= d_e) & (p < d_e + r_e)
            quantum = torch.where(old > 0, dp.expand_as(old), dn.expand_as(old)) * dinva[pg.nbr, None]
            msg = torch.where(det_m, old * coef_det[:, None], torch.zeros_like(old))
            msg = msg + torch.where(rnd_m, quantum, torch.zeros_like(old))
            nxt = torch.zeros_like(r).index_add_(0, pg.nbr, msg)
            if acc_mode:
                est = est + torch.where(active, a * r, r)  # active: α·r; inactive: the whole residue
            else:
                nxt = nxt + r  # SGC keeps every node's residue (``rcurr(u) += old``)
            # progressive pruning of the rows of active nodes
            short = torch.where(active, det + rnd // 2, short)
            if m < 1e8:
                short2 = torch.where(active, (det + rnd + row_len[:, None]) // 2, short2)
            r = nxt
        out[:, f0:f1] = est + r
    return out, pushes


def delta_for_push_sparsity(x: Tensor, pg: PushGraph, target: float, hops: int, kind: str = "sgc",
                            alpha: float = 0.1, seed: int = 0, iters: int = 14, lo: float = 1e-8,
                            hi: float = 1.0) -> tuple[float, float]:
    """δ_a (log-bisection) at which the pushes are ``1 - target`` of the dense count; ``(δ, sparsity)``."""
    dense = hops * pg.num_entries * x.shape[1]
    best = (hi, 0.0)
    a, b = torch.log10(torch.tensor(lo)).item(), torch.log10(torch.tensor(hi)).item()
    for _ in range(iters):
        mid = (a + b) / 2
        _, pushes = propagate_push(x, pg, 10 ** mid, hops, kind, alpha, seed)
        sp = 1.0 - pushes / dense
        if sp < target:
            a = mid
        else:
            b, best = mid, (10 ** mid, sp)
    return best


def standardize(p: Tensor, train_mask: Tensor) -> Tensor:
    """``(p - mean) / std`` with the training nodes' statistics (``StandardScaler(with_mean=True)``;
    a constant column keeps scale 1)."""
    mu = p[train_mask].mean(0)
    sd = p[train_mask].std(0, unbiased=False)
    sd = torch.where(sd == 0, torch.ones_like(sd), sd)
    return (p - mu) / sd


class DecoupledMLP(nn.Module):
    """The reference ``MLP`` (2 layers): ``Linear → ReLU → BatchNorm → Dropout → Linear`` with Unifews
    weight pruning on both linears."""

    def __init__(self, in_channels: int, out_channels: int, hidden: int = 512, dropout: float = 0.5,
                 delta_w: float = 0.0, bn_momentum: float = 0.1):
        super().__init__()
        self.lin0 = PrunedLinear(in_channels, hidden, delta_w)
        self.bn = nn.BatchNorm1d(hidden, momentum=bn_momentum)
        self.lin1 = PrunedLinear(hidden, out_channels, delta_w)
        self.dropout = dropout

    def linears(self) -> list[PrunedLinear]:
        """The two pruned linears."""
        return [self.lin0, self.lin1]

    def set_scheme(self, recompute: bool, cumulative: bool) -> None:
        """``recompute``: the next forward applies the rule (reference ``pruneall``/``pruneinc``);
        else masks are kept (``keep``)."""
        for lin in self.linears():
            lin.frozen = not recompute
            lin.cumulative = cumulative
            lin.straight_through = False
            lin.clamp = True
            lin.cap_kept = False  # the MLP never zeroes pruned weights (no prune.remove)
            lin._cache = None

    def forward(self, x: Tensor, counter: MacCounter | None = None) -> Tensor:
        """Logits of a batch."""
        h = self.bn(F.relu(self.lin0(x, counter, "lin0")))
        h = dropout_any(h, self.dropout, self.training)
        return self.lin1(h, counter, "lin1")


def _batches(idx: Tensor, size: int, shuffle: bool, gen: torch.Generator | None):
    if shuffle:
        idx = idx[torch.randperm(idx.numel(), generator=gen)]
    return [idx[i:i + size] for i in range(0, idx.numel(), size)]


@torch.no_grad()
def _acc(model: DecoupledMLP, feat: Tensor, y: Tensor, idx: Tensor, batch: int) -> float:
    model.eval()
    model.set_scheme(False, False)
    if idx.numel() == 0:
        return float("nan")
    correct = 0
    for b in _batches(idx, batch, False, None):
        correct += int((model(feat[b]).argmax(-1) == y[b]).sum())
    return correct / idx.numel()


def train_mlp_minibatch(model: DecoupledMLP, feat: Tensor, y: Tensor, train_mask: Tensor, val_mask: Tensor,
                        test_mask: Tensor, *, epochs: int = 200, lr: float = 0.01, weight_decay: float = 1e-5,
                        batch_size: int = 512, seed: int = 0) -> dict[str, Any]:
    """Mini-batch training of ``model`` on precomputed features (``run_mb.py``); returns accuracies of
    the best-validation epoch and the epoch."""
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    gen = torch.Generator().manual_seed(int(seed))
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=0.5, threshold=1e-4, patience=15)
    tr, va, te = (m.nonzero().view(-1) for m in (train_mask, val_mask, test_mask))
    best: dict[str, Any] = {"val_acc": -1.0, "test_acc": float("nan"), "epoch": -1}
    best_state = None
    for ep in range(1, epochs + 1):
        model.train()
        for it, b in enumerate(_batches(tr, batch_size, True, gen)):
            model.set_scheme(it == 0, ep >= epochs // 2)  # reference: pruneall / pruneinc on batch 0
            opt.zero_grad()
            loss = F.cross_entropy(model(feat[b]), y[b])
            loss.backward()
            opt.step()
        val = _acc(model, feat, y, va, batch_size)
        sched.step(val)
        if val > best["val_acc"]:
            best = {"val_acc": val, "epoch": ep}
            best_state = copy.deepcopy(model.state_dict())
    if best_state is not None:
        model.load_state_dict(best_state)
    best["test_acc"] = _acc(model, feat, y, te, batch_size)
    best["train_acc"] = _acc(model, feat, y, tr, batch_size)
    return best


def run_decoupled(data, graph: Graph, *, model: str = "sgc", delta_a: float = 0.0, delta_w: float = 0.0,
                  hops: int = 20, alpha: float = 0.1, hidden: int = 512, epochs: int = 200, lr: float = 0.01,
                  weight_decay: float = 1e-5, batch_size: int = 512, seed: int = 0, device: str = "cpu",
                  dense: bool = False) -> tuple[dict[str, float], DecoupledMLP]:
    """Propagate (``dense``: the reference's ``sgc``/``gbp`` algorithm, ``feat_ori``; else its
    ``*_thr`` push at ``delta_a``, also at 0), standardise, train the MLP; return metrics
    (accuracies, push sparsity, weight sparsity, MACs split into propagation and transformation)
    and the model."""
    pg = push_graph(graph)
    x = data.x.to_dense() if data.x.layout != torch.strided else data.x
    if dense:
        p, pushes = propagate_dense(x.float(), pg, hops, model, alpha)
    else:
        p, pushes = propagate_push(x, pg, delta_a, hops, model, alpha, seed)
    feat = standardize(p, data.train_mask)
    torch.manual_seed(seed)
    mlp = DecoupledMLP(feat.shape[1], int(data.y.max()) + 1, hidden=hidden, delta_w=delta_w)
    dev = torch.device(device)
    mlp, feat, y = mlp.to(dev), feat.to(dev), data.y.to(dev)
    res = train_mlp_minibatch(mlp, feat, y, data.train_mask.to(dev), data.val_mask.to(dev), data.test_mask.to(dev),
                              epochs=epochs, lr=lr, weight_decay=weight_decay, batch_size=batch_size, seed=seed)
    counter = MacCounter()
    dense_prop = hops * pg.num_entries * feat.shape[1]
    counter.add("prop", "propagation", pushes, dense_prop, pushes, dense_prop)
    mlp.eval()
    mlp.set_scheme(False, False)
    with torch.no_grad():
        mlp(feat[:1], None)
        n = feat.shape[0]
        for name, lin in (("lin0", mlp.lin0), ("lin1", mlp.lin1)):
            kept = int(lin.mask.sum())
            counter.add(name, "transformation", kept, lin.mask.numel(), n * kept, n * lin.mask.numel())
    s = counter.summary()
    metrics = {"test_acc": res["test_acc"], "val_acc": res["val_acc"], "train_acc": res["train_acc"],
               "best_epoch": res["epoch"], "pushes": pushes, "push_sparsity": 1.0 - pushes / dense_prop, **s}
    return metrics, mlp
