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


def test_bench_json_has_every_ratio_with_interval_and_verdict(capsys, monkeypatch):
    import xflow.autobatch.bench as bench

    monkeypatch.setitem(bench.PRESETS, "quick", bench.PRESETS["tiny"])  # tiny dims: seconds, not minutes
    rc = main(["autobatch", "bench", "--model", "bilstm", "--strategy", "depth", "--quick", "--batch", "2",
               "--rounds", "2", "--mode", "infer", "--json"])
    assert rc == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data["results"]) == {"eager/infer", "depth/infer", "hand/infer"}
    assert data["results"]["depth/infer"]["throughput"] > 0
    assert data["results"]["depth/infer"]["verdict"] == "baseline"
    assert all(len(c["ci"]) == 2 and c["verdict"] in ("faster", "slower", "same") for c in data["comparisons"])


def test_bench_text_prints_intervals(capsys, monkeypatch):
    import xflow.autobatch.bench as bench

    monkeypatch.setitem(bench.PRESETS, "quick", bench.PRESETS["tiny"])
    assert main(["autobatch", "bench", "--model", "treelstm", "--strategy", "agenda", "--baselines", "eager",
                 "--quick", "--batch", "2", "--rounds", "2", "--mode", "train"]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if "agenda vs eager" in ln)
    assert "×" in line and "[" in line and any(v in line for v in ("faster", "slower", "same"))


def test_bench_bad_input_is_a_clean_error(capsys):
    rc = main(["autobatch", "bench", "--baselines", "nope", "--quick", "--batch", "1", "--rounds", "2"])
    assert rc == 2
    assert "nope" in capsys.readouterr().err
    try:
        main(["autobatch", "bench", "--rounds", "1"])
    except SystemExit as exc:  # argparse: one line naming the flag
        assert exc.code == 2
    assert "--rounds" in capsys.readouterr().err
