"""CLI: ``xflow autobatch plan`` and ``bench`` run and report; bad names are clean errors."""
from __future__ import annotations

import json

from xflow.cli import main


def test_plan_reports_fewer_batches_for_agenda_than_none(capsys):
    assert main(["autobatch", "plan", "--model", "treelstm", "--strategy", "agenda", "--batch", "3", "--json"]) == 0
    agenda = json.loads(capsys.readouterr().out)
    assert main(["autobatch", "plan", "--model", "treelstm", "--strategy", "none", "--batch", "3", "--json"]) == 0
    none = json.loads(capsys.readouterr().out)
    assert agenda["executed"] == none["executed"] == none["batches"]
    assert agenda["batches"] < none["batches"] / 5


def test_bench_json(capsys, monkeypatch):
    import xflow.autobatch.bench as bench

    monkeypatch.setitem(bench.PRESETS, "quick", bench.PRESETS["tiny"])  # tiny dims: seconds, not minutes
    rc = main(["autobatch", "bench", "--model", "bilstm", "--strategy", "depth", "--quick", "--batch", "2",
               "--repeats", "1", "--mode", "infer", "--json"])
    assert rc == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data["results"]) == {"eager/infer", "depth/infer", "hand/infer"}
    assert data["results"]["depth/infer"]["throughput"] > 0


def test_bench_unknown_baseline_is_a_clean_error(capsys):
    rc = main(["autobatch", "bench", "--baselines", "nope", "--quick", "--batch", "1", "--repeats", "1"])
    assert rc == 2
    assert "nope" in capsys.readouterr().err
