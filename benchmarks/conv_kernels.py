"""Which convolution kernel is fastest at one thread, per configuration, and how good the shape rule
of ``onednn="auto"`` is (:func:`xflow.runtime.backend_ops.prefers_onednn`).

For every distinct (fused) convolution of the generated-code benchmark models (GoogLeNet,
Inception-v3, SqueezeNet 1.1, NASNet-like at the sizes of ``benchmarks/parallel_latency.py``) the
lines the torch backend would emit for each kernel — ``native`` (``F.conv2d``), ``onednn``
(``torch.ops.mkldnn._convolution_pointwise`` with prepacked weights and fused post-ops) and, where
it applies, ``nnpack`` — are timed interleaved through the measurement core (thread CPU time, A/A
control of the rule's choice, intervals and verdicts against it):
:func:`xflow.runtime.backend_tune.measure_conv`.

Result file: ``results/runtime/conv_kernels.csv`` (long format, one row per configuration ×
kernel), read by ``make report`` for the tables ``runtime.conv_kernels`` (per model: time of the
convolutions under each policy) and ``runtime.conv_rule`` (how often the rule's choice is
measurably beaten) in docs/zoo_and_runtime.md.

    .venv/bin/python benchmarks/conv_kernels.py            # 4 models, 15 rounds (~3 min)
    .venv/bin/python benchmarks/conv_kernels.py --quick    # squeezenet1_1 only, 5 rounds
"""
from __future__ import annotations

import argparse
import logging
import sys
import time

MODELS = ["googlenet", "inception_v3", "squeezenet1_1", "nasnet_like"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="squeezenet1_1 only, 5 rounds")
    ap.add_argument("--models", nargs="+", help=f"default: {' '.join(MODELS)}")
    ap.add_argument("--rounds", type=int, help="rounds per configuration (default 15; quick 5)")
    ap.add_argument("--no-write", action="store_true", help="do not write the result file")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import numpy as np
    from tqdm import tqdm

    from xflow.parallel.models import benchmark_model
    from xflow.runtime.backend_graph import load_view
    from xflow.runtime.backend_lower import LowerOptions, lower
    from xflow.runtime.backend_ops import conv_flops
    from xflow.runtime.backend_tune import conv_key, measure_conv
    from xflow.tables import save_result

    models = a.models or (["squeezenet1_1"] if a.quick else MODELS)
    rounds = a.rounds or (5 if a.quick else 15)
    configs: dict[str, dict] = {}
    for name in models:
        ctxs: list = []
        lower(load_view(benchmark_model(name, quick=True), fold=False), LowerOptions(onednn="auto"),
              conv_hook=ctxs.append)
        for c in ctxs:
            if c.in_shapes[1] is None or len(c.in_shapes[1]) != 4 or not c.opts.onednn:
                continue
            k = conv_key(c)
            entry = configs.setdefault(k, {"ctx": c, "count": {}})
            entry["count"][name] = entry["count"].get(name, 0) + 1
    t0 = time.time()
    recs = []
    for k, entry in tqdm(configs.items(), desc="conv configurations", unit="cfg"):
        c = entry["ctx"]
        m, prior, impls = measure_conv(c, rounds=rounds, warmup=2)
        best, _ = m.best(impls[1:])
        w, o = c.in_shapes[1], c.out_shapes[0]
        strides = [int(s) for s in c.attr("strides", [1, 1])]
        cfg = {"config": k, "in_shape": str(list(c.in_shapes[0])), "weight_shape": str(list(w)),
               "kernel": f"{w[2]}x{w[3]}", "stride": max(strides), "group": int(c.attr("group", 1)),
               "pixels": int(np.prod(o[2:])), "mflops": conv_flops(c) / 1e6,
               "fused": "+".join(sorted(f for f in ("bn", "add", "act") if c.fused.get(f))) or "none",
               "prior": prior, "measured_choice": best}
        for name, n in entry["count"].items():
            recs += [{**r, "model": name, "count": n} for r in m.records(**cfg)]
    log = logging.getLogger("conv_kernels")
    log.info("%d configurations in %.0f s", len(configs), time.time() - t0)
    if not a.no_write:
        print(save_result(recs, "runtime/conv_kernels.csv" if not a.quick else "runtime/quick/conv_kernels.csv",
                          threads=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
