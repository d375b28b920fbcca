"""Notebooks: smoke runs in a real kernel (figures inline, layouts strict), knobs, ablations, the results store."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import nbformat
import pytest

from xflow.errors import UnknownName, XflowError
from xflow.notebooks import (NotebookFailed, list_notebooks, notebook_parameters, parse_parameter, record_results,
                             run_notebook, sweep_options)
from xflow.paths import repo_root

NOTEBOOKS = list_notebooks()


def _code(nb_path) -> list[str]:
    return [c.source for c in nbformat.read(nb_path, as_version=4).cells if c.cell_type == "code"]


@pytest.mark.notebook
@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_quick(nb, tmp_path, monkeypatch):
    """Quick profile in the xflow kernel; every viz.save shows its figure inline; no figure has a broken layout."""
    monkeypatch.setenv("XFLOW_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("XFLOW_FIGURES", str(tmp_path / "figures"))
    monkeypatch.setenv("XFLOW_STRICT_FIGURES", "1")   # a clipped label or a legend over the data fails the run
    out = run_notebook(nb, quick=True, timeout=600)
    executed = nbformat.read(out, as_version=4)
    for cell in executed.cells:
        if cell.cell_type == "code" and "viz.save(" in cell.source:
            images = [o for o in cell.outputs if "image/png" in o.get("data", {})]
            assert images, f"{nb.stem}: a cell saving a figure shows none inline:\n{cell.source[:200]}"
    pngs = sorted((tmp_path / "figures").glob("*.png"))
    assert pngs or not any("viz.save(" in s for s in _code(nb))
    if any("record_results(" in s for s in _code(nb)):
        assert list((tmp_path / "results").rglob("*.parquet")), "results went through the results store"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_structure_drives_ablations(nb):
    """Inline figures (no forced backend), every knob in the parameters cell, shared plotting, results store."""
    cells = nbformat.read(nb, as_version=4).cells
    params = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, "exactly one papermill parameters cell"
    knobs = notebook_parameters(nb)
    assert "QUICK" in knobs and knobs["QUICK"]["default"] == "True"
    assert all(v["help"] for v in knobs.values()), f"every knob has a comment: {[k for k, v in knobs.items() if not v['help']]}"
    code = "\n".join(_code(nb))
    assert "matplotlib.use(" not in code and "%matplotlib" not in code, "figures must show inline in JupyterLab"
    assert ".savefig(" not in code, "save figures with xflow.viz.save (provenance, layout check, inline show)"
    if "run_sweep(" in code:
        assert "BACKEND" in knobs and "sweep_options(BACKEND" in code, "sweeps go to Ray when asked"
        assert "progress=False" not in code, "sweeps show their progress bar in the notebook"
        assert "record_results(" in code, "plotted numbers go through the results store"
    first = next(i for i, c in enumerate(cells) if c.cell_type == "code")
    assert "parameters" in cells[first].metadata.get("tags", []), "the parameters cell is the first code cell"


def _tiny_notebook(path, body: str) -> None:
    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell("QUICK = True  # profile\nSEEDS = [0]  # seeds\nNAME = 'a'  # a name")
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "xflow", "display_name": "xflow", "language": "python"}
    nbformat.write(nb, path)


BODY = """
import os
from xflow import viz
from xflow.notebooks import record_results
df = record_results([{"seed": s, "metric": "m", "value": float(s)} for s in SEEDS], "tiny")
fig, ax = viz.figure(width="column")
ax.plot(df.seed, df.value, marker="o")
print("QUICK", QUICK, "SEEDS", SEEDS, "NAME", NAME, "XFLOW_QUICK", os.environ["XFLOW_QUICK"])
viz.save(fig, "tiny_" + NAME, source=df)
"""


@pytest.mark.notebook
def test_parameters_override_and_ablation_outputs(tmp_path, monkeypatch):
    """-p overrides reach the kernel; an ablation writes its executed copy and figures to its own folder."""
    monkeypatch.setenv("XFLOW_RESULTS", str(tmp_path / "results"))
    monkeypatch.delenv("XFLOW_FIGURES", raising=False)
    nb = tmp_path / "tiny.ipynb"
    _tiny_notebook(nb, BODY)
    out = run_notebook(nb, quick=False, parameters={"SEEDS": [1, 2], "NAME": "abl"})
    assert out.parent.parent == tmp_path / "results" / "notebooks" and out.parent.name.startswith("tiny-")
    text = "".join(o.get("text", "") for c in nbformat.read(out, as_version=4).cells for o in c.get("outputs", []))
    assert "QUICK False SEEDS [1, 2] NAME abl XFLOW_QUICK 0" in text
    assert (out.parent / "figures" / "tiny_abl.png").exists()          # not the gallery's figures/
    assert json.loads((out.parent / "parameters.json").read_text())["SEEDS"] == [1, 2]
    from PIL import Image

    assert "results/tiny/part-" in Image.open(out.parent / "figures" / "tiny_abl.png").text["Source"]
    with pytest.raises(UnknownName, match="no parameter 'SEED'.*SEEDS"):
        run_notebook(nb, parameters={"SEED": 3})


@pytest.mark.notebook
def test_failing_cell_is_named_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("XFLOW_RESULTS", str(tmp_path / "results"))
    nb = tmp_path / "bad.ipynb"
    _tiny_notebook(nb, "raise ValueError('boom: the grid is empty')")
    with pytest.raises(NotebookFailed, match=r"failed in cell 1 \(.raise ValueError.*ValueError: boom: the grid is empty; the executed copy"):
        run_notebook(nb)


def test_parse_parameter_reads_literals():
    assert parse_parameter("SEEDS=[1, 2,3]") == ("SEEDS", [1, 2, 3])
    assert parse_parameter("QUICK=false") == ("QUICK", False)
    assert parse_parameter("EPOCHS=None") == ("EPOCHS", None)
    assert parse_parameter("BACKEND=ray") == ("BACKEND", "ray")
    assert parse_parameter("GRID=[{'model': 'tiny', 'batch': 1}]") == ("GRID", [{"model": "tiny", "batch": 1}])
    assert parse_parameter("X=0.5") == ("X", 0.5)
    with pytest.raises(XflowError, match="KEY=VALUE"):
        parse_parameter("SEEDS")
    with pytest.raises(XflowError, match="identifier"):
        parse_parameter("1X=2")


def test_sweep_options_serialise_timing_sweeps_on_ray():
    assert sweep_options("local", timing=True) == {"backend": "local"}
    assert sweep_options("ray") == {"backend": "ray"}
    assert sweep_options("ray", timing=True)["num_cpus_per_task"] >= 1
    with pytest.raises(XflowError, match="BACKEND"):
        sweep_options("dask")


def test_record_results_keeps_provenance_and_does_not_duplicate(tmp_results):
    recs = [{"model": "a", "metric": "m", "value": 1.0, "choice": "x"}, {"model": "b", "metric": "m", "value": 2.0,
                                                                         "choice": 3}]
    df = record_results(recs, "nb_test")
    assert {"git_sha", "versions", "timestamp", "records_hash"} <= set(df.columns)
    assert df.attrs["source"].endswith(".parquet") and list(df.value) == [1.0, 2.0]
    again = record_results(recs, "nb_test")                             # a re-run on cached results
    assert again.attrs["source"] == df.attrs["source"]
    assert len(list((tmp_results / "results" / "nb_test").glob("*.parquet"))) == 1
    record_results(recs[:1], "nb_test")                                  # different data: a new part
    assert len(list((tmp_results / "results" / "nb_test").glob("*.parquet"))) == 2
    with pytest.raises(XflowError, match="no records"):
        record_results([], "nb_test")


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "xflow", *args], capture_output=True, text=True, timeout=300,
                          cwd=repo_root())


def test_cli_params_lists_knobs_and_rejects_unknown_ones():
    r = _cli("notebooks", "params", "20_sparsity_accuracy", "--json")
    assert r.returncode == 0, r.stderr
    params = json.loads(r.stdout)["parameters"]
    assert {"QUICK", "SEEDS", "DELTA_A", "BACKEND"} <= set(params)
    r = _cli("notebooks", "run", "20_sparsity_accuracy", "-p", "NO_SUCH_KNOB=1")
    assert r.returncode != 0 and "no parameter 'NO_SUCH_KNOB'" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) <= 2
    r = _cli("notebooks", "run", "00_model_zoo", "20_sparsity_accuracy", "-p", "QUICK=1")
    assert r.returncode != 0 and "one notebook" in r.stderr
    r = _cli("notebooks", "run", "--help")
    assert re.search(r"-p KEY=VALUE", r.stdout)


@pytest.mark.notebook
def test_cli_run_shows_per_cell_progress_and_writes_the_ablation(tmp_path, monkeypatch):
    """`xflow notebooks run NB -p K=V`: a progress bar over executed cells on stderr, the override reaches the
    kernel, --json names the ablation's folder and figure."""
    monkeypatch.setenv("XFLOW_RESULTS", str(tmp_path / "results"))
    monkeypatch.delenv("XFLOW_FIGURES", raising=False)
    nb = tmp_path / "tiny.ipynb"
    _tiny_notebook(nb, BODY)
    r = _cli("notebooks", "run", str(nb), "-p", "NAME=cli", "--json")
    assert r.returncode == 0, r.stderr
    assert re.search(r"tiny: +\d+%\|.*\| 3/3 \[.*cell", r.stderr), r.stderr[-500:]   # 3 cells with papermill's
    out = json.loads(r.stdout)
    assert out["parameters"] == {"NAME": "cli"} and out["figures"] == ["tiny_cli.png"]
    assert "/results/notebooks/tiny-" in out["figures_dir"]
