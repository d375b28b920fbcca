"""The benchmark harness builds every variant, and they all compute the model's outputs."""
import numpy as np
import torch

from xflow.parallel.bench import format_table, speedup_rows, target_rows, variants_for
from xflow.parallel.models import InceptionToy, export_onnx
from xflow.runtime.measure import measure


def test_every_variant_runs_and_is_reported_with_interval_and_verdict():
    torch.manual_seed(0)
    m = InceptionToy(width=8, blocks=2).eval()
    x = torch.randn(1, 3, 32, 32)
    path = export_onnx(m, (x,), "test_bench_toy")
    tables, info = variants_for(path, workers=2, module=m, backends=("threads",), cost="analytic")
    assert {"gen_serial", "gen_serial_plain", "gen_serial_tuned", "eager_1t", "ort_1t"} <= set(tables["serial"])
    assert {"gen_branch_threads", "gen_hybrid_threads", "gen_branch_regions_threads", "gen_verified_threads",
            "ort_clusters", "gen_intra", "ort_2t", "ort_parallel", "eager_2t"} <= set(tables["parallel"])
    assert all(v.threads == 1 for v in tables["serial"].values())  # thread CPU time can decide
    ms = measure(tables["serial"], baseline="gen_serial", warmup=1, rounds=2)
    assert ms.clock == "thread"
    mp = measure(tables["parallel"], baseline="gen_serial", warmup=1, rounds=2)
    assert mp.clock == "wall"
    rows = speedup_rows(mp, table="parallel", model="toy")
    by = {r["variant"]: r for r in rows}
    for r in rows:
        assert r["speedup_lo"] <= r["speedup"] <= r["speedup_hi"] and r["verdict"] in ("faster", "slower", "same", "baseline")
    assert by["gen_serial"]["verdict"] == "baseline"
    assert "speed-up over gen_serial" in format_table(mp, "toy")
    assert {"predicted_speedup", "parallel_stages", "cloned_nodes", "fallback"} <= set(info["gen_branch_threads"])
    t = {r["target"]: r for r in target_rows({"serial": ms, "parallel": mp}, workers=2, model="toy")}
    assert t["serial within 1.25x of ORT (1 thread)"]["versus"] == "ort_1t"
    assert t["hybrid >= torch eager at W threads"]["versus"] == "eager_2t"
    assert t["parallel >= 1.3x over gen_serial"]["variant"] in tables["parallel"]
    for r in t.values():
        assert r["speedup_lo"] <= r["value"] <= r["speedup_hi"]
        assert r["met"] in ("met", "not met", "undecided", None)
        if r["met"] == "met":
            assert r["speedup_lo"] >= r["goal"]


def test_target_verdicts_follow_the_interval():
    """A target is 'met' only when the whole interval clears the goal (planted 2x and 1.1x effects)."""
    from xflow.runtime.measure import Measurement

    rng = np.random.default_rng(0)
    n = 30

    def samples(ms):
        t = ms * 1e-3 * (1 + 0.01 * rng.standard_normal(n))
        return {"wall": t, "thread": t, "process": t}

    def run(times):
        smp = {k: samples(ms) for k, ms in times.items()}
        smp["gen_serial~aa"] = samples(times["gen_serial"])
        return Measurement(samples=smp, baseline="gen_serial", aa="gen_serial~aa", clock="wall",
                           threads={k: None for k in smp}, inner={k: 1 for k in smp}, load_before=0.0,
                           load_after=0.0, foreign_cpu=0.0, elapsed_s=1.0)

    m = run({"gen_serial": 10.0, "gen_branch_threads": 5.0, "eager_2t": 5.5, "gen_hybrid_threads": 9.1})
    t = {r["target"]: r for r in target_rows({"parallel": m}, workers=2)}
    assert t["parallel >= 1.3x over gen_serial"]["variant"] == "gen_branch_threads"
    assert t["parallel >= 1.3x over gen_serial"]["met"] == "met"
    assert t["hybrid >= torch eager at W threads"]["met"] == "not met"
