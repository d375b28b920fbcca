"""Dense vs Unifews-sparse execution speed, measured with the one measurement core
(:func:`xflow.runtime.measure.measure`: interleaved shuffled rounds, thread CPU time deciding for
these single-threaded variants, an A/A control, paired bootstrap intervals and verdicts).

Three measurements, each returning long-format records — one row per comparison with its
``speedup`` [``speedup_lo``, ``speedup_hi``], ``verdict``, ``noise_floor``, ``clock`` and the
medians of both sides (``time_ms`` / ``baseline_ms``), plus the run conditions (load, busy):

* :func:`propagation_timing` — ``Â H`` on a synthetic graph, dense vs with the edges the Unifews
  rule removes at ``target_sparsity`` of the prunable (off-diagonal) edges: torch CSR
  (``torch.sparse.mm``), the compiled row kernel over kept edges (frozen masks, inference), and
  on the fly (mean message norm + the fused prune-and-aggregate kernel, i.e. the mask computed
  at every call as in training);
* :func:`weight_timing` — ``X W`` at ``sparsity`` (random or Unifews-rule masks): masked-dense
  with pruned input rows skipped (the layers' path), ``torch.sparse.mm`` on ``Wᵀ`` as CSR, and the
  compiled panel kernel (:func:`xflow.sparsify.kernels.spmm_panel`) with the input already in
  panel layout and including the conversion;
* :func:`training_timing` — one training epoch (reference schedule: mask recomputation, forward,
  backward, Adam step) of a GCN, dense vs Unifews at several (δ_a, δ_w).

No timing is asserted in tests; ``benchmarks/sparsify_speed.py`` runs these and commits the
records (``results/sparsify/speed_*.csv``).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from xflow.errors import UnknownName
from xflow.runtime.measure import Variant, measure
from xflow.sparsify import kernels
from xflow.sparsify.config import _model_input, load_graph, resolve
from xflow.sparsify.layers import prepare_graph
from xflow.sparsify.macs import MacCounter
from xflow.sparsify.models import build_model
from xflow.sparsify.ops import csr_adjacency, csr_rows, spmm_csr
from xflow.sparsify.pruning import edge_prune_mask, message_norms, weight_prune_mask
from xflow.sparsify.synthetic import make_synthetic
from xflow.sparsify.train import evaluate, reference_optimizer, set_reference_epoch, train_step

__all__ = ["propagation_timing", "weight_timing", "training_timing", "delta_for_sparsity", "comparison_rows"]


def comparison_rows(meas, pairs: Sequence[tuple[str, str]], **config: Any) -> list[dict]:
    """One record per ``(variant, baseline)`` pair of a :class:`~xflow.runtime.measure.Measurement`:
    speed-up of ``variant`` over ``baseline`` with its interval, verdict, noise floor and the run
    conditions."""
    cond = meas.conditions()
    rows = []
    for a, b in pairs:
        c = meas.compare(a, b)
        rows.append({**config, "variant": a, "baseline": b, "metric": "speedup", "value": c.speedup,
                     "speedup_lo": c.speedup_ci[0], "speedup_hi": c.speedup_ci[1], "verdict": c.verdict,
                     "noise_floor": c.noise_floor, "time_ms": meas.median_ms(a), "baseline_ms": meas.median_ms(b),
                     "wall_ms": meas.median_ms(a, "wall"), "baseline_wall_ms": meas.median_ms(b, "wall"),
                     "text": c.format(), **cond})
    return rows


def delta_for_sparsity(norms: torch.Tensor, self_loops: torch.Tensor, target: float, iters: int = 30) -> float:
    """Smallest δ_a (bisection) at which the edge rule removes ≥ ``target`` of the non-self-loop edges."""
    cand = torch.ones_like(self_loops)
    lo, hi = 0.0, 64.0
    for _ in range(iters):
        mid = (lo + hi) / 2
        m = edge_prune_mask(norms, cand, self_loops, mid)
        sp = 1 - float(m[~self_loops].float().mean())
        lo, hi = (mid, hi) if sp < target else (lo, mid)
    return hi


def _measure(fns: dict[str, Callable[[], Any]], baseline: str, cfg: dict):
    with torch.no_grad():
        return measure({k: Variant(f, threads=1) for k, f in fns.items()}, baseline=baseline,
                       warmup=int(cfg.get("warmup", 2)), rounds=int(cfg["rounds"]),
                       max_seconds=cfg.get("max_seconds"), min_rounds=min(5, int(cfg["rounds"])))


def propagation_timing(config: dict) -> list[dict]:
    """Dense vs pruned propagation on a synthetic graph (one thread).

    Keys: ``kind`` (``sbm``/``powerlaw``), ``num_nodes``, ``avg_degree`` (10), ``features`` (64),
    ``target_sparsity`` (0.9 of the off-diagonal edges), ``rounds`` (10), ``seed`` (0),
    ``self_loops`` (True: Â with never-pruned self-loops, as the reference's Cora; False:
    ``D^{-1/2}AD^{-1/2}``), ``max_seconds`` (None).
    """
    cfg = {"kind": "sbm", "avg_degree": 10.0, "features": 64, "target_sparsity": 0.9, "rounds": 10, "seed": 0,
           "self_loops": True, "max_seconds": None, **config}
    torch.set_num_threads(1)
    n = int(cfg["num_nodes"])
    data = make_synthetic(cfg["kind"], n, float(cfg["avg_degree"]), num_features=int(cfg["features"]),
                          seed=int(cfg["seed"]))
    g = prepare_graph(data.edge_index, n, bool(cfg["self_loops"]))
    h = data.x.contiguous()
    norms = message_norms(h, g.edge_index, g.edge_weight)
    delta = delta_for_sparsity(norms, g.self_loops, float(cfg["target_sparsity"]))
    cand = torch.ones(g.num_edges, dtype=torch.bool)
    mask = edge_prune_mask(norms, cand, g.self_loops, delta)
    src, dst, w = g.edge_index[0].contiguous(), g.edge_index[1], g.edge_weight.contiguous()
    ptr = csr_rows(dst, n)
    idx = mask.nonzero().view(-1)
    k_src, k_w, k_ptr = src[idx].contiguous(), w[idx].contiguous(), csr_rows(dst[idx], n)
    fns: dict[str, Callable[[], Any]] = {
        "dense_csr": (lambda a=csr_adjacency(g.edge_index, w, n): spmm_csr(a, h)),
        "sparse_csr": (lambda a=csr_adjacency(g.edge_index, w, n, mask): spmm_csr(a, h)),
    }
    pairs = [("sparse_csr", "dense_csr")]
    if kernels.available():
        cand_u8, locked_u8 = cand.to(torch.uint8), g.self_loops.to(torch.uint8)
        aw = w.abs()

        def onthefly():
            nrm = h.norm(dim=1)
            thr = delta * float((aw * nrm[src]).mean())  # δ_a × mean message norm over the candidates
            return kernels.prune_spmm(ptr, src, w, nrm, cand_u8, locked_u8, thr, h)

        fns.update({
            "dense_kernel": lambda: kernels.spmm_rows(ptr, src, w, h),
            "sparse_kernel": lambda: kernels.spmm_rows(k_ptr, k_src, k_w, h),
            "sparse_onthefly": onthefly,
        })
        pairs += [("sparse_kernel", "dense_kernel"), ("sparse_onthefly", "dense_kernel"),
                  ("sparse_kernel", "dense_csr")]
    meas = _measure(fns, "dense_csr", cfg)
    base = {"bench": "propagation", "kind": cfg["kind"], "num_nodes": n, "num_edges": g.num_edges,
            "features": int(cfg["features"]), "delta_a": delta, "self_loops": bool(cfg["self_loops"]),
            "edge_sparsity_offdiag": 1 - float(mask[~g.self_loops].float().mean()),
            "edge_sparsity": 1 - float(mask.float().mean()), "threads": 1}
    return comparison_rows(meas, pairs, **base)


def _unifews_weight_mask(x: torch.Tensor, w: torch.Tensor, target: float) -> tuple[torch.Tensor, float]:
    """The Unifews weight rule's mask at (about) ``target`` sparsity, δ_w by bisection."""
    lo, hi = 0.0, 64.0
    for _ in range(30):
        mid = (lo + hi) / 2
        sp = 1 - float(weight_prune_mask(w, x, mid).float().mean())
        lo, hi = (mid, hi) if sp < target else (lo, mid)
    return weight_prune_mask(w, x, hi), hi


def weight_timing(config: dict) -> list[dict]:
    """``X W`` dense vs at ``sparsity`` of the weights removed (one thread).

    Keys: ``num_nodes`` (N), ``f_in``, ``f_out``, ``sparsity`` (0.9), ``masks`` (``random``: uniform;
    ``unifews``: the weight rule on inputs whose column scales vary, δ_w found by bisection),
    ``rounds`` (10), ``seed`` (0), ``max_seconds``.
    """
    cfg = {"sparsity": 0.9, "masks": "random", "rounds": 10, "seed": 0, "max_seconds": None, **config}
    torch.set_num_threads(1)
    n, fi, fo = int(cfg["num_nodes"]), int(cfg["f_in"]), int(cfg["f_out"])
    gen = torch.Generator().manual_seed(int(cfg["seed"]))
    x = torch.randn(n, fi, generator=gen)
    w = torch.randn(fi, fo, generator=gen) / fi ** 0.5
    delta_w = float("nan")
    if cfg["masks"] == "unifews":
        x = x * torch.rand(fi, generator=gen).pow(2)  # feature columns of different strength
        mask, delta_w = _unifews_weight_mask(x, w, float(cfg["sparsity"]))
    elif cfg["masks"] == "random":
        mask = torch.rand(fi, fo, generator=gen) >= float(cfg["sparsity"])
    else:
        raise UnknownName(f"unknown masks {cfg['masks']!r}; choose 'random' or 'unifews'")
    wm = w * mask
    rows = mask.any(dim=1).nonzero().view(-1)
    w_rows = wm.index_select(0, rows).contiguous()
    wt = wm.t().contiguous().to_sparse_csr()
    fns: dict[str, Callable[[], Any]] = {
        "dense": lambda: x @ w,
        "masked_dense": lambda: x.index_select(1, rows) @ w_rows,
        "torch_csr": lambda: torch.sparse.mm(wt, x.t()).t(),
    }
    pairs = [("masked_dense", "dense"), ("torch_csr", "dense")]
    if kernels.available():
        ptr, col, val = wt.crow_indices().long(), wt.col_indices().long(), wt.values().contiguous()
        xp = kernels.pack_panels(x)
        fns["panel_kernel"] = lambda: kernels.spmm_panel(ptr, col, val, xp, n)
        fns["panel_kernel_with_packing"] = lambda: kernels.spmm_panel(ptr, col, val, kernels.pack_panels(x), n)
        pairs += [("panel_kernel", "dense"), ("panel_kernel_with_packing", "dense")]
    meas = _measure(fns, "dense", cfg)
    base = {"bench": "weights", "num_nodes": n, "f_in": fi, "f_out": fo, "masks": cfg["masks"], "delta_w": delta_w,
            "weight_sparsity": 1 - float(mask.float().mean()),
            "rows_pruned": 1 - rows.numel() / fi, "threads": 1}
    return comparison_rows(meas, pairs, **base)


def training_timing(config: dict) -> list[dict]:
    """One training epoch of a GCN, dense vs Unifews at each ``deltas`` pair (one thread).

    Keys: ``dataset`` (``sbm:<n>:<deg>`` or ``cora``/``citeseer``), ``profile`` (``reference``),
    ``hidden`` (None: the profile's), ``deltas`` (``[(δ_a, δ_w), ...]``), ``warm_epochs`` (20: the
    models are trained this long first, so the masks are those of a trained model), ``rounds`` (10),
    ``phase`` (``recompute``: a first-half epoch, every mask recomputed from the full weights;
    ``cumulative``: a second-half epoch, weight masks intersected with the previous ones).
    An epoch = the reference schedule's mask scheme for the epoch, forward with mask recomputation,
    cross-entropy, backward, Adam step (:func:`xflow.sparsify.train.train_step`); for the reference
    profile also the lock-free evaluation pass the reference runs every epoch is *not* included.
    """

    cfg = {"dataset": "sbm:20000:10", "profile": "reference", "hidden": None, "model": "gcn",
           "deltas": [(0.1, 0.1), (0.5, 0.5), (1.0, 1.0), (2.0, 2.0)], "warm_epochs": 20, "rounds": 10, "seed": 0,
           "phase": "recompute", "max_seconds": None, **config}
    if cfg["phase"] not in ("recompute", "cumulative"):
        raise UnknownName(f"unknown phase {cfg['phase']!r}; choose 'recompute' or 'cumulative'")
    torch.set_num_threads(1)
    r = resolve({"dataset": cfg["dataset"], "model": cfg["model"], "profile": cfg["profile"], "split": "random",
                 "hidden": cfg["hidden"]})
    data, graph = load_graph(cfg["dataset"], "random", int(cfg["seed"]), r["self_loops"],
                             largest_component=r["largest_component"], stratify=r["stratify"],
                             normalize_features=r["normalize_features"])
    inp = _model_input(data, cfg["model"])
    epochs = 2 * int(cfg["warm_epochs"]) + 2
    fns: dict[str, Callable[[], Any]] = {}
    info: dict[str, dict] = {}
    for da, dw in [(0.0, 0.0)] + [tuple(map(float, d)) for d in cfg["deltas"]]:
        name = "dense" if da == dw == 0 else f"unifews_{da:g}_{dw:g}"
        torch.manual_seed(int(cfg["seed"]))
        model = build_model(cfg["model"], data.num_features, int(data.y.max()) + 1, delta_a=da, delta_w=dw,
                            **r["hp"])
        model.prepare(inp.x, graph)
        opt, _ = reference_optimizer(model, r["lr"], r["weight_decay"])
        for ep in range(1, int(cfg["warm_epochs"]) + 1):
            set_reference_epoch(model, ep, epochs)
            train_step(model, inp, graph, opt)

        counter = MacCounter()
        evaluate(model, inp, graph, counter)
        s = counter.summary()
        info[name] = {"delta_a": da, "delta_w": dw, "edge_sparsity_offdiag": s.get("edge_sparsity_offdiag", 0.0),
                      "weight_sparsity": s.get("weight_sparsity", 0.0), "mac_reduction": s.get("mac_reduction", 1.0)}

        # first half ('recompute', pruneall: every mask from the full weights) or second half
        # ('cumulative', pruneinc: new weight mask = old AND rule); edge masks recomputed in both
        phase_epoch = 1 if cfg["phase"] == "recompute" else epochs - 1

        def epoch(m=model, o=opt, e=phase_epoch):
            set_reference_epoch(m, e, epochs)
            train_step(m, inp, graph, o)
        fns[name] = epoch

    meas = measure({k: Variant(f, threads=1) for k, f in fns.items()}, baseline="dense", warmup=1,
                   rounds=int(cfg["rounds"]), max_seconds=cfg.get("max_seconds"), min_rounds=min(5, int(cfg["rounds"])))
    rows = []
    for name in fns:
        if name == "dense":
            continue
        rows += comparison_rows(meas, [(name, "dense")], bench="training", dataset=cfg["dataset"], phase=cfg["phase"],
                                model=cfg["model"], profile=cfg["profile"], hidden=int(r["hp"].get("hidden", 0)),
                                num_nodes=graph.num_nodes, num_edges=graph.num_edges, threads=1, **info[name])
    return rows
