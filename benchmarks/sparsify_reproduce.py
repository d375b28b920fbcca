"""Reproduce the Unifews paper's Fig. 10, Fig. 4 and Table III (and the ablation rows) with the
reference profile, through the one Ray sweep runner (cached per config: a killed run resumes).

Writes one wide CSV per experiment (one row per run: the accuracies, sparsities and MACs of
:func:`xflow.sparsify.run`, plus provenance) with :func:`xflow.tables.save_result` to
``results/sparsify/`` — the files the docs tables of ``docs/sparsify.md`` are generated from:

* ``fig10.csv``      GCN δ grid, Cora and CiteSeer, δ ∈ {0, 1, 2}, lock on/off, seeds 0-2
* ``fig4.csv``       extra edge-only GCN points (δ_w = 0, δ_a ∈ {0.5, 3}); the rest of Fig. 4 is read from fig10.csv
* ``table3.csv``     decoupled SGC / APPNP, push propagation; ``table3_deltas.csv`` the δ_a at 50 %
* ``ablations.csv``  Cora GCN δ=(1,1): each reference setting switched back, lock on/off

Usage (``make report`` afterwards regenerates the docs tables)::

    .venv/bin/python benchmarks/sparsify_reproduce.py              # the modest grids (~1.5 h CPU)
    .venv/bin/python benchmarks/sparsify_reproduce.py --only fig10 --datasets cora
    .venv/bin/python benchmarks/sparsify_reproduce.py --full --gat  # 7x7 grids + GAT(v2) (many hours)
    .venv/bin/python benchmarks/sparsify_reproduce.py --quick      # smoke: Cora, seed 0, 60 epochs
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

EXPERIMENTS = ("fig10", "ablations", "table3", "fig4")


def _save(records, name: str, area: str) -> Path:
    import pandas as pd

    from xflow.sparsify import to_wide
    from xflow.tables import save_result

    wide = to_wide(pd.DataFrame(records))
    return save_result(wide, f"{area}/{name}.csv", threads=1)


def _table3_deltas(datasets, out_dir: Path, target: float = 0.5):
    """δ_a giving ``target`` of the pushes removed per (dataset, model), seed 0; cached in a CSV."""
    import pandas as pd

    from xflow.sparsify.decoupled import delta_for_push_sparsity, push_graph
    from xflow.sparsify.experiment import load_graph, resolve

    path = out_dir / "table3_deltas.csv"
    have = pd.read_csv(path) if path.exists() else pd.DataFrame(columns=["dataset", "model", "delta_a", "push_sparsity"])
    rows = have.to_dict(orient="records")
    out = {}
    for d in datasets:
        for m in ("sgc", "appnp"):
            hit = [r for r in rows if r["dataset"] == d and r["model"] == m]
            if hit:
                out[(d, m)] = float(hit[0]["delta_a"])
                continue
            r = resolve({"dataset": d, "model": m, "profile": "reference", "split": "random"})
            data, g = load_graph(d, "random", 0, r["self_loops"], largest_component=r["largest_component"],
                                 stratify=r["stratify"], normalize_features=r["normalize_features"])
            x = data.x.float()
            delta, sp = delta_for_push_sparsity(x, push_graph(g), target, r["hops"], m, 0.1 if m == "appnp" else 0.0)
            print(f"table3: {d} {m}: δ_a = {delta:.3g} removes {100 * sp:.1f}% of the pushes", flush=True)
            rows.append({"dataset": d, "model": m, "delta_a": delta, "push_sparsity": sp})
            out[(d, m)] = delta
            out_dir.mkdir(parents=True, exist_ok=True)
            pd.DataFrame(rows).to_csv(path, index=False)
    return out


def main(argv=None) -> None:
    """Run the selected experiments and write their CSVs."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default=",".join(EXPERIMENTS), help=f"comma list of {', '.join(EXPERIMENTS)}")
    p.add_argument("--datasets", default="cora,citeseer")
    p.add_argument("--seeds", default=None, help="comma list of seeds (default 0,1,2)")
    p.add_argument("--full", action="store_true", help="all 7 x 7 δ cells and every Fig. 4 point")
    p.add_argument("--gat", action="store_true", help="add GAT(v2) to Fig. 4 (~7x a GCN run)")
    p.add_argument("--quick", action="store_true", help="smoke run: Cora, seed 0, δ ∈ {0, 1}, 60 epochs")
    p.add_argument("--backend", default=None, choices=["ray", "local"],
                   help="sweep backend (default: local in this process for --parallel 1, else Ray)")
    p.add_argument("--parallel", type=int, default=1, help="runs at a time (default 1: each run is single-threaded)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    from xflow import paths
    from xflow.sparsify import reproduce as rp
    from xflow.sparsify.experiment import run
    from xflow.sweep import run_sweep

    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(only) - set(EXPERIMENTS)
    if unknown:
        p.error(f"unknown experiments {sorted(unknown)}; choose from {', '.join(EXPERIMENTS)}")
    datasets = tuple(s.strip() for s in args.datasets.split(",") if s.strip())
    extra, seeds, deltas = {}, rp.SEEDS, (rp.DELTAS if args.full else None)
    if args.seeds:
        seeds = tuple(int(v) for v in args.seeds.split(","))
    if args.quick:
        datasets, seeds, deltas, extra = ("cora",), (0,), (0.0, 1.0), {"epochs": 60}
    area = "sparsify_quick" if args.quick else "sparsify"
    out_dir = paths.results_dir(area)
    sweep_name = "sparsify_repro_quick" if args.quick else "sparsify_repro"
    cpus = float(os.cpu_count() or 1) / max(1, args.parallel)
    backend = args.backend or ("local" if args.parallel <= 1 else "ray")
    for exp in only:
        if exp == "fig10":
            cfgs = rp.fig10_configs(datasets, deltas, seeds, **extra)
        elif exp == "fig4":
            cfgs = rp.fig4_configs(datasets, seeds, models=("gcn", "gat") if args.gat else ("gcn",),
                                   full=args.full, **extra)
        elif exp == "ablations":
            cfgs = rp.ablation_configs("cora", seeds=seeds, **extra)
        else:
            cfgs = rp.table3_configs(_table3_deltas(datasets, out_dir), seeds, **extra)
        res = run_sweep(run, cfgs, name=sweep_name, backend=backend, num_cpus_per_task=cpus)
        print(f"{exp}: {len(cfgs)} configs, {res.n_new} new, {res.n_cached} cached, {res.n_failed} failed", flush=True)
        for h, err in list(res.failures.items())[:3]:
            print(f"  failed {h}: {err.splitlines()[-1]}", flush=True)
        if res.records:
            print(f"  wrote {_save(res.records, exp, area)}", flush=True)


if __name__ == "__main__":
    main()
