"""The issue's "Done when" run of ``xflow sparsify run``, recorded as a committed result.

Runs, from this checkout, exactly::

    xflow sparsify run --dataset cora --model gcn --profile reference --split random \\
        --delta-a 1 --delta-w 1 --lock-eval-nodes --compare-dense --seeds 3 --json
    xflow sparsify run ... (the same) without --lock-eval-nodes

(one thread each: ``OMP_NUM_THREADS=1``), parses both JSON objects and writes one row per
(command, model variant) to ``results/sparsify/done_when.csv`` with
:func:`xflow.tables.save_result` — test accuracy mean/std over the seeds, the paired difference to
the dense model, the share of off-diagonal adjacency entries removed and the share of weights
removed (both summed over the layers, as the reference's ``get_numel``), and the command line.
``make report`` turns it into the ``sparsify.done_when`` table of ``docs/sparsify.md``.

Usage::

    .venv/bin/python benchmarks/sparsify_done_when.py                   # ≈ 8 min on one core
    .venv/bin/python benchmarks/sparsify_done_when.py --from-json L.json U.json   # record saved outputs
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FLAGS = ["--dataset", "cora", "--model", "gcn", "--profile", "reference", "--split", "random",
         "--delta-a", "1", "--delta-w", "1", "--compare-dense", "--seeds", "3", "--json"]


def commands() -> list[list[str]]:
    """The two command lines (with the node lock, without)."""
    return [FLAGS[:12] + ["--lock-eval-nodes"] + FLAGS[12:], list(FLAGS)]


def run(cmd: list[str]) -> dict:
    """Run ``xflow sparsify run <cmd>`` on one thread; its JSON object (a clear error otherwise)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-m", "xflow", "sparsify", "run", *cmd], capture_output=True, text=True,
                          env=env, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"xflow sparsify run failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout)


def records(cmd: list[str], out: dict) -> list[dict]:
    """One row per summary row of a run's JSON, with the paired difference to dense attached."""
    vs = {bool(v["lock_eval_nodes"]): v for v in out.get("vs_dense", [])}
    rows = []
    for r in out["summary"]:
        v = vs.get(bool(r["lock_eval_nodes"])) if r["method"] != "dense" else None
        rows.append({
            "command": "xflow sparsify run " + " ".join(cmd),
            "lock_flag": "--lock-eval-nodes" in cmd,
            "method": r["method"], "lock_eval_nodes": bool(r["lock_eval_nodes"]), "seeds": int(out["seeds"]),
            "test_acc_mean": r["test_acc_mean"], "test_acc_std": r["test_acc_std"],
            "edge_sparsity_offdiag": r["edge_sparsity_offdiag_mean"], "weight_sparsity": r["weight_sparsity_mean"],
            "acc_delta_points": v["acc_delta_points"] if v else 0.0,
            "acc_delta_std": v["acc_delta_std"] if v else 0.0,
            "dense_test_acc": v["dense_test_acc"] if v else r["test_acc_mean"],
        })
    return rows


def main(argv=None) -> None:
    """Run (or read) both commands and save ``results/sparsify/done_when.csv``."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--from-json", nargs=2, metavar=("LOCK_JSON", "NOLOCK_JSON"),
                   help="record the JSON outputs of the two commands run before (same order)")
    p.add_argument("--ran-at", default=None, metavar="SHA",
                   help="with --from-json: the commit of the (clean) checkout the commands ran in")
    args = p.parse_args(argv)
    from xflow.tables import save_result

    rows = []
    for i, cmd in enumerate(commands()):
        out = json.loads(Path(args.from_json[i]).read_text()) if args.from_json else run(cmd)
        for r in records(cmd, out):
            r["ran_at_commit"] = args.ran_at if args.from_json else None
            rows.append(r)
            print(f"{'lock' if r['lock_flag'] else 'no lock'} run: {r['method']:8} lock={r['lock_eval_nodes']!s:5} "
                  f"acc {100 * r['test_acc_mean']:.1f} ± {100 * r['test_acc_std']:.1f}  Δ {r['acc_delta_points']:+.2f}  "
                  f"edges {100 * r['edge_sparsity_offdiag']:.1f}%  weights {100 * r['weight_sparsity']:.1f}%")
    print(f"wrote {save_result(rows, 'sparsify/done_when.csv', threads=1)}")


if __name__ == "__main__":
    main()
