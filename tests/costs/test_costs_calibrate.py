"""Calibration: one interleaved run of micro-benchmarks, fitted once, stored as a profile file."""
from __future__ import annotations

import pytest

from xflow.costs import calibration as calib_mod
from xflow.costs import make_cost_model
from xflow.costs.profiles import calibrated_path, read_profile


def _fake(times, slower):
    calls = []

    def fake(models, device, threads, rounds):
        calls.append(sorted(models))
        return dict(times), slower, {"conditions": {}, "warnings": []}

    return fake, calls


def test_calibration_is_measured_once_and_stored(tmp_path, monkeypatch):
    monkeypatch.setenv("XFLOW_CACHE", str(tmp_path))
    times = {"matmul": 1e-3, "add": 2e-3, "overhead": 64e-6, "separate": 1e-3, "merged": 1.5e-3}
    fake, calls = _fake(times, True)
    monkeypatch.setattr(calib_mod, "_time_micro", fake)
    p1 = calib_mod.calibrate()
    assert len(calls) == 1 and p1.flops_per_s == pytest.approx(2 * 384 ** 3 / 1e-3)
    assert p1.op_overhead_s == pytest.approx(1e-6)
    assert p1.split_reorder_s_per_byte > 0  # merged measured 0.5 ms slower than separate
    p2 = calib_mod.calibrate()
    assert p2 == p1 and len(calls) == 1  # from the file
    assert read_profile(calibrated_path()) == p1
    assert make_cost_model("calibrated").profile == p1


def test_no_reorder_term_without_a_significant_loss(tmp_path, monkeypatch):
    monkeypatch.setenv("XFLOW_CACHE", str(tmp_path))
    times = {"matmul": 1e-3, "add": 2e-3, "overhead": 64e-6, "separate": 1e-3, "merged": 1.5e-3}
    fake, _ = _fake(times, False)  # the 0.5 ms gap was within noise
    monkeypatch.setattr(calib_mod, "_time_micro", fake)
    assert calib_mod.calibrate().split_reorder_s_per_byte == 0.0


def test_corrupt_profile_is_recalibrated(tmp_path, monkeypatch):
    monkeypatch.setenv("XFLOW_CACHE", str(tmp_path))
    times = {"matmul": 1e-3, "add": 2e-3, "overhead": 64e-6, "separate": 1e-3, "merged": 1e-3}
    fake, calls = _fake(times, False)
    monkeypatch.setattr(calib_mod, "_time_micro", fake)
    path = calibrated_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{truncated")
    prof = calib_mod.calibrate()
    assert len(calls) == 1 and read_profile(path) == prof


def test_calibration_really_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("XFLOW_CACHE", str(tmp_path))
    prof = calib_mod.calibrate(rounds=3)
    assert prof.flops_per_s > 1e8 and prof.bytes_per_s > 1e8 and prof.op_overhead_s > 0
    assert prof.provenance["merged_vs_separate"]["verdict"] in ("faster", "slower", "same")
