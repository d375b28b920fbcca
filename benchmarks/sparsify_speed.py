"""Sparse (Unifews-pruned) vs dense GNN execution speed, measured in one run as ratios.

1. Inference propagation ``Â H`` on synthetic SBM graphs of growing size, dense vs pruned at ~90% of
   the prunable (non-self-loop) edges removed by the Unifews rule (δ_a found by bisection):
   * ``csr``: prebuilt CSR matrices, ``torch.sparse.mm`` (the pruned matrix is built once, as with
     frozen masks at inference);
   * ``onthefly``: the models' kernel (CSR rows built from the dst-sorted edge list at every call), the
     sparse side also paying for message norms + mask + compaction.
2. Weight transform ``X W`` at ~90% weight sparsity: masked-dense vs ``torch.sparse`` vs dense.
3. Training time per epoch of a 2-layer GCN, dense vs Unifews.

Interleaved repeats after warm-up; median and IQR; records in ``results/sparsify_speed/``.
Usage: ``.venv/bin/python benchmarks/sparsify_speed.py [--quick]``.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch


def _stats(ts):
    q = statistics.quantiles(ts, n=4) if len(ts) >= 2 else [ts[0]] * 3
    return statistics.median(ts), q[2] - q[0]


def bench_propagation(sizes, deg, feat, repeats, records, kind="sbm"):
    from xflow.sparsify.timing import propagation_timing

    for n in sizes:
        recs = propagation_timing({"kind": kind, "num_nodes": n, "avg_degree": deg, "features": feat,
                                   "repeats": repeats, "target_sparsity": 0.9})
        records += [{**r, "bench": "propagation"} for r in recs]
        t = {r["variant"]: r["value"] for r in recs if r["metric"] == "time_s"}
        r0 = recs[0]
        print(f"propagation {kind} n={n:>8} E={r0['num_edges']:>9} F={feat} sparsity {100 * r0['edge_sparsity']:.1f}% "
              f"(off-diag {100 * r0['edge_sparsity_offdiag']:.1f}%): csr {1e3 * t['dense_csr']:.2f} → "
              f"{1e3 * t['sparse_csr']:.2f} ms ({t['dense_csr'] / t['sparse_csr']:.2f}×); kernel "
              f"{1e3 * t['dense_kernel']:.2f} → on-the-fly {1e3 * t['sparse_onthefly']:.2f} ms "
              f"({t['dense_kernel'] / t['sparse_onthefly']:.2f}×)", flush=True)


def bench_weights(n, f_in, f_out, repeats, records):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, f_in, generator=g)
    w = torch.randn(f_in, f_out, generator=g)
    mask = torch.rand(f_in, f_out, generator=g) >= 0.9
    wm = w * mask
    ws_t = wm.t().to_sparse_csr()
    fns = {
        "dense": lambda: x @ w,
        "masked_dense": lambda: x @ (w * mask),
        "torch_sparse": lambda: torch.sparse.mm(ws_t, x.t()).t(),
    }
    from xflow.sparsify.timing import interleaved_times

    times = interleaved_times(fns, repeats)
    med = {k: _stats(v) for k, v in times.items()}
    base = dict(bench="weights", num_nodes=n, f_in=f_in, f_out=f_out, weight_sparsity=1 - float(mask.float().mean()))
    for k, (m, iqr) in med.items():
        records.append({**base, "variant": k, "metric": "time_s", "value": m, "iqr_s": iqr})
    print(f"weights N={n} {f_in}x{f_out} at 90%: dense {1e3 * med['dense'][0]:.2f} ms, masked-dense "
          f"{1e3 * med['masked_dense'][0]:.2f} ms, torch.sparse {1e3 * med['torch_sparse'][0]:.2f} ms", flush=True)


def bench_training(n, deg, epochs, records):
    from xflow.sparsify.layers import prepare_graph
    from xflow.sparsify.models import build_model
    from xflow.sparsify.synthetic import sbm_graph
    from xflow.sparsify.train import train_model

    data = sbm_graph(n, deg, num_features=64, seed=0)
    g = prepare_graph(data.edge_index, n)
    res = {}
    for name, (da, dw) in {"dense": (0.0, 0.0), "unifews": (1.0, 1.0)}.items():
        torch.manual_seed(0)
        m = build_model("gcn", 64, int(data.y.max()) + 1, delta_a=da, delta_w=dw, hidden=64)
        out = train_model(m, data, g, epochs=epochs, freeze_at=1)
        res[name] = out
        for k in ("train_time_per_epoch_s", "infer_time_s", "test_acc", "mac_reduction", "edge_sparsity",
                  "weight_sparsity"):
            records.append(dict(bench="training", variant=name, num_nodes=n, num_edges=g.num_edges,
                                delta_a=da, delta_w=dw, metric=k, value=float(out[k])))
    print(f"training GCN n={n}: epoch dense {res['dense']['train_time_per_epoch_s'] * 1e3:.1f} ms, unifews "
          f"{res['unifews']['train_time_per_epoch_s'] * 1e3:.1f} ms (edge sp {100 * res['unifews']['edge_sparsity']:.0f}%, "
          f"weight sp {100 * res['unifews']['weight_sparsity']:.0f}%, MACs ÷{res['unifews']['mac_reduction']:.1f}); "
          f"acc {res['dense']['test_acc']:.3f} vs {res['unifews']['test_acc']:.3f}", flush=True)


def main(argv=None) -> None:
    """Run the benchmark (``--quick``: ≤ 10^6 edges, few repeats)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes and few repeats (≤ 3 min)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    records: list[dict] = []
    if args.quick:
        bench_propagation([10_000, 100_000], 10, 32, 5, records)
        bench_weights(10_000, 256, 64, 5, records)
        bench_training(5_000, 10, 6, records)
    else:
        bench_propagation([10_000, 100_000, 300_000, 1_000_000], 10, 64, 9, records)
        bench_propagation([500_000], 40, 64, 5, records)  # ≥ 10^7 edges
        bench_propagation([100_000, 1_000_000], 10, 64, 5, records, kind="powerlaw")
        bench_weights(100_000, 512, 64, 9, records)
        bench_training(50_000, 10, 20, records)
    from xflow.results import write_records

    path = write_records([{**r, "quick": args.quick} for r in records], "sparsify_speed",
                         threads=torch.get_num_threads())
    print(f"records: {path}")


if __name__ == "__main__":
    main()
