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


def test_cli_search_tensat_writes_the_extracted_graph(tmp_path, capsys):
    """Without measurement (``--repeats 0``) ``-o`` gets the extraction, not the input (an e-graph
    extraction has no rewrite actions; the input was written before)."""
    src, out = tmp_path / "sib.onnx", tmp_path / "best.onnx"
    onnx.save(_siblings(), src)
    assert main(["rewrite", "search", str(src), "--method", "tensat", "--iter-limit", "2", "--repeats", "0",
                 "-o", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["predicted_speedup"] > 1.2 and data["tensat"]["changed"]
    written = onnx.load(str(out))
    assert sum(n.op_type in ("MatMul", "Gemm") for n in written.graph.node) == 1


def test_cli_tensat_refuses_other_rule_sets(tmp_path, capsys):
    src = tmp_path / "sib.onnx"
    onnx.save(_siblings(), src)
    assert main(["rewrite", "search", str(src), "--method", "tensat", "--rules", "all", "--repeats", "0"]) != 0
    err = capsys.readouterr().err
    assert "generated" in err and "Traceback" not in err
