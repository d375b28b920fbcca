"""Readable names of the parallel benchmark's variants, for plots and tables.

:mod:`xflow.parallel.bench` names variants by what runs (``gen_branch_threads``, ``ort_seq_2t``,
``gen_serial~aa`` …); a figure needs what a reader understands ("generated branches on 2 workers").
Kept apart from the benchmark so the names stay readable whichever variants it measures: unknown
names come back unchanged.
"""
from __future__ import annotations

import re

__all__ = ["variant_label", "variant_family", "FAMILIES"]

#: the groups bars are coloured by, in plotting order
FAMILIES = ("generated", "torch eager", "ONNX Runtime", "A/A control")


def _threads(n: str) -> str:
    return f"{n} thread{'' if n == '1' else 's'}"


def variant_label(name: str, workers: int = 2) -> str:
    """A readable name of a benchmark variant, e.g. ``gen_branch_threads`` → "generated branches on 2 workers"."""
    if name.endswith("~aa"):
        return "A/A control: the reference timed twice" if name[:-3] == "gen_serial" else \
            f"A/A control: {variant_label(name[:-3], workers)} twice"
    fixed = {"gen_serial": "generated serial, 1 thread (reference)",
             "gen_intra": f"generated serial, {workers} intra-op threads",
             "gen_serial_plain": "generated serial, plain lowering",
             "gen_serial_tuned": "generated serial, tuned conv kernels",
             "gen_serial_graph": "generated serial, oneDNN Graph (frozen TorchScript)",
             "gen_branch_torchscript_graph": f"generated branches on {workers} workers, oneDNN Graph",
             "gen_hybrid_torchscript_graph": "generated hybrid, oneDNN Graph",
             "gen_verified_threads": "generated hybrid, measured safety valve",
             "gen_branch_regions_threads": f"generated branches on {workers} workers, per-region clustering",
             "ort_parallel": f"ORT parallel, {workers} inter-op",
             "ort_clusters": "ORT sub-sessions per cluster (hybrid plan)"}
    if name in fixed:
        return fixed[name]
    if m := re.fullmatch(r"gen_serial_(\w+)", name):
        return f"generated serial, {m.group(1)}"
    if m := re.fullmatch(r"gen_(branch|hybrid)_(\w+)", name):
        what = f"branches on {workers} workers" if m.group(1) == "branch" else "hybrid (branches or threads)"
        return f"generated {what}" + ("" if m.group(2) == "threads" else f", {m.group(2)}")
    if m := re.fullmatch(r"eager_(\d+)t", name):
        return f"torch eager, {_threads(m.group(1))}"
    if m := re.fullmatch(r"ort(?:_seq)?_(\d+)t", name):
        return f"ORT sequential, {_threads(m.group(1))}"
    return name


def variant_family(name: str) -> str:
    """The group a variant's bar is coloured by: one of :data:`FAMILIES`."""
    if name.endswith("~aa"):
        return "A/A control"
    return "generated" if name.startswith("gen_") else "torch eager" if name.startswith("eager") else "ONNX Runtime"
