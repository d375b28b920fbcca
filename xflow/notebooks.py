"""Run the project's notebooks in a real Jupyter kernel (papermill): quick, full, or as an ablation.

Every notebook in ``notebooks/`` has a papermill *parameters* cell holding every knob (``QUICK``,
models, seeds, grids, budgets, ``BACKEND``, ``DEVICE``, …). :func:`run_notebook` executes one with
``QUICK`` and any overrides (``parameters={"SEEDS": [1, 2, 3]}``); ``make figures`` runs them all.

* the profile run (no overrides) writes its executed copy to ``results/notebooks/<name>.ipynb`` and
  its figures to ``figures/`` (the README gallery);
* an **ablation** (any override besides ``QUICK``) writes both under
  ``results/notebooks/<name>-<tag>/`` (``tag`` = hash of the overrides, listed in
  ``parameters.json`` there), so it never overwrites the gallery's figures.

Inside notebooks, :func:`record_results` writes records through the results store
(:mod:`xflow.results`) and returns them as stored (provenance columns included); pass the frame to
:func:`xflow.viz.save` so each figure names the result file its numbers came from.

CLI: ``xflow notebooks list`` · ``xflow notebooks params NAME`` · ``xflow notebooks run NAME
[-p KEY=VALUE ...] [--quick 0|1]``; a progress bar counts executed cells.
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from xflow import paths
from xflow.clitools import Report, add_command
from xflow.errors import XflowError

__all__ = ["notebook_dir", "list_notebooks", "ensure_kernel", "run_notebook", "notebook_parameters",
           "parse_parameter", "record_results", "sweep_options", "NotebookFailed", "KERNEL_NAME"]

KERNEL_NAME = "xflow"
log = logging.getLogger(__name__)


class NotebookFailed(XflowError):
    """A cell of an executed notebook raised; names the notebook, the cell and the error."""


def notebook_dir() -> Path:
    """``<repo>/notebooks``."""
    return paths.repo_root() / "notebooks"


def list_notebooks() -> list[Path]:
    """All notebooks, in name order (their numeric prefixes give the reading order)."""
    return sorted(p for p in notebook_dir().glob("*.ipynb") if not p.name.endswith(".out.ipynb"))


def ensure_kernel() -> str:
    """Make sure the Jupyter kernel named ``xflow`` runs *this* interpreter; return its name.

    The kernel spec lives inside the virtual environment (``<venv>/share/jupyter/kernels/xflow``,
    i.e. ``ipykernel install --sys-prefix``) and that directory is put first on ``JUPYTER_PATH``,
    so two checkouts on one machine never run each other's ``xflow`` and a stale user-level spec
    of the same name cannot shadow it.
    """
    data_dir = Path(sys.prefix) / "share" / "jupyter"
    spec = data_dir / "kernels" / KERNEL_NAME / "kernel.json"
    current = None
    if spec.exists():
        current = json.loads(spec.read_text()).get("argv", [None])[0]
    if current is None or os.path.abspath(current) != os.path.abspath(sys.executable):
        log.info("registering Jupyter kernel %r -> %s", KERNEL_NAME, sys.executable)
        subprocess.run(
            [sys.executable, "-m", "ipykernel", "install", "--sys-prefix", "--name", KERNEL_NAME,
             "--display-name", "xflow (.venv)"],
            check=True, capture_output=True,
        )
    paths_ = os.environ.get("JUPYTER_PATH", "").split(os.pathsep)
    if str(data_dir) not in paths_:
        os.environ["JUPYTER_PATH"] = os.pathsep.join([str(data_dir), *[p for p in paths_ if p]])
    return KERNEL_NAME


def _resolve(path: Path | str) -> Path:
    path = Path(path)
    if not path.exists():
        cand = notebook_dir() / path
        path = cand if cand.exists() else notebook_dir() / f"{path}.ipynb"
    if not path.exists():
        from xflow.errors import UnknownName

        names = ", ".join(p.stem for p in list_notebooks())
        raise UnknownName(f"no notebook {Path(path).stem!r}; available: {names}")
    return path


def notebook_parameters(path: Path | str) -> dict[str, dict[str, Any]]:
    """The knobs of a notebook's parameters cell: ``{name: {"default", "type", "help"}}``.

    ``help`` is the comment after the assignment; ``default`` the source text of its value.
    """
    import papermill as pm

    params = pm.inspect_notebook(str(_resolve(path)))
    return {k: {"default": v["default"], "type": v["inferred_type_name"], "help": v["help"]}
            for k, v in params.items()}


def parse_parameter(text: str) -> tuple[str, Any]:
    """``"KEY=VALUE"`` → ``(KEY, value)``: VALUE is read as a Python literal (``3``, ``0.5``,
    ``[1, 2]``, ``"ray"``, ``None``), ``true``/``false``/``none`` in any case, else as a string."""
    if "=" not in text:
        raise XflowError(f"parameter {text!r} is not KEY=VALUE (e.g. -p SEEDS=[1,2,3] -p BACKEND=ray)")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key.isidentifier():
        raise XflowError(f"parameter name {key!r} is not a Python identifier (e.g. -p SEEDS=[1,2,3])")
    low = raw.strip().lower()
    if low in ("true", "false", "none", "null"):
        return key, {"true": True, "false": False}.get(low)
    try:
        return key, ast.literal_eval(raw.strip())
    except (ValueError, SyntaxError):
        return key, raw


def _tag(parameters: Mapping[str, Any]) -> str:
    blob = json.dumps(dict(parameters), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:8]


def run_notebook(path: Path | str, *, quick: bool = True, timeout: int = 1800,
                 parameters: Mapping[str, Any] | None = None, progress: bool = False,
                 output_dir: Path | None = None) -> Path:
    """Execute one notebook with ``QUICK=quick`` (and ``parameters``) in the ``xflow`` kernel.

    Overrides must name knobs of the notebook's parameters cell (else :class:`UnknownName`, with
    the list). Without overrides the executed copy goes to ``results/notebooks/<name>.ipynb`` and
    figures to ``figures/``; with overrides (an ablation) both go to
    ``results/notebooks/<name>-<tag>/`` unless ``$XFLOW_FIGURES`` or ``output_dir`` says otherwise.
    ``progress`` shows a bar over executed cells (stderr). Returns the executed notebook's path;
    raises :class:`NotebookFailed` naming the cell when one fails.
    """
    import papermill as pm

    path = _resolve(path)
    overrides = dict(parameters or {})
    if overrides:
        known = notebook_parameters(path)
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            from xflow.errors import UnknownName

            raise UnknownName(f"notebook {path.stem!r} has no parameter {unknown[0]!r}; its parameters: "
                              f"{', '.join(known)} (see `xflow notebooks params {path.stem}`)")
    quick = bool(overrides.pop("QUICK", quick))
    env: dict[str, str] = {"XFLOW_QUICK": "1" if quick else "0"}
    if output_dir is not None:
        out_dir = Path(output_dir)
        out = out_dir / path.name
        env["XFLOW_FIGURES"] = str(out_dir / "figures")
    elif overrides:
        tag = _tag({"QUICK": quick, **overrides})
        out_dir = paths.results_dir("notebooks", f"{path.stem}-{tag}")
        out = out_dir / path.name
        if "XFLOW_FIGURES" not in os.environ:
            env["XFLOW_FIGURES"] = str(out_dir / "figures")
    else:
        out_dir = paths.results_dir("notebooks")
        out = out_dir / path.name
    out_dir.mkdir(parents=True, exist_ok=True)
    if overrides or output_dir is not None:
        (out_dir / "parameters.json").write_text(json.dumps({"notebook": path.stem, "QUICK": quick, **overrides},
                                                            indent=1, sort_keys=True, default=str))
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        pm.execute_notebook(
            str(path), str(out), parameters={"QUICK": quick, **overrides},
            kernel_name=ensure_kernel(), cwd=str(path.parent),
            progress_bar={"desc": path.stem, "leave": False} if progress else False,
            execution_timeout=timeout, log_output=False,
        )
    except pm.PapermillExecutionError as exc:
        # papermill inserts an "injected-parameters" cell after the parameters cell: count source cells
        import nbformat

        src = nbformat.read(path, as_version=4).cells
        tagged = [i for i, c in enumerate(src) if "parameters" in c.metadata.get("tags", [])]
        index = exc.cell_index - (1 if tagged and exc.cell_index > tagged[0] else 0)
        first = next((ln for ln in str(exc.source).splitlines() if ln.strip()), "")[:60]
        raise NotebookFailed(f"notebook {path.stem!r} failed in cell {index} ({first!r}): "
                             f"{exc.ename}: {str(exc.evalue).splitlines()[0] if exc.evalue else ''}; "
                             f"the executed copy with the traceback is {out}") from exc
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return out


# -- results store for notebooks -------------------------------------------------------------------
def _records_hash(records: list[Mapping[str, Any]]) -> str:
    blob = json.dumps([dict(r) for r in records], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _uniform(records: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Make each column one type for parquet: columns mixing strings with numbers become strings."""
    kinds: dict[str, set[str]] = {}
    for r in records:
        for k, v in r.items():
            if v is None or (isinstance(v, float) and v != v):
                continue
            kinds.setdefault(k, set()).add("num" if isinstance(v, (int, float)) and not isinstance(v, bool)
                                           else "bool" if isinstance(v, bool) else
                                           "str" if isinstance(v, str) else "other")
    mixed = {k for k, s in kinds.items() if len(s) > 1}
    out = []
    for r in records:
        out.append({k: (str(v) if k in mixed and v is not None else v) for k, v in r.items()})
    return out


def record_results(records: Iterable[Mapping[str, Any]], name: str, *, device: str = "cpu",
                   threads: int | None = None):
    """Store ``records`` in ``results/<name>/`` (with provenance) and return them as stored.

    Re-running a notebook on cached sweep results does not append a duplicate: a part holding
    exactly these records (same ``records_hash``) is reused. The returned DataFrame carries
    ``attrs["source"]`` (the part file), which :func:`xflow.viz.save` writes into the figure.
    """
    import pandas as pd

    from xflow.results import write_records

    recs = _uniform([dict(r) for r in records])
    if not recs:
        raise XflowError(f"record_results({name!r}): no records (did every run of the sweep fail?)")
    h = _records_hash(recs)
    directory = paths.results_dir(name)
    part = None
    for p in sorted(directory.glob("*.parquet")):
        try:
            if h in set(pd.read_parquet(p, columns=["records_hash"])["records_hash"]):
                part = p
                break
        except Exception:  # noqa: BLE001 - a part without the column (or unreadable) is not ours
            continue
    if part is None:
        part = write_records([{**r, "records_hash": h} for r in recs], name, device=device, threads=threads)
    df = pd.read_parquet(part)
    df.attrs["source"] = str(part)
    return df


def sweep_options(backend: str, *, timing: bool = False) -> dict[str, Any]:
    """:func:`xflow.sweep.run_sweep` keywords for a notebook's ``BACKEND`` knob (``"local"`` or ``"ray"``).

    On Ray a *timing* sweep asks for every core of the machine per task, so Ray runs its configs
    one at a time: two timed runs never share cores (their numbers would not be comparable).
    """
    if backend not in ("local", "ray"):
        raise XflowError(f"BACKEND must be 'local' or 'ray', got {backend!r} (-p BACKEND=ray)")
    kw: dict[str, Any] = {"backend": backend}
    if backend == "ray" and timing:
        kw["num_cpus_per_task"] = float(os.cpu_count() or 1)
    return kw


# -- CLI -------------------------------------------------------------------------------------------
def _cmd_list(args: argparse.Namespace) -> Report:
    names = [p.stem for p in list_notebooks()]
    return Report({"notebooks": names}, "\n".join(names))


def _cmd_params(args: argparse.Namespace) -> Report:
    params = notebook_parameters(args.name)
    width = max((len(k) for k in params), default=0)
    text = "\n".join(f"{k:<{width}} = {v['default']}" + (f"   # {v['help']}" if v["help"] else "")
                     for k, v in params.items())
    return Report({"notebook": Path(args.name).stem, "parameters": params}, text)


def _cmd_run(args: argparse.Namespace) -> Report:
    targets = list_notebooks() if args.all or not args.names else [_resolve(n) for n in args.names]
    overrides = dict(parse_parameter(p) for p in (args.parameter or []))
    if overrides and len(targets) > 1:
        raise XflowError("-p overrides apply to one notebook; name exactly one (xflow notebooks run NAME -p K=V)")
    quick = bool(int(args.quick))
    done: dict[str, float] = {}
    outputs: dict[str, str] = {}
    from tqdm.auto import tqdm

    bar = tqdm(targets, desc="notebooks", unit="nb", disable=args.no_progress or len(targets) < 2)
    for nb in bar:
        t0 = time.perf_counter()
        bar.set_postfix_str(nb.stem)
        out = run_notebook(nb, quick=quick, parameters=overrides, progress=not args.no_progress)
        done[nb.stem] = round(time.perf_counter() - t0, 1)
        outputs[nb.stem] = str(out)
    fig_dir = Path(os.environ["XFLOW_FIGURES"]) if "XFLOW_FIGURES" in os.environ else (
        Path(next(iter(outputs.values()))).parent / "figures" if overrides else paths.figures_dir())
    figs = sorted(p.name for p in fig_dir.glob("*.png")) if fig_dir.exists() else []
    text = "\n".join(f"{k}: {v} s -> {outputs[k]}" for k, v in done.items())
    text += f"\nfigures in {fig_dir}: {', '.join(figs)}"
    return Report({"seconds": done, "executed": outputs, "figures_dir": str(fig_dir), "figures": figs,
                   "parameters": overrides, "quick": quick}, text)


def register(sub: "argparse._SubParsersAction") -> None:
    """Add ``xflow notebooks list|params|run``."""
    p = add_command(sub, "notebooks", None, help="list, inspect or execute the notebooks (quick, full or ablation)")
    nsub = p.add_subparsers(dest="notebooks_command", metavar="ACTION", required=True)
    add_command(nsub, "list", _cmd_list, help="list notebooks")
    pp = add_command(nsub, "params", _cmd_params, help="show a notebook's parameters (its knobs) and defaults")
    pp.add_argument("name", help="notebook name, e.g. 20_sparsity_accuracy")
    r = add_command(nsub, "run", _cmd_run, help="execute notebooks in a real kernel",
                    formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    r.add_argument("names", nargs="*", help="notebook names (default: all)")
    r.add_argument("--all", action="store_true", help="run every notebook")
    r.add_argument("--quick", default="1", choices=["0", "1"], help="quick profile (1) or full (0)")
    r.add_argument("-p", "--parameter", action="append", metavar="KEY=VALUE",
                   help="override a knob of the parameters cell (Python literal), e.g. -p SEEDS=[1,2,3] "
                        "-p BACKEND=ray; repeatable; the run then writes to results/notebooks/NAME-TAG/")
    r.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")


if __name__ == "__main__":  # `python -m xflow.notebooks run --all`
    from xflow.cli import main

    sys.exit(main(["notebooks", *sys.argv[1:]]))
