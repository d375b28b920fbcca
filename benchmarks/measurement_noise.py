"""How trustworthy are xflow's verdicts on this machine? A/A noise floors and false-positive rates.

1. **A/A noise floor** of the measurement core (:mod:`xflow.runtime.measure`) for three kinds of
   work, each measured ``--runs`` times: an ONNX Runtime session (squeezenet1_1, 1 thread, level
   all; the control is a second session), a torch eager module (resnet18, 1 thread) and an
   autobatch training step (BiLSTM tagger, agenda strategy, quick sizes).
2. **False-positive rate of the rewrite guard** (:func:`xflow.rewrites.search.pick_fastest`): fed
   4 byte-identical copies of squeezenet1_1 as "rewrites", how often does it keep one?
3. **False-positive rate of the autotuner** (:func:`xflow.algsel.autotune`): with a candidate
   algorithm that *is* ``default`` (same code), how often does a layer switch to it?

Writes ``results/runtime/aa_noise.csv`` and ``results/runtime/false_positives.csv`` (quoted by
docs/zoo_and_runtime.md through ``make report``).

    .venv/bin/python benchmarks/measurement_noise.py            # 20 trials each (~10 min)
    .venv/bin/python benchmarks/measurement_noise.py --quick    # 3 trials each
"""
from __future__ import annotations

import argparse
import sys
import time


def _ort_noise(runs: int, rounds: int) -> list[dict]:
    from xflow.graphs import zoo
    from xflow.runtime.latency import measure_models

    path = zoo.export("squeezenet1_1", 1)
    out = []
    for r in range(runs):
        m = measure_models({"squeezenet1_1": (path, {"level": "all", "intra_threads": 1})}, rounds=rounds,
                           seed=r)
        c = m.compare("squeezenet1_1~aa")
        out.append({"kind": "ORT session (squeezenet1_1, 1 thread)", "run": r, "floor": m.noise_floor(),
                    "aa_ratio": c.ratio, "aa_lo": c.ci[0], "aa_hi": c.ci[1], "median_ms": m.median_ms("squeezenet1_1"),
                    **m.conditions()})
    return out


def _torch_noise(runs: int, rounds: int) -> list[dict]:
    import torch

    from xflow.graphs import zoo
    from xflow.runtime.measure import measure, torch_variant

    model = zoo.torch_model("resnet18")
    (x,) = zoo.example_input("resnet18", batch=1)
    out = []
    prev = torch.get_num_threads()
    try:
        with torch.no_grad():
            for r in range(runs):
                m = measure({"resnet18": torch_variant(lambda: model(x), threads=1)}, rounds=rounds, seed=r)
                c = m.compare("resnet18~aa")
                out.append({"kind": "torch eager (resnet18, 1 thread)", "run": r, "floor": m.noise_floor(),
                            "aa_ratio": c.ratio, "aa_lo": c.ci[0], "aa_hi": c.ci[1],
                            "median_ms": m.median_ms("resnet18"), **m.conditions()})
    finally:
        torch.set_num_threads(prev)
    return out


def _autobatch_noise(runs: int, rounds: int) -> list[dict]:
    import torch

    from xflow.autobatch.bench import PRESETS, step_fn
    from xflow.autobatch.models import get_model
    from xflow.runtime.measure import measure, torch_variant

    torch.manual_seed(0)
    model = get_model("bilstm", **PRESETS["quick"]["bilstm"])
    batch = model.make_data(32, seed=1)

    train_step = step_fn(model, [batch], "agenda", "train", None)  # forward + backward, no update

    def step():
        train_step()
        model.zero_grad(set_to_none=True)

    out = []
    prev = torch.get_num_threads()
    try:
        for r in range(runs):
            m = measure({"agenda_train": torch_variant(step, threads=1)}, rounds=rounds, seed=r, warmup=2)
            c = m.compare("agenda_train~aa")
            out.append({"kind": "autobatch step (BiLSTM, agenda, train, quick sizes)", "run": r,
                        "floor": m.noise_floor(), "aa_ratio": c.ratio, "aa_lo": c.ci[0], "aa_hi": c.ci[1],
                        "median_ms": m.median_ms("agenda_train"), **m.conditions()})
    finally:
        torch.set_num_threads(prev)
    return out


def _guard_fp(trials: int, rounds: int) -> list[dict]:
    import onnx

    from xflow.graphs import zoo
    from xflow.rewrites.search import pick_fastest

    original = onnx.load(zoo.export("squeezenet1_1", 1))
    copies = [onnx.load(zoo.export("squeezenet1_1", 1)) for _ in range(4)]
    out = []
    for t in range(trials):
        _, info = pick_fastest(original, copies, repeats=rounds, seed=t)
        out.append({"decider": "rewrite guard (pick_fastest, 4 identical copies of squeezenet1_1)", "trial": t,
                    "decisions": 1, "false_positives": int(info["kept"] == "rewritten"),
                    "best_speedup": info["measured_speedup"], "noise_floor": info["noise_floor"],
                    **info["conditions"]})
    return out


def _autotune_fp(trials: int, rounds: int) -> list[dict]:
    import torch

    from xflow.algsel import autotune, build_model, get_algorithm, register_algorithm

    base = type(get_algorithm("default"))
    clone = type("DefaultClone", (base,), {"name": "default_clone", "__doc__": "default, again (A/A)"})()
    register_algorithm(clone, replace=True)
    model = build_model("squeezenet1_1")
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    out = []
    try:
        for t in range(trials):
            res = autotune(model, x, "cpu", ops=["conv2d"], candidates=["default_clone"], repeats=rounds,
                           use_cache=False)  # conv layers: the family whose candidate is the A/A clone
            distinct = {(r["config"], tuple(r["input_shape"])): r["choice"] for r in res.rows}
            fp = sum(c != "default" for c in distinct.values())
            out.append({"decider": "autotuner (squeezenet1_1 layers, candidate = default itself)", "trial": t,
                        "decisions": len(distinct), "false_positives": fp,
                        "busy": bool(any(r["busy"] for r in res.rows))})
    finally:
        torch.set_num_threads(prev)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 trials each")
    ap.add_argument("--trials", type=int, default=None, help="A/A trials per decider (default 20)")
    ap.add_argument("--runs", type=int, default=None, help="noise-floor runs per kind (default 10)")
    ap.add_argument("--rounds", type=int, default=20, help="interleaved rounds per measurement (default 20)")
    ap.add_argument("--no-save", action="store_true", help="do not write results/runtime/*.csv")
    a = ap.parse_args(argv)
    trials = a.trials or (3 if a.quick else 20)
    runs = a.runs or (3 if a.quick else 10)

    t0 = time.perf_counter()
    noise = _ort_noise(runs, a.rounds) + _torch_noise(runs, a.rounds) + _autobatch_noise(runs, a.rounds)
    for kind in dict.fromkeys(r["kind"] for r in noise):
        fl = sorted(r["floor"] for r in noise if r["kind"] == kind)
        busy = sum(r["busy"] for r in noise if r["kind"] == kind)
        print(f"A/A noise floor, {kind}: median ±{100 * fl[len(fl) // 2]:.2f}% (max ±{100 * fl[-1]:.2f}%) "
              f"over {len(fl)} runs; {busy} busy", flush=True)
    fps = _guard_fp(trials, a.rounds) + _autotune_fp(trials, 10)
    for d in dict.fromkeys(r["decider"] for r in fps):
        rows = [r for r in fps if r["decider"] == d]
        n, k = sum(r["decisions"] for r in rows), sum(r["false_positives"] for r in rows)
        print(f"false positives, {d}: {k} of {n} decisions over {len(rows)} trials", flush=True)
    if not a.no_save:
        from xflow.tables import save_result

        print("wrote", save_result(noise, "runtime/aa_noise.csv", threads=1))
        print("wrote", save_result(fps, "runtime/false_positives.csv", threads=1))
    print(f"total {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
