"""Test-wide settings: isolated cache/results dirs, deterministic seeds, small thread counts."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("XFLOW_QUICK", "1")
os.environ.setdefault("RAY_DISABLE_IMPORT_WARNING", "1")


@pytest.fixture(autouse=True)
def _seed():
    import random

    import numpy as np

    random.seed(0)
    np.random.seed(0)
    try:
        import torch

        torch.manual_seed(0)
    except ImportError:  # pragma: no cover
        pass
    yield


@pytest.fixture
def tmp_results(tmp_path, monkeypatch):
    """Point results and cache at a temp dir for a test."""
    monkeypatch.setenv("XFLOW_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("XFLOW_CACHE", str(tmp_path / "cache"))
    return tmp_path
