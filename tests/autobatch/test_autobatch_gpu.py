"""The GPU check script: skips cleanly without a device; on a CUDA device (``-m gpu``) every check passes."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from xflow.paths import repo_root

SCRIPT = repo_root() / "benchmarks" / "autobatch_gpu_check.py"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-device path")
def test_gpu_check_skips_without_a_device():
    r = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "skipped" in r.stdout


@pytest.mark.gpu
def test_gpu_check_passes_on_a_device():
    r = subprocess.run([sys.executable, str(SCRIPT), "--json"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
