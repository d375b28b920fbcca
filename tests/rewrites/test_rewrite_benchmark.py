"""The rewrite latency benchmark's library half: records for every optimizer, guard and control."""
import math

import onnx

from xflow.graphs.builders import make_inception_like
from xflow.rewrites.benchmark import QUICK, BenchConfig, run_model


def test_run_model_records_every_variant(tmp_path):
    src = tmp_path / "inc.onnx"
    onnx.save(make_inception_like(), src)
    cfg = BenchConfig(models=[str(src)], methods=["greedy"], budget=2, threads=[1], repeats=3,
                      use_simplifiers=False, guard_points=2)
    rows = []
    recs = run_model(str(src), cfg, on_row=rows.append)
    assert {r["optimizer"] for r in rows} == {"greedy", "greedy+guard", "A/A control"}
    greedy = next(r for r in rows if r["optimizer"] == "greedy")
    assert greedy["n_rewrites"] >= 1 and greedy["predicted_speedup"] > 1.0
    speedups = [r["value"] for r in recs if r["metric"] == "speedup"]
    assert len(speedups) == 3 and all(math.isfinite(v) and v > 0 for v in speedups)
    assert {r["metric"] for r in recs} >= {"speedup", "predicted_speedup", "optimize_time_s"}
    for r in (r for r in recs if r["metric"] == "speedup"):
        assert r["speedup_lo"] <= r["value"] <= r["speedup_hi"]
        assert r["verdict"] in ("faster", "slower", "same") and r["noise_floor"] >= 0 and "load_before" in r


def test_quick_profile_is_small():
    assert QUICK.threads == [1] and QUICK.budget <= 3 and set(QUICK.models) == {"squeezenet1_1", "nasrnn"}
    assert QUICK.zoo_cfg["nasrnn"]["hidden"] <= 128
