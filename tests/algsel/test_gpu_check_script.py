"""The GPU check script's numeric part runs (on CPU here) and the script exits cleanly without a GPU."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "algsel_gpu_check.py"


def _load():
    spec = importlib.util.spec_from_file_location("algsel_gpu_check", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_numeric_checks_run_and_pass_on_cpu():
    rows = _load().check_algorithms("cpu")
    assert {r["check"] for r in rows} == {"conv2d", "linear", "pool"}
    assert all(r["fwd_rel_err"] <= r["tolerance"] for r in rows)
    assert all(r["bwd_rel_err"] <= 10 * r["tolerance"] for r in rows if "bwd_rel_err" in r)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU path")
def test_script_without_gpu_exits_zero(capsys):
    assert _load().main([]) == 0
    assert "no CUDA GPU" in capsys.readouterr().out
