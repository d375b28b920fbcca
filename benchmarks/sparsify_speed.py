"""Sparse (Unifews-pruned) vs dense GNN execution speed, every number through the measurement core.

Writes (via :func:`xflow.tables.save_result`, read by the docs tables of ``docs/sparsify.md``):

* ``results/sparsify/speed_propagation.csv`` — ``Â H`` at 90 % of the off-diagonal edges removed
  by the Unifews rule, SBM graphs of 10⁴–10⁵ nodes (≈1.1·10⁶ entries; ``--full``: 10⁶ nodes, 1.1·10⁷),
  torch CSR / compiled kernel over kept edges / on-the-fly (mask computed in the call);
* ``results/sparsify/speed_weights.csv`` — ``X W`` at 90 / 95 / 98 % weight sparsity (random and
  Unifews-rule masks): masked-dense with pruned rows skipped, ``torch.sparse``, the panel kernel;
* ``results/sparsify/speed_training.csv`` — one training epoch (reference schedule; a first-half
  epoch with every mask recomputed and a second-half one with cumulative weight masks), dense vs
  Unifews at δ = (0.1, 0.1), (0.5, 0.5), (1, 1), (2, 2): the reference Cora GCN (hidden 512) and an
  SBM graph (5·10⁴ nodes, hidden 128).

Each row: speed-up [95 % CI] and verdict on thread CPU time (single-threaded variants), the A/A noise
floor and the machine's load. Usage::

    .venv/bin/python benchmarks/sparsify_speed.py            # ≈ 10 min on one core
    .venv/bin/python benchmarks/sparsify_speed.py --quick    # ≈ 2 min, smaller sizes, not saved to results/sparsify
    .venv/bin/python benchmarks/sparsify_speed.py --full     # adds the 10⁷-edge propagation
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _print(rows) -> None:
    for r in rows:
        what = {k: r[k] for k in ("num_nodes", "num_edges", "f_in", "f_out", "masks", "weight_sparsity", "phase",
                                  "edge_sparsity_offdiag", "dataset") if k in r}
        print(f"  {r['bench']:11} {r['variant']:26} vs {r['baseline']:12} {r['text']:32} "
              f"({r['baseline_ms']:.2f} → {r['time_ms']:.2f} ms) {what}", flush=True)


def main(argv=None) -> None:
    """Run the three measurements and write their CSVs."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes, few rounds (results/sparsify_quick)")
    p.add_argument("--full", action="store_true", help="also the 10^7-edge propagation")
    p.add_argument("--only", default="propagation,weights,training")
    args = p.parse_args(argv)

    from xflow.sparsify.timing import propagation_timing, training_timing, weight_timing
    from xflow.tables import save_result

    area = "sparsify_quick" if args.quick else "sparsify"
    only = {s.strip() for s in args.only.split(",")}
    rounds = 5 if args.quick else 12
    if "propagation" in only:
        rows = []
        sizes = [10_000, 50_000] if args.quick else [10_000, 100_000] + ([1_000_000] if args.full else [])
        for n in sizes:
            for loops in (True, False):
                r = propagation_timing({"num_nodes": n, "avg_degree": 10, "features": 64, "rounds": rounds,
                                        "self_loops": loops, "max_seconds": 120})
                _print(r)
                rows += r
        print(f"wrote {save_result(rows, f'{area}/speed_propagation.csv', threads=1)}")
    if "weights" in only:
        rows = []
        shapes = [(5_000, 512, 512)] if args.quick else [(10_000, 512, 512), (2_485, 1_433, 512), (10_000, 256, 64)]
        for n, fi, fo in shapes:
            for sp in (0.9, 0.95, 0.98):
                for masks in ("random", "unifews"):
                    r = weight_timing({"num_nodes": n, "f_in": fi, "f_out": fo, "sparsity": sp, "masks": masks,
                                       "rounds": rounds, "max_seconds": 60})
                    _print(r)
                    rows += r
        print(f"wrote {save_result(rows, f'{area}/speed_weights.csv', threads=1)}")
    if "training" in only:
        rows = []
        runs = ([{"dataset": "sbm:3000:10", "hidden": 64, "warm_epochs": 3}] if args.quick else
                [{"dataset": "cora", "warm_epochs": 20}, {"dataset": "sbm:50000:10", "hidden": 128, "warm_epochs": 10}])
        for cfg in runs:
            for phase in ("recompute", "cumulative"):  # first-half and second-half reference epochs
                r = training_timing({**cfg, "phase": phase, "rounds": rounds, "max_seconds": 240,
                                     "deltas": [(0.1, 0.1), (0.5, 0.5), (1.0, 1.0), (2.0, 2.0)]})
                _print(r)
                rows += r
        print(f"wrote {save_result(rows, f'{area}/speed_training.csv', threads=1)}")


if __name__ == "__main__":
    main()
