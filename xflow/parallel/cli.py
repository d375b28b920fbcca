"""``xflow parallel`` subcommands: ``compile`` (ONNX → parallel Python module) and ``bench``."""
from __future__ import annotations

import argparse

from xflow.clitools import (Report, add_check, add_command, add_output, finite_float, int_range, name_list,
                            positive_int, refuse_overwrite, workers)
from xflow.graphs.model_args import add_onnx_input


def _outputs(module: str) -> list[str]:
    """The three files ``compile -o MODULE.py`` writes (module, weights, record)."""
    from pathlib import Path

    py = Path(module)
    return [str(py), str(py.with_suffix(".onnx")), str(py.with_suffix(".json"))]


def _check_compile_outputs(args: argparse.Namespace) -> None:
    """None of the generated files may be the input model (``-o model.py`` writes ``model.onnx``)."""
    from xflow.clitools import UsageError
    from xflow.safeio import same_file

    given = getattr(args, "_given_paths", {}).get("model", args.model)
    for out in _outputs(args.output)[1:]:
        if same_file(out, given):
            raise UsageError(f"-o {args.output} would write {out} next to it, which is the input model; "
                             "give the module another name or folder (xflow never overwrites its inputs)")

__all__ = ["register"]


def _compile(args: argparse.Namespace) -> Report:
    from xflow.parallel.api import compile_model
    from xflow.parallel.planner import PlanConfig

    cfg = PlanConfig(workers=args.workers, mode=args.mode, min_gain=args.min_gain,
                     cloning=not args.no_cloning)
    if args.cost == "measured":  # hand-off costs measured now, on this machine
        from xflow.parallel.cost import measured_overheads

        ov = measured_overheads(args.workers)
        cfg.fork_us = max(cfg.fork_us, ov["fork_us"])
        cfg.sync_us = max(cfg.sync_us, ov["sync_us"])
    from xflow.runtime.backend_lower import LowerOptions

    res = compile_model(args.model, workers=args.workers, mode=args.mode, backend=args.backend,
                        cost=args.cost, config=cfg, verify=args.verify,
                        lower=LowerOptions(onednn=args.onednn) if args.onednn != "auto" else None)
    refuse_overwrite(_outputs(args.output), [getattr(args, "_given_paths", {}).get("model", args.model)])
    paths = res.write(args.output)
    s = res.summary()
    g, plan = res.graph, res.plan
    lines = [f"{args.model} -> {paths['module']} (+ {paths['weights'].name}, {paths['record'].name})",
             f"nodes {s['nodes']}; constant-folded {s['const_nodes_folded']}; dead removed "
             f"{s['dead_nodes_removed']}; cloned {s['cloned_nodes']}",
             f"mode {plan.mode}, backend {res.backend}, workers {plan.workers}"
             + ("  [safety valve: serial schedule emitted]" if plan.fallback else "")]
    if "verify" in res.record:
        v = res.record["verify"]
        lines.append(f"verify: parallel {v['parallel_ms']:.2f} ms vs serial {v['serial_ms']:.2f} ms, speed-up "
                     f"{v['summary']} -> {'kept' if v['kept_parallel'] else 'serial emitted'}")
    for si, st in enumerate(plan.stages):
        if st.kind == "parallel":
            cl = ", ".join(f"c{ci}: {len(c.nodes)} nodes/{c.cost(g, 1):.0f}us"
                           + (f" (+{len(c.clones)} cloned: {', '.join(g.nodes[v].name for v in c.clones)})"
                              if c.clones else "")
                           for ci, c in enumerate(st.clusters))
            lines.append(f"  stage {si}: parallel  {cl}")
        else:
            lines.append(f"  stage {si}: serial    {len(st.clusters[0].nodes)} nodes @ {st.threads} thread(s)")
    lines.append(f"predicted {s['predicted_us'] / 1e3:.2f} ms vs serial {s['serial_predicted_us'] / 1e3:.2f} ms "
                 f"-> x{s['predicted_speedup']:.2f}")
    data = {**s, "module": str(paths["module"]), "weights": str(paths["weights"]),
            "record": str(paths["record"])}
    return Report(data=data, text="\n".join(lines))


def _bench(args: argparse.Namespace) -> Report:
    from xflow.parallel.bench import format_table, variants_for
    from xflow.runtime.measure import measure

    tables, info = variants_for(args.model, workers=args.workers, cost=args.cost,
                                backends=tuple(args.backends.split(",")))
    data: dict = {"model": str(args.model), "workers": args.workers, "tables": {}}
    texts = []
    for table in ("serial", "parallel"):
        m = measure(tables[table], baseline="gen_serial", warmup=args.warmup, rounds=args.repeats)
        data["tables"][table] = m.summary()
        texts.append(format_table(m, table))
    data["plans"] = {k: {x: v[x] for x in ("predicted_speedup", "parallel_stages", "cloned_nodes", "fallback")}
                     for k, v in info.items() if not k.startswith("_")}
    return Report(data=data, text="\n\n".join(texts))


def register(subparsers: "argparse._SubParsersAction") -> None:
    """Add ``xflow parallel compile|bench``."""
    p = add_command(subparsers, "parallel", None, help="dataflow-graph parallelization with code generation")
    sub = p.add_subparsers(dest="parallel_command", metavar="SUBCOMMAND")
    c = add_command(sub, "compile", _compile,
                    help="generate a parallel Python module from an ONNX model")
    add_onnx_input(c, help="ONNX file (static input shapes)")
    add_output(c, required=True, suffixes=(".py",),
               help="generated module path (.py); .onnx and .json of the same name go next to it")
    add_check(c, _check_compile_outputs)
    c.add_argument("--workers", type=workers(), default=2, help="parallel workers (threads)")
    c.add_argument("--mode", default="hybrid", choices=["serial", "intra", "branch", "hybrid"])
    c.add_argument("--backend", default="threads", choices=["threads", "torchscript", "cuda_streams"],
                   help="threads (default), torchscript (torch.jit.fork) or cuda_streams (a GPU; analytic costs)")
    c.add_argument("--cost", default="measured", choices=["measured", "analytic"])
    c.add_argument("--min-gain", type=finite_float(0, 1, hi_open=True), default=0.05,
                   help="safety valve threshold (fraction)")
    c.add_argument("--no-cloning", action="store_true")
    c.add_argument("--onednn", default="auto", choices=["auto", "on", "off", "tuned", "graph"],
                   help="convolution lowering: shape rule (auto), every conv on oneDNN (on), F.conv2d (off), "
                        "measured per conv (tuned), or frozen TorchScript run by the oneDNN Graph fuser (graph; "
                        "parallel stages need --backend torchscript)")
    c.add_argument("--verify", action="store_true",
                   help="time the generated code against the serial baseline; emit serial unless faster")
    b = add_command(sub, "bench", _bench,
                    help="latency of generated serial/parallel code vs torch and ONNX Runtime (speed-ups with "
                         "intervals and verdicts)")
    add_onnx_input(b, help="ONNX file")
    b.add_argument("--workers", type=workers(), default=2, help="parallel workers (threads)")
    b.add_argument("--repeats", type=int_range(2, 100_000, hint="an interval needs two rounds"), default=10,
                   help="timed rounds")
    b.add_argument("--warmup", type=int_range(0, 100_000), default=3, help="untimed warm-up rounds")
    b.add_argument("--cost", default="measured", choices=["measured", "analytic"])
    b.add_argument("--backends", type=name_list(("threads", "torchscript")), default="threads,torchscript",
                   help="comma-separated generated-code backends to time")
