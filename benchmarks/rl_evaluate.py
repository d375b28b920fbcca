"""X-RLflow's evaluation protocol for the committed pretrained policy on held-out models and shapes.

For every evaluation case (a held-out zoo model, or a model at an input shape the policy never saw)
runs :func:`xflow.agents.policy_eval.evaluate_policy`: rl (arg-max), rl-sample and random over 5
seeds (IQM with bootstrap intervals), greedy and beam, all under the policy's cost model; every
distinct final graph timed against the original in one interleaved ORT run (measurement core, A/A
control, thread CPU clock, 1 thread). Writes ``results/rl/evaluate.csv`` (one row per case and
method, saved after each case), which ``make report`` renders as ``envs.rl_evaluate`` in docs/rl.md.

    PYTHONPATH=. .venv/bin/python benchmarks/rl_evaluate.py            # 60 s per search, 30 rounds
    PYTHONPATH=. .venv/bin/python benchmarks/rl_evaluate.py --quick    # 20 s per search, 15 rounds
    PYTHONPATH=. .venv/bin/python benchmarks/rl_evaluate.py --quick --backend torch   # final graphs on torch

``--backend`` says where the final graphs are measured (the searches do not depend on it). ``--cost-model``
runs every search, the policy's included, under another cost model than the one the policy was
trained with (e.g. ``ort``, the backend-aware one; table ``envs.rl_evaluate_cost_models``)::

    PYTHONPATH=. .venv/bin/python benchmarks/rl_evaluate.py --quick --cost-model ort --cases resnext50_32x4d

``--policy data/policies/xrlflow_ort.pt`` evaluates the policy trained with the ``ort`` reward
(``rl_pretrain.py --recipe ort``; tables ``envs.rl_evaluate_ort_policy`` / ``envs.rl_targets_ort_policy``).
A run replaces the rows of its backend, cost model and policy (of its cases, with ``--cases``) and
keeps the others.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

#: ``(case label, model id, shapes)``: none of these models is in the training set
#: (benchmarks/rl_pretrain.py ``TRAIN_MODELS``); the last two are held-out models at shapes other
#: than their defaults (batch 2 / sequence 64; batch 4); googlenet is held out too; the last is a
#: training model at an unseen shape (batch 4, 160x160 images).
CASES: list[tuple[str, str, dict[str, tuple[int, ...]]]] = [
    ("bert_base", "zoo:bert_base", {}),
    ("vit_encoder", "zoo:vit_encoder", {}),
    ("resnext50_32x4d", "zoo:resnext50_32x4d", {}),
    ("inception_v3", "zoo:inception_v3", {}),
    ("bert_base b2 s64", "zoo:bert_base", {"input": (2, 64, 768)}),
    ("vit_encoder b4", "zoo:vit_encoder", {"input": (4, 3, 128, 128)}),
    ("googlenet", "zoo:googlenet", {}),
    ("squeezenet1_1 b4 160px", "zoo:squeezenet1_1", {"input": (4, 3, 160, 160)}),
]


def main(argv: list[str] | None = None) -> int:
    """Evaluate every case; returns the exit status."""
    from xflow.runtime.cli import CLI_BACKENDS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20 s per search, 15 measurement rounds")
    ap.add_argument("--policy", default=None, help="agent.pt (default: data/policies/xrlflow_pretrained.pt)")
    ap.add_argument("--cases", nargs="+", default=None, help="case labels to run (default: all)")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--backend", choices=list(CLI_BACKENDS), default="ort",
                    help="where the final graphs are measured")
    ap.add_argument("--budget-s", type=float, default=None, help="time budget per search (default: 20 quick, 60)")
    ap.add_argument("--cost-model", default=None,
                    help="cost model of every search (default: the one the policy was trained with)")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    import torch

    torch.set_num_threads(1)
    from xflow.agents.policy_eval import DEFAULT_POLICY, default_policy, evaluate_policy
    from xflow.results import provenance
    from xflow.safeio import sha256_file
    from xflow.tables import save_result

    policy = Path(a.policy) if a.policy else default_policy()
    record = policy.with_suffix(".json")
    train_models = json.loads(record.read_text())["train_models"] if record.exists() else []
    budget, repeats = (20.0, 15) if a.quick else (60.0, 30)
    budget = a.budget_s or budget
    rows: list[dict] = []
    for label, mid, shapes in CASES:
        if a.cases and label not in a.cases:
            continue
        res = evaluate_policy(policy, mid, shapes=shapes, seeds=a.seeds, repeats=repeats, time_budget_s=budget,
                              backend=a.backend, cost_model=a.cost_model)
        m = res["measurement"]
        prov = provenance("cpu", 1)  # stamped per row: a partial re-run mixes rows of two runs
        for r in res["methods"]:
            rows.append({**prov, "case": label, "backend": a.backend, "model_id": res["model_id"], "shape": json.dumps(res["shapes"]),
                         "unseen_shape": bool(shapes), **{k: v for k, v in r.items() if k != "rules"},
                         "rules": r.get("rules", ""), "cost_model": res["cost_model"],
                         "policy_cost_model": res["policy_cost_model"], "horizon": res["horizon"],
                         "time_budget_s": budget, "policy": policy.name, "policy_sha256": sha256_file(policy)[:16],
                         "train_models": " ".join(train_models), "original_ms": m.get("original_ms"),
                         "noise_floor": m.get("noise_floor"), "clock": m.get("clock"),
                         "repeats": repeats, "busy": m.get("busy")})
        for r in res["methods"]:
            print(f"{label:<18} {r['method']:<9} predicted x{r['predicted_ratio']:.4f}  "  # noqa: T201
                  f"measured {r['measured_speedup'] if r['measured_speedup'] is None else round(r['measured_speedup'], 3)} "
                  f"{r['verdict']}  {r['search_time_s']:.1f} s", flush=True)
        if not a.no_write:  # replaces this backend's and cost model's rows (of its cases); the others stay
            key = ("backend", "cost_model", "policy")
            save_result(rows, "rl/evaluate.csv", threads=1, replace_on=("case", *key) if a.cases else key,
                        defaults={"backend": "ort", "policy": Path(DEFAULT_POLICY).name})
    return 0


if __name__ == "__main__":
    sys.exit(main())
