"""``xflow costs``: list, calibrate (one command writes the profile file), show, estimate."""
from __future__ import annotations

import json

import onnx

from xflow.cli import main
from xflow.costs import calibration
from xflow.graphs.builders import make_inception_like


def test_costs_cli(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XFLOW_CACHE", str(tmp_path))
    assert main(["costs", "list", "--json"]) == 0
    assert "measured-ops" in json.loads(capsys.readouterr().out)["cost_models"]
    times = {"matmul": 1e-3, "add": 2e-3, "overhead": 64e-6, "separate": 1e-3, "merged": 1e-3}
    monkeypatch.setattr(calibration, "_time_micro", lambda *a: (times, False, {}))
    out = tmp_path / "p.json"
    assert main(["costs", "calibrate", "-o", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert out.exists() and data["profile"]["flops_per_s"] > 0
    assert main(["costs", "show", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["profile"] == data["profile"]
    src = tmp_path / "m.onnx"
    onnx.save(make_inception_like(), src)
    assert main(["costs", "estimate", str(src), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ms"] > 0
    assert main(["costs", "show", str(tmp_path / "missing.json")]) == 2


def test_costs_context_lists_both_tables_per_configuration(tmp_path, capsys, monkeypatch):
    """Strict JSON (no NaN), every configuration with its nodes, both times; graph totals are the
    node-weighted sums of the rows (kills: a total over configurations instead of nodes)."""
    monkeypatch.setenv("XFLOW_CACHE", str(tmp_path))
    assert main(["costs", "context", "zoo:nasrnn?hidden=8&seq=2", "--top", "3", "--json"]) == 0
    out = capsys.readouterr().out
    data = json.loads(out, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    rows = data["configurations"]
    assert len(rows) > 3 and {r["first"] for r in rows} == {"zoo:nasrnn?hidden=8&seq=2"}
    assert any(r["op"] in ("MatMul", "FusedGemm") for r in rows)
    assert data["ort_context_ms"] == sum(r["context_ms"] * r["nodes"] for r in rows) > 0
    assert data["ort_ms"] == sum(r["alone_ms"] * r["nodes"] for r in rows)
    assert [r["context_ms"] for r in rows] == sorted((r["context_ms"] for r in rows), reverse=True)
    assert main(["costs", "context", "zoo:nasrnn?hidden=8&seq=2", "--top", "3"]) == 0
    text = capsys.readouterr().out.splitlines()
    assert len(text) == 1 + 3 + 1 and "ort-context" in text[-1]
