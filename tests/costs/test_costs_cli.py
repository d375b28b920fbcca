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
