"""``xflow sparsify run``: train a (sparsified) GNN over seeds and print accuracy, sparsity, MACs, time.

Example::

    xflow sparsify run --dataset cora --model gcn --delta-a 0.5 --delta-w 0.3 --seeds 3 --compare-dense
    xflow sparsify run --dataset cora --split random --profile reference --delta-a 0.2 --delta-w 2 --seeds 3

Heavy imports (torch, PyG) happen inside the handler so ``xflow --help`` stays fast.
"""
from __future__ import annotations

import argparse

from xflow.clitools import Report, add_command, dataset_spec, finite_float, plus_minus, positive_int, run_units

__all__ = ["register", "cmd_run"]

_SHOW = ("test_acc", "edge_sparsity", "edge_sparsity_offdiag", "weight_sparsity", "total_sparsity",
         "prunable_sparsity",
         "macs", "mac_reduction", "train_time_per_epoch_s", "infer_time_s")


def register(subparsers: "argparse._SubParsersAction") -> None:
    """Add the ``sparsify`` command family."""
    p = subparsers.add_parser("sparsify", help="Unifews entry-wise GNN sparsification experiments")
    sub = p.add_subparsers(dest="sparsify_command", metavar="SUBCOMMAND")
    r = add_command(sub, "run", cmd_run, help="train a sparsified GNN over seeds and report accuracy/sparsity/MACs")
    r.add_argument("--dataset", type=dataset_spec(("cora", "citeseer"), ("sbm", "powerlaw")), default="cora", help="cora, citeseer, sbm:<nodes>:<deg>, powerlaw:<nodes>:<deg>")
    r.add_argument("--split", default="public", choices=["public", "random"], help="public split or random 50/25/25")
    r.add_argument("--model", default="gcn", help="gcn, gat, sgc, appnp (or gcn_pyg, gat_pyg)")
    r.add_argument("--method", default="unifews", help="unifews, dense, random, dspar, ugs")
    r.add_argument("--delta-a", type=finite_float(0), default=0.0, help="edge threshold factor δ_a")
    r.add_argument("--delta-w", type=finite_float(0), default=0.0, help="weight threshold factor δ_w")
    r.add_argument("--edge-sparsity", type=finite_float(0, 1, hi_open=True), default=0.0, help="target edge sparsity (baselines)")
    r.add_argument("--weight-sparsity", type=finite_float(0, 1, hi_open=True), default=0.0, help="target weight sparsity (baselines)")
    r.add_argument("--seeds", type=positive_int(1000), default=1, help="number of seeds (0..N-1)")
    r.add_argument("--epochs", type=positive_int(1_000_000), default=None, help="training epochs (default per model)")
    r.add_argument("--batch-norm", action="store_true", help="BatchNorm on hidden/propagated features (gcn, sgc, appnp)")
    r.add_argument("--profile", default="xflow", choices=["xflow", "reference"],
                   help="hyper-parameters: xflow defaults or the gdmnl/Unifews reference code's (hidden 512, BN, "
                        "no self-loops, per-epoch masks; use with --split random)")
    r.add_argument("--hidden", type=positive_int(1 << 16), default=None, help="hidden width (gcn/gat/appnp; default per profile)")
    r.add_argument("--lock-eval-nodes", action="store_true",
                   help="reference evaluation artefact: never prune edges into the evaluated nodes")
    r.add_argument("--compare-dense", action="store_true", help="also run the dense model with the same seeds")
    r.add_argument("--save", action="store_true",
                   help="append each seed's records to results/sparsify_cli/ as it finishes; an interrupted "
                        "run resumes from the finished seeds")

    def _help(args):
        p.print_help()
        return Report(data={}, text="")

    p.set_defaults(func=_help)


def cmd_run(args: argparse.Namespace) -> Report:
    """Run the configured experiment for ``--seeds`` seeds (and the dense reference if asked)."""
    from xflow.sparsify.experiment import run, summarize

    base = {"dataset": args.dataset, "split": args.split, "model": args.model, "method": args.method,
            "delta_a": args.delta_a, "delta_w": args.delta_w, "target_edge_sparsity": args.edge_sparsity,
            "target_weight_sparsity": args.weight_sparsity, "epochs": args.epochs,
            "batch_norm": True if args.batch_norm else None, "profile": args.profile, "hidden": args.hidden,
            "lock_eval_nodes": bool(args.lock_eval_nodes)}
    configs = [dict(base, seed=s) for s in range(max(1, args.seeds))]
    if args.compare_dense and args.method != "dense":
        configs += [dict(base, method="dense", seed=s) for s in range(max(1, args.seeds))]
    records, saved = run_units(run, configs, name="sparsify_cli", save=args.save, desc="sparsify seeds")
    seeds = max(1, args.seeds)
    table = summarize(records, metrics=_SHOW)
    rows = table.to_dict(orient="records")
    lines = [f"{'method':8} {'test acc':>15} {'edge sp':>8} {'(offdiag)':>9} {'weight sp':>9} {'total sp':>8} "
             f"{'prunable':>8} {'MACs':>12} {'reduction':>9} {'epoch s':>8} {'infer s':>8}"]
    for r in rows:
        lines.append(
            f"{r['method']:8} {plus_minus(100 * r['test_acc_mean'], 100 * r['test_acc_std'], seeds):>15} "
            f"{100 * r['edge_sparsity_mean']:7.1f}% {100 * r['edge_sparsity_offdiag_mean']:8.1f}% "
            f"{100 * r['weight_sparsity_mean']:8.1f}% {100 * r['total_sparsity_mean']:7.1f}% "
            f"{100 * r['prunable_sparsity_mean']:7.1f}% "
            f"{r['macs_mean']:12.4g} {r['mac_reduction_mean']:8.2f}x "
            f"{r['train_time_per_epoch_s_mean']:8.4f} {r['infer_time_s_mean']:8.4f}")
    split = "random 50/25/25 split" if ":" in args.dataset else f"{args.split} split"
    head = (f"{args.dataset} ({split}), model {args.model}, δ_a={args.delta_a}, δ_w={args.delta_w}, "
            f"{max(1, args.seeds)} seed(s), profile {args.profile}")
    null_reasons = {}
    if seeds < 2:  # a spread over one seed is not a spread
        for r in rows:
            for k in [k for k in r if k.endswith("_std")]:
                r[k] = None
        null_reasons["summary[*].*_std"] = "one seed: no spread (use --seeds 2 or more)"
    if args.save:
        lines.append(f"saved {len(saved['saved'])} new seed run(s) to {_results('sparsify_cli')}"
                     + (f"; {saved['resumed']} finished seed run(s) resumed from {saved['cache']}"
                        if saved["resumed"] else ""))
    return Report(data={"config": base, "seeds": max(1, args.seeds), "summary": rows,
                        "saved": saved["saved"] if args.save else None,
                        "resumed": saved["resumed"] if args.save else None,
                        **({"null_reasons": null_reasons} if null_reasons else {})},
                  text="\n".join([head] + lines))


def _results(name: str) -> str:
    from xflow import paths

    return str(paths.results_dir(name))
