"""Run the project's notebooks in a real Jupyter kernel (papermill), quick or full profile.

Every notebook in ``notebooks/`` has a papermill *parameters* cell with ``QUICK = True``;
``make figures`` runs them all through :func:`run_notebook`, the tests run each one in quick mode.
Executed copies go to ``results/notebooks/``; figures are written by the notebooks to ``figures/``.
CLI: ``xflow notebooks list`` / ``xflow notebooks run [NAME ...|--all] [--quick=0|1]``.
"""
from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from xflow import paths
from xflow.clitools import Report, add_command

__all__ = ["notebook_dir", "list_notebooks", "ensure_kernel", "run_notebook", "KERNEL_NAME"]

KERNEL_NAME = "xflow"
log = logging.getLogger(__name__)


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
        import json

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


def run_notebook(path: Path | str, *, quick: bool = True, timeout: int = 1800,
                 parameters: dict | None = None) -> Path:
    """Execute one notebook with ``QUICK=quick`` in the ``xflow`` kernel; return the executed copy.

    Raises ``papermill.PapermillExecutionError`` (naming the failing cell) when a cell fails.
    """
    import papermill as pm

    path = Path(path)
    if not path.exists():
        cand = notebook_dir() / path
        path = cand if cand.exists() else notebook_dir() / f"{path}.ipynb"
    if not path.exists():
        from xflow.errors import UnknownName

        names = ", ".join(p.stem for p in list_notebooks())
        raise UnknownName(f"no notebook {path.name!r}; available: {names}")
    out = paths.results_dir("notebooks") / path.name
    env_quick = os.environ.get("XFLOW_QUICK")
    os.environ["XFLOW_QUICK"] = "1" if quick else "0"
    try:
        pm.execute_notebook(
            str(path), str(out), parameters={"QUICK": bool(quick), **(parameters or {})},
            kernel_name=ensure_kernel(), cwd=str(path.parent), progress_bar=False,
            execution_timeout=timeout, log_output=False,
        )
    finally:
        if env_quick is None:
            os.environ.pop("XFLOW_QUICK", None)
        else:
            os.environ["XFLOW_QUICK"] = env_quick
    return out


def _cmd_list(args: argparse.Namespace) -> Report:
    names = [p.stem for p in list_notebooks()]
    return Report({"notebooks": names}, "\n".join(names))


def _cmd_run(args: argparse.Namespace) -> Report:
    targets = list_notebooks() if args.all or not args.names else [Path(n) for n in args.names]
    quick = bool(int(args.quick))
    done = {}
    for nb in targets:
        t0 = time.perf_counter()
        print(f"running {Path(nb).stem} (quick={quick}) ...", file=sys.stderr, flush=True)
        run_notebook(nb, quick=quick)
        done[Path(nb).stem] = round(time.perf_counter() - t0, 1)
    figs = sorted(p.name for p in paths.figures_dir().glob("*.png"))
    text = "\n".join(f"{k}: {v} s" for k, v in done.items()) + f"\nfigures/: {', '.join(figs)}"
    return Report({"seconds": done, "figures": figs}, text)


def register(sub: "argparse._SubParsersAction") -> None:
    """Add ``xflow notebooks list|run``."""
    p = add_command(sub, "notebooks", None, help="list or execute the notebooks (quick or full profile)")
    nsub = p.add_subparsers(dest="notebooks_command", metavar="ACTION", required=True)
    add_command(nsub, "list", _cmd_list, help="list notebooks")
    r = add_command(nsub, "run", _cmd_run, help="execute notebooks in a real kernel")
    r.add_argument("names", nargs="*", help="notebook names (default: all)")
    r.add_argument("--all", action="store_true", help="run every notebook")
    r.add_argument("--quick", default="1", choices=["0", "1"], help="quick profile (1) or full (0)")


if __name__ == "__main__":  # `python -m xflow.notebooks run --all`
    from xflow.cli import main

    sys.exit(main(["notebooks", *sys.argv[1:]]))
