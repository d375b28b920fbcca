r"""Per-node kernel times of a model *inside* the whole graph, from ONNX Runtime's profiler.

A per-op table (TASO; :mod:`xflow.costs.optable`) times every operator alone, in a one-node
session run over and over: its weights stay hot in the caches. Inside a graph an operator reads
weights the rest of the graph has pushed out since its last run, and what that costs depends on
the operator's size (NASRNN's MatMuls: table ``costs.context_ops`` in ``docs/rl.md``).
:func:`node_times` gives every node's time where it runs:

.. math:: t_{\mathrm{ctx}}(v) = \operatorname{median}_{r=1..R} d_r(v)

where :math:`d_r(v)` is the duration of node :math:`v`'s kernel in profiled run :math:`r` (ORT's
``<node>_kernel_time`` event: the kernel's compute, wall clock, µs resolution; the executor's work
between nodes is not in it), after ``warmup`` runs whose events are dropped.

This attributes a graph's time to its nodes (a cost model's table, :mod:`xflow.costs.ort_context`);
it is not a speed claim: speed-ups are decided by the measurement core (:mod:`xflow.runtime.measure`).
"""
from __future__ import annotations

import json
import os
import statistics
import tempfile
from collections import defaultdict
from typing import Any

from xflow.runtime.session import ModelLike, make_session, random_inputs

__all__ = ["node_times"]

_SUFFIX = "_kernel_time"


def node_times(model: ModelLike, *, level: str = "all", threads: int = 1, device: str = "cpu", warmup: int = 10,
               runs: int = 50, seed: int = 0, feeds: dict[str, Any] | None = None) -> dict[str, float]:
    """``{node name: median kernel time in ms}`` of every node ORT runs for ``model``, each timed
    inside the whole graph (module docstring). One session with :func:`make_session`'s settings and
    the profiler on; ``warmup`` runs, then ``runs`` runs whose kernel events are kept; inputs are
    ``feeds`` or seeded random ones (:func:`random_inputs`). Node names are those of the graph ORT
    runs (its optimized graph: fused nodes carry ORT's names)."""
    if runs < 1 or warmup < 0:
        raise ValueError(f"node_times needs runs >= 1 and warmup >= 0 (got runs={runs}, warmup={warmup})")
    feeds = feeds if feeds is not None else random_inputs(model, seed=seed)
    with tempfile.TemporaryDirectory(prefix="xflow-node-profile-") as d:
        sess = make_session(model, level=level, intra_threads=threads, device=device,
                            profile_prefix=os.path.join(d, "profile"))
        for _ in range(warmup + runs):
            sess.run(None, feeds)
        path = sess.end_profiling()
        del sess
        with open(path) as f:
            events = json.load(f)
    durations: dict[str, list[float]] = defaultdict(list)
    for e in events:
        name = e.get("name", "")
        if e.get("cat") == "Node" and name.endswith(_SUFFIX):
            durations[name[: -len(_SUFFIX)]].append(float(e["dur"]))
    return {n: statistics.median(v[warmup:] or v) / 1000.0 for n, v in durations.items()}
