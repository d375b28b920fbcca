"""Smoke-run every notebook in its quick profile in a real Jupyter kernel."""
from __future__ import annotations

import pytest

from xflow.notebooks import list_notebooks, run_notebook

NOTEBOOKS = list_notebooks()


@pytest.mark.notebook
@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_quick(nb, tmp_path, monkeypatch):
    monkeypatch.setenv("XFLOW_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("XFLOW_FIGURES", str(tmp_path / "figures"))
    out = run_notebook(nb, quick=True, timeout=600)
    assert out.exists()
