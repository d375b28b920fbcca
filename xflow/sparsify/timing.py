"""Wall time of dense vs Unifews-pruned propagation on synthetic graphs (``propagation_timing(config)``).

Used by ``benchmarks/sparsify_speed.py`` and the notebook's time-vs-size plot. For one SBM or power-law
graph it finds (by bisection) the δ_a at which the Unifews edge rule removes ``target_sparsity`` of the
non-self-loop edges of ``Â H``, then times, interleaved after warm-up:

* ``dense_csr`` / ``sparse_csr`` — ``torch.sparse.mm`` with prebuilt CSR matrices (frozen masks);
* ``dense_kernel`` / ``sparse_onthefly`` — the models' kernel, the sparse side also computing message
  norms, the mask and the compaction at every call (Unifews on-the-fly pruning).

Returns long-format records (``metric`` = ``time_s`` per variant with ``iqr_s``, and ``speedup``).
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

__all__ = ["propagation_timing", "delta_for_sparsity", "interleaved_times"]


def interleaved_times(fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 2) -> dict[str, list[float]]:
    """Time each callable ``repeats`` times, interleaving them round-robin after ``warmup`` calls each."""
    for f in fns.values():
        for _ in range(warmup):
            f()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            t = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t)
    return times


def _median_iqr(ts: list[float]) -> tuple[float, float]:
    if len(ts) < 2:
        return ts[0], 0.0
    q = statistics.quantiles(ts, n=4)
    return statistics.median(ts), q[2] - q[0]


def delta_for_sparsity(norms: torch.Tensor, self_loops: torch.Tensor, target: float, iters: int = 30) -> float:
    """Smallest δ_a (bisection) at which the edge rule removes ≥ ``target`` of the non-self-loop edges."""
    from xflow.sparsify.pruning import edge_prune_mask

    cand = torch.ones_like(self_loops)
    lo, hi = 0.0, 64.0
    for _ in range(iters):
        mid = (lo + hi) / 2
        m = edge_prune_mask(norms, cand, self_loops, mid)
        sp = 1 - float(m[~self_loops].float().mean())
        lo, hi = (mid, hi) if sp < target else (lo, mid)
    return hi


def propagation_timing(config: dict) -> list[dict]:
    """Time dense vs pruned propagation for ``config``.

    Keys: ``kind`` (``sbm``/``powerlaw``, default ``sbm``), ``num_nodes``, ``avg_degree`` (10),
    ``features`` (64), ``target_sparsity`` (0.9), ``repeats`` (5), ``seed`` (0), ``threads`` (None),
    ``self_loops`` (True: Â with never-pruned self-loops; False: ``D^{-1/2}AD^{-1/2}`` as the reference code).
    """
    from xflow.sparsify.layers import prepare_graph
    from xflow.sparsify.ops import csr_adjacency, propagate, spmm_csr
    from xflow.sparsify.pruning import edge_prune_mask, message_norms
    from xflow.sparsify.synthetic import make_synthetic

    cfg = {"kind": "sbm", "avg_degree": 10.0, "features": 64, "target_sparsity": 0.9, "repeats": 5, "seed": 0,
           "threads": None, "self_loops": True, **config}
    if cfg["threads"]:
        torch.set_num_threads(int(cfg["threads"]))
    n = int(cfg["num_nodes"])
    data = make_synthetic(cfg["kind"], n, float(cfg["avg_degree"]), num_features=int(cfg["features"]),
                          seed=int(cfg["seed"]))
    g = prepare_graph(data.edge_index, n, bool(cfg["self_loops"]))
    h = data.x
    norms = message_norms(h, g.edge_index, g.edge_weight)
    delta = delta_for_sparsity(norms, g.self_loops, float(cfg["target_sparsity"]))
    cand = torch.ones(g.num_edges, dtype=torch.bool)
    mask = edge_prune_mask(norms, cand, g.self_loops, delta)
    dense_csr = csr_adjacency(g.edge_index, g.edge_weight, n)
    sparse_csr = csr_adjacency(g.edge_index, g.edge_weight, n, mask)

    def onthefly():
        m = edge_prune_mask(message_norms(h, g.edge_index, g.edge_weight), cand, g.self_loops, delta)
        idx = m.nonzero().view(-1)
        return propagate(h, g.edge_index.index_select(1, idx), g.edge_weight.index_select(0, idx), n,
                         sorted_by_dst=True)

    fns = {
        "dense_csr": lambda: spmm_csr(dense_csr, h),
        "sparse_csr": lambda: spmm_csr(sparse_csr, h),
        "dense_kernel": lambda: propagate(h, g.edge_index, g.edge_weight, n, sorted_by_dst=True),
        "sparse_onthefly": onthefly,
    }
    with torch.no_grad():
        times = interleaved_times(fns, int(cfg["repeats"]))
    med = {k: _median_iqr(v) for k, v in times.items()}
    base = {"kind": cfg["kind"], "num_nodes": n, "num_edges": g.num_edges, "features": int(cfg["features"]),
            "delta_a": delta, "edge_sparsity_offdiag": 1 - float(mask[~g.self_loops].float().mean()),
            "edge_sparsity": 1 - float(mask.float().mean()), "threads": torch.get_num_threads(),
            "self_loops": bool(cfg["self_loops"])}
    recs = [{**base, "variant": k, "metric": "time_s", "value": m, "iqr_s": iqr} for k, (m, iqr) in med.items()]
    recs.append({**base, "variant": "csr", "metric": "speedup", "value": med["dense_csr"][0] / med["sparse_csr"][0]})
    recs.append({**base, "variant": "onthefly", "metric": "speedup",
                 "value": med["dense_kernel"][0] / med["sparse_onthefly"][0]})
    return recs
