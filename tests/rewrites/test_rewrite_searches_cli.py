"""CLI: ``rewrite rules --generated``, ``search --method taso|tensat``, ``optimize --search tensat``."""
import json

import onnx
import pytest

from xflow.cli import main
from tests.rewrites.test_rewrite_searches import _siblings


def test_cli_lists_generated_rules_with_provenance(capsys):
    assert main(["rewrite", "rules", "--generated", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["n_rules"] >= 100 and len(data["rules"]) == data["n_rules"]
    r = data["rules"][0]
    assert r["src"]["term"] and r["dst"]["term"] and r["provenance"]["origin"]
    assert r["verification"]["verified"] and r["verification"]["random_tests_passed"] == r["verification"]["random_tests"]


@pytest.mark.parametrize("method", ["taso", "tensat"])
def test_cli_search_taso_tensat(tmp_path, capsys, method):
    src = tmp_path / "sib.onnx"
    onnx.save(_siblings(), src)
    out = tmp_path / "best.onnx"
    assert main(["rewrite", "search", str(src), "--method", method, "--budget", "3", "--time-budget-s", "60",
                 "--iter-limit", "3", "--repeats", "3", "-o", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["kept"] in ("original", "rewritten") and "speedup_ci" in data  # the never-slower guard ran
    assert data["method"] == method and data["predicted_speedup"] > 1.2 and out.exists()
    if method == "tensat":
        assert data["tensat"]["stop_reason"] in ("iteration limit", "saturated")


def test_cli_optimize_tensat(tmp_path, capsys):
    src, out = tmp_path / "sib.onnx", tmp_path / "opt.onnx"
    onnx.save(_siblings(), src)
    assert main(["rewrite", "optimize", str(src), "-o", str(out), "--search", "tensat", "--budget-s", "60",
                 "--iter-limit", "2", "--extract", "greedy", "--repeats", "3"]) == 0
    assert out.exists()
