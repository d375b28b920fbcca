"""The targets table of docs/autobatch.md: each target, and the same target held against a reference."""
from __future__ import annotations

import pytest

from xflow import tables
from xflow.autobatch import report


def _row(model, mode, a, b, value, lo, hi, verdict):
    return {"model": model, "preset": "full", "metric": "speedup", "mode": mode, "variant": "", "a": a, "b": b,
            "value": value, "lo": lo, "hi": hi, "verdict": verdict}


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("XFLOW_RESULTS", str(tmp_path / "results"))
    rows = [
        _row("parser", "train", "agenda", "dynet1", 0.67, 0.59, 0.80, "slower"),
        _row("parser", "train", "hand", "dynet1", 0.50, 0.40, 0.64, "slower"),
        _row("parser", "infer", "agenda", "hand", 0.55, 0.47, 0.59, "slower"),
        _row("parser", "infer", "hand", "dynet1", 0.8, 0.5, 1.25, "same"),
    ]
    tables.save_result(rows, report.RESULT_FILE)


def test_a_reverse_pair_is_inverted_interval_and_verdict(results):
    df = report._frame()
    r = report._pair(df, "parser", "train", "dynet1", "hand")
    assert r.value == pytest.approx(2.0) and r.lo == pytest.approx(1 / 0.64) and r.hi == pytest.approx(2.5)
    assert r.verdict == "faster"
    assert report._pair(df, "parser", "train", "hand", "dynet1").value == pytest.approx(0.5)  # measured as is
    assert report._pair(df, "parser", "train", "dynet1", "eager") is None


def test_targets_table_holds_the_reference_to_the_same_target(results):
    lines = {ln.split(" | ")[0].lstrip("| ") + "/" + ln.split(" | ")[1]: ln for ln in report.targets_table().splitlines()[2:]}
    dyn = lines["training ≥ 1.0× DyNet autobatched/transition parser"]
    assert "| missed |" in dyn and "hand vs dynet1: 0.50× [0.40, 0.64] slower (missed)" in dyn
    hand = lines["inference within 1.5× of hand-batched/transition parser"]
    # DyNet vs hand is the inverse of hand vs DyNet: 1.25× [0.80, 2.00], whose whole interval clears 0.67×
    assert "dynet1 vs hand: 1.25× [0.80, 2.00] same (met)" in hand
