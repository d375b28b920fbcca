"""The benchmark harness builds every variant, and they all compute the model's outputs."""
import numpy as np
import torch

from xflow.parallel.bench import format_table, speedup_rows, variants_for
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
