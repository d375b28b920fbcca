"""The inference anatomy table of docs/autobatch.md: recording and forward shares of an agenda
inference step, beside the hand-batched step."""
from __future__ import annotations

import pytest

from xflow import tables
from xflow.autobatch import report


def _time(model, mode, variant, ms):
    return {"model": model, "preset": "full", "metric": "time_ms", "mode": mode, "variant": variant, "value": ms}


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("XFLOW_RESULTS", str(tmp_path / "results"))
    rows = [
        _time("bilstm", "infer", "agenda", 90.0), _time("bilstm", "infer", "agenda:record", 22.5),
        _time("bilstm", "infer", "hand", 60.0),
        _time("treelstm", "infer", "agenda", 30.0), _time("treelstm", "infer", "hand", 10.0),  # no phase
        _time("parser", "train", "agenda", 400.0), _time("parser", "train", "agenda:record", 100.0),
        # recording that reads values (the parser) can time above the step: the forward is noise
        _time("bilstm-char", "infer", "agenda", 100.0), _time("bilstm-char", "infer", "agenda:record", 110.0),
        _time("bilstm-char", "infer", "hand", 50.0),
        {"model": "bilstm", "preset": "full", "metric": "speedup", "mode": "infer", "variant": "", "a": "agenda",
         "b": "hand", "value": 0.66, "lo": 0.6, "hi": 0.7, "verdict": "slower"},
    ]
    tables.save_result(rows, report.RESULT_FILE)


def test_inference_anatomy_splits_the_step_and_skips_rows_without_the_phase(results):
    lines = report.anatomy_infer_table().splitlines()[2:]
    assert len(lines) == 2  # the Tree-LSTM has no recording phase, the parser no inference step
    cells = [c.strip() for c in lines[0].strip("|").split("|")]
    assert cells[:6] == ["BiLSTM tagger", "90.0", "22.5 (25%)", "67.5 (75%)", "60.0", "7.5"]
    assert cells[6].startswith("0.66× [0.60, 0.70] slower")
    cells = [c.strip() for c in lines[1].strip("|").split("|")]
    assert cells[:6] == ["BiLSTM + char", "100.0", "110.0 (110%)", "≈ 0 (noise)", "50.0", "—"]
    assert cells[6] == "—"  # no speed-up row for it
