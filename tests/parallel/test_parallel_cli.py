"""``xflow parallel compile`` writes a runnable module, its weights and its record; errors are clean."""
import json

import numpy as np

import onnx
import torch
from onnx import helper

from xflow.cli import main
from xflow.parallel.models import InceptionToy, export_onnx


from .helpers import onnx_model


def test_cli_compile_json(tmp_path, capsys):
    torch.manual_seed(0)
    path = export_onnx(InceptionToy(width=8, blocks=1), (torch.randn(1, 3, 32, 32),), "test_cli_toy")
    out = tmp_path / "gen.py"
    rc = main(["parallel", "compile", str(path), "-o", str(out), "--workers", "2", "--cost", "analytic",
               "--mode", "branch", "--min-gain", "0", "--json"])
    assert rc == 0
    data = json.loads(capsys.readouterr().out)
    assert data["nodes"] > 10 and data["workers"] == 2
    assert out.exists() and out.with_suffix(".onnx").exists()
    rec = json.loads(out.with_suffix(".json").read_text())
    assert rec["producer"] == "xflow.parallel" and rec["stages"]
    assert all(isinstance(n, str) for s in rec["stages"] for c in s["clusters"] for n in c["nodes"])
    rc = main(["parallel", "compile", str(path), "-o", str(tmp_path / "g2.py"), "--cost", "analytic"])
    assert rc == 0 and "predicted" in capsys.readouterr().out


def test_cli_reports_missing_and_unsupported_models(tmp_path, capsys):
    assert main(["parallel", "compile", str(tmp_path / "nope.onnx"), "-o", str(tmp_path / "g.py")]) == 2
    assert "nope.onnx" in capsys.readouterr().err
    m = onnx_model([helper.make_node("NonZero", ["x"], ["y"])], [("x", [1, 2])], [("y", None, np.int64)])
    p = tmp_path / "nonzero.onnx"
    onnx.save(m, str(p))
    assert main(["parallel", "compile", str(p), "-o", str(tmp_path / "g.py"), "--cost", "analytic"]) == 2
    assert "NonZero" in capsys.readouterr().err
