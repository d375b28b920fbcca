"""Autobatching throughput: eager vs depth/agenda vs hand-batched vs DyNet, per model, training and inference.

One command writes the result file the docs page quotes (``docs/autobatch.md``)::

    .venv/bin/python benchmarks/autobatch_throughput.py            # DyNet's sizes, minibatch 64 -> results/autobatch/throughput.csv
    .venv/bin/python benchmarks/autobatch_throughput.py --quick    # small sizes, a few minutes -> results/autobatch/throughput_quick.csv
    make report                                                    # regenerate the docs tables from the files

Per model, every implementation runs in one process through the measurement core
(:func:`xflow.runtime.measure.measure`: warm-up, interleaved shuffled rounds, thread CPU time
deciding, an A/A control, paired bootstrap intervals and verdicts; see :mod:`xflow.autobatch.bench`).
With DyNet installed (``dynet38``, the ``peers`` extra) the model's run happens in a subprocess
that imported DyNet with autobatching on, so DyNet's variants (``dynet1``: its fused LSTM ops;
``dynet1-unfused``: the elementwise graph, the only one for the Tree-LSTM) are measured in the
*same* rounds as xflow's (``--no-dynet`` skips them). Runs go through :func:`xflow.sweep.run_sweep`
(local backend: timings must not share the CPU with other sweep tasks); the result file is
rewritten after every finished model, so an interrupted run keeps what it measured.
"""
from __future__ import annotations

import argparse
import sys
import time

from xflow.autobatch.bench import default_config, run_experiment
from xflow.autobatch.dynet_peer import dynet_available
from xflow.clitools import int_range, name_list
from xflow.sweep import run_sweep
from xflow.tables import save_result

MODELS = ("bilstm", "bilstm-char", "treelstm", "parser")
#: Implementations measured per model (DyNet's are added by the peer subprocess).
IMPLS = ("eager", "depth", "agenda", "agenda-unfused", "hand")
#: Columns kept in the committed CSV (the rest of a record is run bookkeeping).
COLUMNS = ("model", "preset", "batch", "unit", "mode", "metric", "variant", "baseline", "value", "iqr_ms",
           "wall_ms", "thread_cpu_ms", "contention", "throughput", "throughput_wall", "ratio", "ci_lo", "ci_hi",
           "verdict", "noise_floor", "rounds", "a", "b", "lo", "hi", "text", "wall_value", "wall_lo", "wall_hi",
           "wall_verdict", "stat", "clock", "load_before", "load_after", "foreign_cpu", "busy", "elapsed_s", "n_tokens",
           "dynet_flag")


def configs(quick: bool, models: list[str], tag: str, dynet: bool, rounds: int | None) -> list[dict]:
    """One config per model; ``tag`` makes a fresh measurement (sweep cache key) per invocation."""
    out = []
    for m in models:
        cfg = default_config(m, quick=quick, impls=list(IMPLS), run_tag=tag, peer_dynet=dynet)
        if rounds is not None:
            cfg["rounds"] = rounds
        out.append(cfg)
    return out


def _rows(records: list[dict]) -> list[dict]:
    return [{k: r[k] for k in COLUMNS if k in r} for r in records]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small dimensions, minibatch 32 (char model 16), 5 rounds")
    ap.add_argument("--models", type=name_list(MODELS), default=",".join(MODELS),
                    help=f"comma-separated subset of {','.join(MODELS)}")
    ap.add_argument("--rounds", type=int_range(2, hint="an interval needs two rounds"), default=None,
                    help="interleaved rounds per model (default 10, quick 5)")
    ap.add_argument("--no-dynet", action="store_true", help="skip the DyNet peer even when dynet38 is installed")
    ap.add_argument("--out", default=None, help="result file under results/ (default autobatch/throughput[_quick].csv)")
    args = ap.parse_args(argv)
    models = args.models.split(",")
    dynet = not args.no_dynet and dynet_available()
    if not args.no_dynet and not dynet:
        sys.stderr.write("dynet38 not installed: the DyNet peer is skipped (pip install dynet38)\n")
    out = args.out or f"autobatch/throughput{'_quick' if args.quick else ''}.csv"
    tag = time.strftime("%Y%m%dT%H%M%S")
    records: list[dict] = []
    failed = 0
    for cfg in configs(args.quick, models, tag, dynet, args.rounds):
        res = run_sweep(run_experiment, [cfg], name="autobatch_throughput", backend="local", progress=False)
        for h, err in res.failures.items():
            failed += 1
            sys.stderr.write(f"{cfg['model']}: failed:\n{err}\n")
        records += res.records
        if records:
            path = save_result(_rows(records), out, threads=1)
        for r in res.records:
            if r["metric"] == "speedup" and r["mode"] == "train" and r["a"] == "agenda":
                sys.stdout.write(f"{cfg['model']:12s} train agenda vs {r['b']:15s} {r['text']}\n")
    if records:
        sys.stdout.write(f"results: {path}\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
