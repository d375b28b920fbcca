"""Branch parallelism on one GPU with CUDA streams: generated code (``cuda_streams`` backend) vs the
serial ``torch-cuda`` backend, batch 1. Needs a CUDA GPU; exits with status 2 and one line otherwise.

For each model: outputs checked against ONNX Runtime (CPU); then, interleaved with the measurement
core (wall clock, ``torch.cuda.synchronize`` inside the timed region, A/A control of the baseline):

* ``serial``        the torch-cuda backend (one stream)
* ``streams_<k>``   the Ramiel branch plan on ``k`` CUDA streams (analytic costs)

Writes ``results/parallel/cuda_streams.csv`` (speed-up over ``serial`` with interval and verdict).

    python benchmarks/parallel_cuda_streams.py --quick     # googlenet at 112 px, ~1 min of GPU time
    python benchmarks/parallel_cuda_streams.py             # googlenet 224, inception_v3 299
"""
from __future__ import annotations

import argparse
import sys
import time


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--models", nargs="+", default=None)
    ap.add_argument("--streams", nargs="+", type=int, default=[2, 4])
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args(argv)
    import numpy as np
    import torch

    if not torch.cuda.is_available():
        print("parallel_cuda_streams: no CUDA GPU here (torch.cuda.is_available() is False); run it on a GPU machine",
              file=sys.stderr)
        return 2
    from xflow.parallel.api import compile_model
    from xflow.parallel.models import benchmark_model
    from xflow.parallel.planner import PlanConfig
    from xflow.runtime.backend import make_backend_session
    from xflow.runtime.equivalence import compare_arrays
    from xflow.runtime.measure import Variant, measure

    models = a.models or (["googlenet"] if a.quick else ["googlenet", "inception_v3"])
    rounds = a.rounds or (8 if a.quick else 20)
    recs = []
    t0 = time.time()
    for name in models:
        path = benchmark_model(name, quick=a.quick)
        ser = make_backend_session(path, "torch-cuda", threads=0)
        ort = make_backend_session(path, "ort", threads=0, level="disable")
        rng = np.random.default_rng(0)
        feeds = {s.name: rng.standard_normal(s.shape).astype(np.float32) for s in ser.inputs}
        bad = [d for d in compare_arrays(ser.run(feeds), ort.run(feeds), [o.name for o in ser.outputs]) if not d.ok]
        if bad:
            print(f"{name}: torch-cuda disagrees with ONNX Runtime: {bad[0].reason}", file=sys.stderr)
            return 1
        xs = [torch.from_numpy(feeds[s.name]).cuda() for s in ser.inputs]
        vs = {"serial": ser.variant(feeds)}
        plans = {}
        for k in a.streams:
            res = compile_model(path, workers=k, mode="branch", backend="cuda_streams",
                                config=PlanConfig(workers=k, mode="branch", sync_us=5.0, fork_us=10.0, min_gain=0.0))
            m = res.load()
            y = [t.cpu().numpy() for t in (m(*xs) if isinstance(m(*xs), tuple) else (m(*xs),))]
            bad = [d for d in compare_arrays(y, ort.run(feeds), [o.name for o in ser.outputs]) if not d.ok]
            if bad:
                print(f"{name}: streams_{k} disagrees with ONNX Runtime: {bad[0].reason}", file=sys.stderr)
                return 1
            vs[f"streams_{k}"] = Variant(lambda m=m: m(*xs), threads=None, sync=torch.cuda.synchronize)
            plans[f"streams_{k}"] = res.summary()
        meas = measure(vs, baseline="serial", warmup=5, rounds=rounds)
        for r in meas.records(table="cuda_streams", model=name, quick=a.quick,
                              gpu=torch.cuda.get_device_name(0)):
            r.update({k: v for k, v in plans.get(r["variant"], {}).items()
                      if k in ("predicted_speedup", "parallel_stages", "clusters", "cloned_nodes")})
            recs.append(r)
        print(f"\n{name}: speed-up over serial torch-cuda ({meas.rounds} rounds, wall clock)")
        for n, c in meas.comparisons().items():
            print(f"  {n:<14} {meas.median_ms(n):8.3f} ms  {c.format()}")
    if not a.no_write:
        from xflow.tables import save_result

        p = save_result(recs, "parallel/cuda_streams.csv", device="cuda")
        print(f"\nrecords -> {p}")
    print(f"total {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
