"""Docs tables of the graph core (``make report``): the model zoo and the toy builders (from their
registries), the modules (from their docstrings), and loading + folding on zoo exports
(``results/graphs/load.csv``, ``benchmarks/graphs_load.py``)."""
from __future__ import annotations

import re

from xflow.tables import fmt, load_result, markdown_table, report_table

__all__: list[str] = []


@report_table("graphs.zoo_models")
def zoo_models_table() -> str:
    """Every zoo model with its description, default config and tags (from :mod:`xflow.graphs.zoo`)."""
    from xflow.graphs import zoo

    rows = []
    for name in zoo.list_models():
        d = zoo.describe(name)
        cfg = ", ".join(f"{k} {v}" for k, v in d["defaults"].items() if k != "seed")
        tags = ", ".join(d.get("tags", ())) if d.get("tags") else "—"
        rows.append([f"`{name}`", d["description"], cfg, tags])
    return markdown_table(["name", "description", "default config", "used by"], rows)


#: The graph core's modules in reading order (the docs table lists each with its docstring's first line).
MODULES = ["ir", "model", "model_args", "overrides", "shapes", "folding", "edit", "hashing", "opcost", "pyg",
           "rendering", "builders", "zoo", "zoo_nets", "model_ids", "cli", "report"]


def _first_line(doc: str | None) -> str:
    """First paragraph of a docstring as one markdown line (reST literals and roles made plain)."""
    para = []
    for line in (doc or "").strip().splitlines():
        if not line.strip():
            break
        para.append(line.strip())
    text = " ".join(para).replace("``", "`")
    return re.sub(r":\w+:`~?([\w.]+)`", lambda m: f"`{m.group(1).rsplit('.', 1)[-1]}`", text)


@report_table("graphs.modules")
def modules_table() -> str:
    """Every module of :mod:`xflow.graphs` with the first line of its docstring."""
    import importlib
    import pkgutil

    import xflow.graphs as pkg

    present = {m.name for m in pkgutil.iter_modules(pkg.__path__)}
    missing = [m for m in MODULES if m not in present]
    unlisted = sorted(present - set(MODULES))
    if missing or unlisted:
        raise ValueError(f"graphs.report.MODULES is out of date: missing {missing}, unlisted {unlisted}")
    rows = [[f"`{m}.py`", _first_line(importlib.import_module(f"xflow.graphs.{m}").__doc__)] for m in MODULES]
    return markdown_table(["module", "job"], rows)


@report_table("graphs.builders")
def builders_table() -> str:
    """Every toy-graph builder of :data:`xflow.graphs.builders.BUILDERS` with its docstring's first line."""
    from xflow.graphs.builders import BUILDERS

    rows = [[f"`{fn.__name__}`", f"`build({name!r})`", _first_line(fn.__doc__)] for name, fn in BUILDERS.items()]
    return markdown_table(["builder", "by name", "what it shows"], rows)


def _diff(x: float) -> str:
    return "0" if x == 0 else f"{x:.1e}"


@report_table("graphs.load")
def load_table() -> str:
    """``load_model`` on zoo exports: nodes before/after the one fold + DCE pass, its counts, the
    output check against the export, and the load time (``benchmarks/graphs_load.py``)."""
    df = load_result("graphs/load.csv")
    rows = []
    for r in df.itertuples():
        rows.append([f"`{r.model}`", r.nodes_export, r.nodes_loaded, r.fold_const_nodes_folded,
                     r.fold_identities_resolved, r.fold_dropouts_removed, r.fold_dead_nodes_removed,
                     r.fold_skipped_large, f"{'yes' if r.outputs_match else 'NO'} ({_diff(r.max_abs_diff)})",
                     f"{fmt(r.thread_cpu_ms / 1e3, 2)} s (IQR {fmt(r.iqr_ms / 1e3, 2)})", f"{fmt(r.wall_ms / 1e3, 2)} s"])
    return markdown_table(["model", "nodes (export)", "nodes (loaded)", "folded", "Identity resolved",
                           "Dropout removed", "dead removed", "kept (too large)", "outputs equal (max abs diff)",
                           "load (thread CPU, median)", "load (wall)"], rows,
                          ["l", "r", "r", "r", "r", "r", "r", "r", "l", "r", "r"])
