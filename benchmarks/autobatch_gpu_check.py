"""Autobatching on a CUDA device: batched = CPU values and gradients, few host→device copies, one timed step.

Usage (one short run when a GPU is lent; exits 0 with a note when there is none)::

    .venv/bin/python benchmarks/autobatch_gpu_check.py [--quick] [--json]

For every model (tiny sizes): the autobatched loss and parameter gradients on ``cuda`` equal those on
the CPU with the same weights (``agenda``); the number of host→device memcpy kernels of one forward is
counted with the torch profiler and must not grow with the number of batches (index buffers are built
once per forward and moved in one copy, plus one for per-node data); then one training step of the
quick-size BiLSTM is timed through the measurement core (wall clock, ``torch.cuda.synchronize`` as the
variant's sync), agenda against the same step on the CPU, with its interval and verdict.
Exit status 1 when a check fails.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys


def _loss_and_grads(model, batch, device):
    import torch

    from xflow import autobatch as ab

    m = copy.deepcopy(model).to(device)
    with ab.Graph("agenda") as g:
        loss = g.forward_batch(m.loss_autobatch(batch)).sum()
    loss.backward()
    grads = {n: (p.grad.to_dense() if p.grad.is_sparse else p.grad).cpu() for n, p in m.named_parameters()
             if p.grad is not None}
    return float(loss.detach().cpu()), grads, g.stats["n_groups"], g.stats["n_forwards"]


def _h2d_copies(model, batch) -> int:
    import torch
    from torch.profiler import ProfilerActivity, profile

    from xflow import autobatch as ab

    m = copy.deepcopy(model).to("cuda")
    with torch.no_grad(), ab.Graph("agenda") as g:
        losses = m.loss_autobatch(batch)
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            g.forward(losses)
            torch.cuda.synchronize()
    return sum(e.count for e in prof.key_averages() if "HtoD" in e.key)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="accepted for symmetry with the other benchmarks")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        sys.stdout.write("no CUDA device: autobatch GPU check skipped\n")
        return 0
    from xflow.autobatch.bench import PRESETS, step_fn
    from xflow.autobatch.models import MODELS, get_model
    from xflow.runtime.measure import Variant, measure

    out: dict = {"device": torch.cuda.get_device_name(0), "models": {}}
    ok = True
    for name in sorted(MODELS):
        torch.manual_seed(0)
        model = get_model(name, **PRESETS["tiny"][name])
        batch = model.make_data(4, seed=3)
        lc, gc_, _, _ = _loss_and_grads(model, batch, "cpu")
        lg, gg, groups, fwd = _loss_and_grads(model, batch, "cuda")
        same = abs(lc - lg) <= 1e-4 * abs(lc) and all(torch.allclose(gc_[k], gg[k], atol=1e-4, rtol=1e-3) for k in gc_)
        h2d = _h2d_copies(model, batch)
        few = h2d <= 4 * fwd  # per forward: the index buffer and the per-node data (no per-group copy)
        ok &= same and few
        out["models"][name] = {"loss_cpu": lc, "loss_cuda": lg, "same": same, "groups": groups, "h2d_copies": h2d,
                               "few_copies": few}
    torch.manual_seed(0)
    cpu_model = get_model("bilstm", **PRESETS["quick"]["bilstm"])
    data = cpu_model.make_data(32, seed=1)
    gpu_model = copy.deepcopy(cpu_model).to("cuda")
    variants = {d: Variant(step_fn(m, [data], "agenda", "train", torch.optim.SGD(m.parameters(), lr=1e-3)),
                           sync=torch.cuda.synchronize)
                for d, m in (("cuda", gpu_model), ("cpu", cpu_model))}
    meas = measure(variants, baseline="cpu", aa=True, warmup=1, rounds=5, inner=1, clock="wall")
    c = meas.compare("cuda", "cpu")
    out["bilstm_quick_train"] = {"cuda_ms": meas.median_ms("cuda", "wall"), "cpu_ms": meas.median_ms("cpu", "wall"),
                                 "cuda_vs_cpu": c.format()}
    out["ok"] = bool(ok)
    if args.json:
        sys.stdout.write(json.dumps(out) + "\n")
    else:
        for k, v in out["models"].items():
            sys.stdout.write(f"{k:12s} same={v['same']} loss cpu {v['loss_cpu']:.6f} cuda {v['loss_cuda']:.6f} "
                             f"h2d copies {v['h2d_copies']} (few: {v['few_copies']})\n")
        sys.stdout.write(f"bilstm quick train step: cuda vs cpu {out['bilstm_quick_train']['cuda_vs_cpu']}\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
