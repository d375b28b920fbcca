"""GPU check of algorithm selection (run on a machine with a CUDA GPU; ~3 min on one GPU).

1. every conv / linear / pooling algorithm available on CUDA against the torch op in fp32 (TF32 off
   for the reference), forward and — where differentiable — backward;
2. the cuDNN policies (``cudnn_benchmark``, ``cudnn_heuristic``, ``cudnn_deterministic``,
   ``cudnn_fp32``, ``cuda_native``) timed per layer on ResNet-50's distinct conv layers through the
   autotuner (inference and training mode), plus the layout choice;
3. ResNet-50 batch 8 at 224 px end to end: torch, torch with ``cudnn.benchmark``, autotuned.

Writes ``results/algsel/gpu_check.csv`` (``--out`` to change); exits 0 with a note when no GPU.

    .venv/bin/python benchmarks/algsel_gpu_check.py [--quick]
"""
from __future__ import annotations

import argparse
import sys
import time

import torch
import torch.nn.functional as F


def _rel(y, ref):
    return float((y - ref).abs().max() / ref.abs().max().clamp_min(1e-30))


def check_algorithms(dev: str) -> list[dict]:
    """Numeric checks of every family's CUDA algorithms (fp32; TF32 off for the reference)."""
    from xflow.algsel.algorithms import ConvConfig, get_algorithm, list_algorithms
    from xflow.algsel.linear import get_linear_algorithm, list_linear_algorithms
    from xflow.algsel.pool import PoolConfig, get_pool_algorithm, list_pool_algorithms

    rows = []
    g = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(2, 16, 14, 14, generator=g).to(dev).requires_grad_(True)
    w = torch.randn(32, 16, 3, 3, generator=g).to(dev).requires_grad_(True)
    b = torch.randn(32, generator=g).to(dev).requires_grad_(True)
    cfg = ConvConfig(16, 32, (3, 3), padding=(1, 1))
    with torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True, allow_tf32=False):
        ref = F.conv2d(x, w, b, 1, 1)
        gref = torch.autograd.grad(ref.square().sum(), (x, w, b))
    for n in list_algorithms(dev):
        a = get_algorithm(n)
        if a.supports(cfg) is not None:
            continue
        y = a.conv2d(x, w, b, (1, 1), (1, 1), (1, 1), 1, {})
        row = {"check": "conv2d", "algorithm": n, "fwd_rel_err": _rel(y.detach(), ref.detach()),
               "tolerance": a.tolerance}
        if a.differentiable:
            gy = torch.autograd.grad(y.square().sum(), (x, w, b))
            row["bwd_rel_err"] = max(_rel(p, r) for p, r in zip(gy, gref))
        rows.append(row)
    xl = torch.randn(16, 512, generator=g).to(dev)
    wl = torch.randn(256, 512, generator=g).to(dev)
    with torch.no_grad():
        for n in list_linear_algorithms(dev):
            a = get_linear_algorithm(n)
            rows.append({"check": "linear", "algorithm": n, "fwd_rel_err": _rel(a.linear(xl, wl, None, {}), xl @ wl.t()),
                         "tolerance": a.tolerance})
        xp = torch.randn(4, 32, 28, 28, generator=g).to(dev)
        pc = PoolConfig("max", (3, 3), (2, 2), (1, 1))
        for n in list_pool_algorithms(dev):
            a = get_pool_algorithm(n)
            rows.append({"check": "pool", "algorithm": n, "fwd_rel_err": _rel(a.pool(xp, pc), F.max_pool2d(xp, 3, 2, 1)),
                         "tolerance": a.tolerance})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="ResNet-50 at 112 px, fewer rounds")
    p.add_argument("--out", default="algsel/gpu_check.csv")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA GPU visible: nothing to check (this script is for a GPU machine)")
        return 0
    from xflow.algsel import autotune, build_model
    from xflow.runtime.measure import measure, torch_variant
    from xflow.tables import save_result

    dev = "cuda"
    t0 = time.perf_counter()
    rows = [{"kind": "numeric", **r} for r in check_algorithms(dev)]
    bad = [r for r in rows if r["fwd_rel_err"] > max(r["tolerance"], 1e-2)]
    print(f"numeric: {len(rows)} algorithm checks, {len(bad)} over tolerance: {bad}")
    image, batch = (112, 8) if args.quick else (224, 8)
    model = build_model("resnet50").to(dev)
    x = torch.randn(batch, 3, image, image, device=dev)
    for mode in ("inference", "train"):
        res = autotune(model, x, dev, mode=mode, layouts=("nchw", "channels_last"), repeats=5 if args.quick else 8,
                       e2e_rounds=5 if args.quick else 8, use_cache=False)
        counts = res.report.choice.value_counts().to_dict()
        print(f"{mode}: layout {res.layout}, choices {counts}")
        for r in res.records():
            rows.append({"kind": f"layer:{mode}", **r})
        for k, v in res.e2e.get("variants", {}).items():
            rows.append({"kind": f"tune_e2e:{mode}", "selection": k, "value": v["speedup"],
                         "speedup_lo": v["speedup_ci"][0], "speedup_hi": v["speedup_ci"][1], "verdict": v["verdict"]})
        if mode == "inference":
            tuned = res.model

    def bench(flag):
        def f():
            old = torch.backends.cudnn.benchmark
            torch.backends.cudnn.benchmark = flag
            try:
                return model(x)
            finally:
                torch.backends.cudnn.benchmark = old
        return f

    with torch.no_grad():
        m = measure({"torch": torch_variant(bench(False), device=dev),
                     "torch+cudnn.benchmark": torch_variant(bench(True), device=dev),
                     "autotuned": torch_variant(lambda: tuned(x), device=dev)}, baseline="torch", warmup=3,
                    rounds=10 if args.quick else 20)
    for k, c in m.comparisons().items():
        print(f"e2e {k}: {c.format()}")
    rows += [{"kind": "e2e", **r} for r in m.records(model="resnet50", batch=batch, image=image)]
    path = save_result(rows, args.out, device=dev)
    print(f"wrote {path} in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
