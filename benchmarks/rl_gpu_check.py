"""Issue 12, item 7: every method's final graphs measured on the ``torch-cuda`` backend (X-RLflow's setting is a GPU).

Usage (one short run when a GPU is lent; exits 0 with a note when there is none)::

    .venv/bin/python benchmarks/rl_gpu_check.py [--budget-s 8]

First checks that the torch-cuda backend computes ORT's outputs on each case's original model, then
runs ``benchmarks/rl_evaluate.py --quick --backend torch-cuda`` on the cases whose searches rewrite
the graph on the CPU runs (Inception-v3, GoogLeNet, SqueezeNet at batch 4 × 160 px), with a short
search budget so that the whole run fits in about 10 minutes. Rows land in
``results/rl/evaluate.csv`` with ``backend = torch-cuda`` (the CPU rows stay). Exit status 1 when
an output check fails.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CASES = ["inception_v3", "googlenet", "squeezenet1_1 b4 160px"]


def check_outputs(model_ids: list[str], backend: str = "torch-cuda") -> list[str]:
    """Model ids whose ``backend`` outputs differ from ONNX Runtime's (empty: all agree)."""
    from xflow.costs.ort_optimized import transient_proto
    from xflow.graphs.model_ids import resolve_graph
    from xflow.runtime.backend import make_backend_session
    from xflow.runtime.equivalence import compare_arrays
    from xflow.runtime.session import random_inputs

    bad = []
    for mid in model_ids:
        proto = transient_proto(resolve_graph(mid))
        feeds = random_inputs(proto, seed=0)
        ref = make_backend_session(proto, "ort", level="disable")
        got = make_backend_session(proto, backend).run(feeds)
        diffs = compare_arrays(got, ref.run(feeds), [o.name for o in ref.outputs])
        if any(not d.ok for d in diffs):
            bad.append(mid)
    return bad


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget-s", type=float, default=8.0, help="time budget per search")
    args = ap.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        sys.stdout.write("no CUDA device: RL torch-cuda check skipped\n")
        return 0
    import rl_evaluate

    from xflow.agents.policy_eval import shaped_model_id

    ids = [shaped_model_id(mid, shapes) for label, mid, shapes in rl_evaluate.CASES if label in CASES]
    bad = check_outputs(ids)
    if bad:
        sys.stderr.write(f"torch-cuda outputs differ from ONNX Runtime on {', '.join(bad)}\n")
        return 1
    return rl_evaluate.main(["--quick", "--backend", "torch-cuda", "--budget-s", str(args.budget_s),
                             "--cases", *CASES])


if __name__ == "__main__":
    raise SystemExit(main())
