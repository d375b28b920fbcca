"""``xflow sparsify run``: train a (sparsified) GNN over seeds and print accuracy, sparsity, MACs, time.

Example::

    xflow sparsify run --dataset cora --model gcn --delta-a 0.5 --delta-w 0.3 --seeds 3 --compare-dense
    xflow sparsify run --dataset cora --model gcn --profile reference --split random --delta-a 1 \
        --delta-w 1 --lock-eval-nodes --compare-dense --seeds 3 --json

``--lock-eval-nodes`` (the reference code's evaluation, which never prunes edges into the evaluated
nodes) always also runs the same configuration without the lock and reports it beside it
(``--no-compare-lock`` skips that; ``--compare-lock`` adds the locked run to an unlocked one). With
``--compare-dense`` every variant gets its accuracy difference to the dense model, paired by seed
(``vs_dense``), and the first seed's sparse and dense models are timed (inference, one full-graph
forward) through the measurement core: the speed-up is printed with its interval and verdict.

Heavy imports (torch, PyG) happen inside the handler so ``xflow --help`` stays fast.
"""
from __future__ import annotations

import argparse

from xflow.clitools import Report, add_command, dataset_spec, finite_float, plus_minus, positive_int, run_units

__all__ = ["register", "cmd_run"]

_SHOW = ("test_acc", "edge_sparsity", "edge_sparsity_offdiag", "weight_sparsity", "total_sparsity",
         "prunable_sparsity", "macs", "mac_reduction")


def register(subparsers: "argparse._SubParsersAction") -> None:
    """Add the ``sparsify`` command family."""
    p = subparsers.add_parser("sparsify", help="Unifews entry-wise GNN sparsification experiments")
    sub = p.add_subparsers(dest="sparsify_command", metavar="SUBCOMMAND")
    r = add_command(sub, "run", cmd_run, help="train a sparsified GNN over seeds and report accuracy/sparsity/MACs")
    r.add_argument("--dataset", type=dataset_spec(("cora", "citeseer", "pubmed"), ("sbm", "powerlaw"), prefixes=("ogbn-", "ogbn_")),
                   default="cora", help="cora, citeseer, pubmed, ogbn-<name> (OGB folder), sbm:<nodes>:<deg>, "
                                        "powerlaw:<nodes>:<deg>")
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
                   help="hyper-parameters: xflow defaults or the gdmnl/Unifews reference code's (its graphs, "
                        "hidden 512, BN, per-epoch masks, push propagation for sgc/appnp; use with --split random)")
    r.add_argument("--hidden", type=positive_int(1 << 16), default=None, help="hidden width (gcn/gat/appnp; default per profile)")
    r.add_argument("--lock-eval-nodes", action="store_true",
                   help="reference evaluation artefact: never prune edges into the evaluated nodes")
    r.add_argument("--device", default=None, help="cpu (default), cuda, cuda:N: where model, features and graph live")
    r.add_argument("--compare-dense", action="store_true", help="also run the dense model with the same seeds")
    r.add_argument("--compare-lock", action="store_true", default=None,
                   help="also run the opposite --lock-eval-nodes setting (default with --lock-eval-nodes)")
    r.add_argument("--no-compare-lock", dest="compare_lock", action="store_false",
                   help="with --lock-eval-nodes: do not also run the unlocked model")
    r.add_argument("--save", action="store_true",
                   help="append each seed's records to results/sparsify_cli/ as it finishes; an interrupted "
                        "run resumes from the finished seeds")

    def _help(args):
        p.print_help()
        return Report(data={}, text="")

    p.set_defaults(func=_help)


def _timing(sparse_model, dense_model, data, graph) -> dict | None:
    """Inference of the trained sparse vs dense model through the measurement core (thread CPU time)."""
    import torch

    from xflow.runtime.measure import measure, torch_variant

    if getattr(sparse_model, "decoupled", False) or not hasattr(sparse_model, "propagations"):
        return None
    dev = next(sparse_model.parameters()).device
    if dev.type != "cpu":
        from xflow.sparsify.devices import to_device

        _, data, graph = to_device(dev, sparse_model, data, graph)

    def forward(m):
        def call():
            with torch.no_grad():
                m.eval()
                m(data.x, graph)
        return call

    meas = measure({k: torch_variant(forward(m), threads=1, device=str(dev))
                    for k, m in (("dense", dense_model), ("sparse", sparse_model))}, baseline="dense",
                   warmup=2, rounds=15)
    c = meas.compare("sparse", "dense")
    return {"inference_speedup": c.as_dict(), "text": c.format(), "dense_ms": meas.median_ms("dense"),
            "sparse_ms": meas.median_ms("sparse"), "clock": meas.clock, "warnings": list(meas.warnings)}


def _vs_dense(records) -> list[dict]:
    """Per sparse variant (lock on / off): test accuracy minus the dense model's, paired by seed
    (mean and std in points), and the variant's mean sparsities."""
    from xflow.sparsify.experiment import to_wide

    wide = to_wide(records)
    dense = wide[wide["method"] == "dense"].set_index("seed")["test_acc"]
    out = []
    for (method, lock), g in wide[wide["method"] != "dense"].groupby(["method", "lock_eval_nodes"]):
        g = g.set_index("seed")
        d = (g["test_acc"] - dense.reindex(g.index)).dropna()
        if not len(d):
            continue
        out.append({"method": method, "lock_eval_nodes": bool(lock), "seeds": int(len(d)),
                    "acc_delta_points": float(100 * d.mean()), "acc_delta_std": float(100 * d.std(ddof=0)),
                    "test_acc": float(g["test_acc"].mean()), "dense_test_acc": float(dense.mean()),
                    "edge_sparsity_offdiag": float(g["edge_sparsity_offdiag"].mean()),
                    "weight_sparsity": float(g["weight_sparsity"].mean())})
    return out


def cmd_run(args: argparse.Namespace) -> Report:
    """Run the configured experiment for ``--seeds`` seeds (and the dense reference / the other lock
    setting if asked)."""
    from xflow.sparsify.experiment import load_graph, resolve, run_trained, summarize, _model_input

    base = {"dataset": args.dataset, "split": args.split, "model": args.model, "method": args.method,
            "delta_a": args.delta_a, "delta_w": args.delta_w, "target_edge_sparsity": args.edge_sparsity,
            "target_weight_sparsity": args.weight_sparsity, "epochs": args.epochs,
            "batch_norm": True if args.batch_norm else None, "profile": args.profile, "hidden": args.hidden,
            "lock_eval_nodes": bool(args.lock_eval_nodes), "device": args.device}
    seeds = range(max(1, args.seeds))
    variants = [base]
    compare_lock = bool(args.lock_eval_nodes) if args.compare_lock is None else bool(args.compare_lock)
    if compare_lock and args.method == "unifews":
        variants.append(dict(base, lock_eval_nodes=not base["lock_eval_nodes"]))
    configs = [dict(v, seed=s) for v in variants for s in seeds]
    if args.compare_dense and args.method != "dense":
        configs += [dict(base, method="dense", seed=s) for s in seeds]
    models: dict = {}

    def run(cfg: dict) -> list[dict]:
        recs, model = run_trained(cfg)
        if cfg["seed"] == 0:  # kept for the inference timing below (local runs)
            models[(cfg["method"], cfg["lock_eval_nodes"])] = model
        return recs

    records, saved = run_units(run, configs, name="sparsify_cli", save=args.save, desc="sparsify seeds")
    seeds = max(1, args.seeds)
    table = summarize(records, metrics=_SHOW)
    rows = table.to_dict(orient="records")
    lines = [f"{'method':8} {'lock':>5} {'test acc':>15} {'edge sp':>8} {'(offdiag)':>9} {'weight sp':>9} "
             f"{'total sp':>8} {'prunable':>8} {'MACs':>12} {'reduction':>9}"]
    for r in rows:
        lines.append(
            f"{r['method']:8} {'yes' if r['lock_eval_nodes'] else 'no':>5} "
            f"{plus_minus(100 * r['test_acc_mean'], 100 * r['test_acc_std'], seeds):>15} "
            f"{100 * r['edge_sparsity_mean']:7.1f}% {100 * r['edge_sparsity_offdiag_mean']:8.1f}% "
            f"{100 * r['weight_sparsity_mean']:8.1f}% {100 * r['total_sparsity_mean']:7.1f}% "
            f"{100 * r['prunable_sparsity_mean']:7.1f}% "
            f"{r['macs_mean']:12.4g} {r['mac_reduction_mean']:8.2f}x")
    vs_dense = _vs_dense(records) if args.compare_dense and args.method != "dense" else []
    for v in vs_dense:
        lines.append(f"vs dense ({'with' if v['lock_eval_nodes'] else 'without'} eval node lock): "
                     f"{v['acc_delta_points']:+.2f} ± {v['acc_delta_std']:.2f} points (paired by seed, "
                     f"{v['seeds']} seeds) with {100 * v['edge_sparsity_offdiag']:.1f}% of off-diagonal edges "
                     f"and {100 * v['weight_sparsity']:.1f}% of weights removed")
    timing = None
    have = (args.method, base["lock_eval_nodes"]) in models and ("dense", base["lock_eval_nodes"]) in models
    if args.compare_dense and args.method != "dense" and have:  # (seeds resumed from the cache have no model)
        res = resolve(dict(base, seed=0))
        data, graph = load_graph(args.dataset, args.split, 0, res["self_loops"],
                                 largest_component=res["largest_component"], stratify=res["stratify"],
                                 normalize_features=res["normalize_features"])
        timing = _timing(models[(args.method, base["lock_eval_nodes"])], models[("dense", base["lock_eval_nodes"])],
                         _model_input(data, args.model), graph)
        if timing is not None:
            lines.append(f"inference speed-up of the sparse model (seed 0, {timing['clock']} clock): {timing['text']} "
                         f"({timing['dense_ms']:.2f} → {timing['sparse_ms']:.2f} ms)")
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
    data = {"config": base, "seeds": seeds, "summary": rows,
            "saved": saved["saved"] if args.save else None,
            "resumed": saved["resumed"] if args.save else None,
            **({"null_reasons": null_reasons} if null_reasons else {})}
    if vs_dense:
        data["vs_dense"] = vs_dense
    if timing is not None:
        data["timing"] = {k: v for k, v in timing.items() if k != "text"}
    return Report(data=data, text="\n".join([head] + lines))


def _results(name: str) -> str:
    from xflow import paths

    return str(paths.results_dir(name))
