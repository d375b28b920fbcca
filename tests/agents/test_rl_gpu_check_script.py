"""``benchmarks/rl_gpu_check.py``: its output check runs (on the torch CPU backend here) and the
script exits cleanly without a GPU."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _load():
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location("rl_gpu_check", BENCH / "rl_gpu_check.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_output_check_passes_on_the_torch_backend():
    assert _load().check_outputs(["builder:inception_like"], backend="torch") == []


def test_cases_are_cases_of_the_evaluation_benchmark():
    mod = _load()
    import rl_evaluate

    assert set(mod.CASES) <= {label for label, _, _ in rl_evaluate.CASES}


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU path")
def test_script_without_gpu_exits_zero(capsys):
    assert _load().main([]) == 0
    assert "no CUDA device" in capsys.readouterr().out
