r"""``ort``: the cost of the graph ONNX Runtime will actually run — ORT's own optimized graph, costed
with the measured per-op table.

A rewrite's effect on latency depends on what the backend's optimizer makes of the result: ORT
fuses ``Conv`` + ``Relu`` into one ``FusedConv`` (or a ``com.microsoft.nchwc`` ``Conv`` with an
``activation`` attribute), folds ``BatchNormalization`` into ``Conv``, cancels transposes and
switches convolutional graphs to the blocked NCHWc layout. A rewrite that moves a ``Relu`` past a
``Concat`` (``unary_after_concat``) breaks two Conv+Relu fusions and adds a standalone ``Relu``;
a rewrite that does what ORT does anyway (``fold_into_conv``, ``fuse_transposes``) leaves the
optimized graph unchanged. Costing the input graph cannot see either. So

.. math:: c_{\mathrm{ort}}(G) = \sum_{v \in \mathrm{opt}_{\mathrm{ORT}}(G)} t(v)

where :math:`\mathrm{opt}_{\mathrm{ORT}}(G)` is the model ORT writes with
``SessionOptions.optimized_model_filepath`` at the backend's optimization level (``all``, the
level every measured latency here uses) on this device, and :math:`t(v)` the per-op table of
:class:`~xflow.costs.optable.MeasuredOpCost` (each op configuration timed once as a one-node
session, minus an empty session). The table is taken at level ``disable``: the optimized nodes are
already what ORT runs (an NCHWc ``Conv`` timed alone at level ``all`` would be re-wrapped in layout
reorders the full graph does not pay), and the explicit ``ReorderInput``/``ReorderOutput`` nodes
ORT inserted are costed like any other node.

ORT writes the optimized model without shapes, so one run of it (level ``disable``, every
intermediate tensor as an extra output, seeded random inputs) records each tensor's shape and type
(:func:`optimized_model`). Costs are cached by the input graph's content hash, in memory and on
disk (``cache_dir('costs', 'ort')``, one file per device label, level, threads, ORT version and
:data:`CACHE_VERSION`; corrupt files are ignored and rewritten).
"""
from __future__ import annotations

import logging
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx_ir as ir

from xflow import paths
from xflow.costs.base import CachedCost
from xflow.costs.disk_cache import load_costs, store_cost
from xflow.costs.optable import OPTABLE_VERSION, MeasuredOpCost, op_model
from xflow.costs.profiles import device_slug
from xflow.errors import InvalidModel
from xflow.graphs.hashing import HASH_VERSION
from xflow.graphs.ir import Graph
from xflow.runtime.device import describe_device
from xflow.runtime.heap import trim
from xflow.runtime.session import _ort_level, random_inputs

__all__ = ["OrtOptimizedCost", "optimized_model", "optimized_op_counts", "transient_proto", "release_heap", "CACHE_VERSION"]

log = logging.getLogger(__name__)

#: Version of how an ``ort`` cost is obtained (part of the disk-cache file name).
CACHE_VERSION = 1


def _session_options(level: str, threads: int, path: str | None = None):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = _ort_level(level)
    so.intra_op_num_threads = int(threads)
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if int(threads) == 1 else "0")
    if path is not None:
        so.optimized_model_filepath = path
    return so


def _providers(device: str) -> list[str]:
    return ["CUDAExecutionProvider", "CPUExecutionProvider"] if device == "cuda" else ["CPUExecutionProvider"]


def release_heap() -> None:
    """Collect garbage and return freed heap pages to the OS (``malloc_trim``; glibc only). ORT
    sessions over full-size weight copies fragment the heap: without this, costing 31 graphs of a
    170 MB model grew the process by ~100 MB per graph."""
    trim()  # xflow.runtime.heap: gc.collect + malloc_trim(0), a no-op off glibc


def transient_proto(graph: Graph) -> onnx.ModelProto:
    """``graph`` as a ``ModelProto`` without caching it on the graph (``Graph.model`` keeps its
    copy of the weights for the graph's lifetime: costing many candidates must not pile them up)."""
    cached = graph.__dict__.get("model")
    return cached if cached is not None else ir.serde.serialize_model(graph.ir)


def optimized_model(model: Graph | onnx.ModelProto, *, level: str = "all", threads: int = 1,
                    device: str = "cpu", seed: int = 0) -> onnx.ModelProto:
    """The model ORT runs for ``model`` at ``level``, with a shape and type for every tensor.

    ORT writes its optimized graph (``optimized_model_filepath``); a second session of that graph
    (optimizations off, every intermediate tensor as an extra output) is run once on seeded random
    inputs to record shapes, which ORT does not write. Nodes get unique names.
    """
    import onnxruntime as ort

    proto = model if isinstance(model, onnx.ModelProto) else transient_proto(Graph.of(model))
    with tempfile.TemporaryDirectory(prefix="xflow-ort-opt-") as d:
        path = os.path.join(d, "optimized.onnx")
        try:
            ort.InferenceSession(proto.SerializeToString(), _session_options(level, threads, path),
                                 providers=_providers(device))
        except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InvalidModel(f"ONNX Runtime rejected the model: {msg}") from None
        opt = onnx.load(path)
    known = ({i.name for i in opt.graph.input} | {o.name for o in opt.graph.output}
             | {t.name for t in opt.graph.initializer})
    inter = list(dict.fromkeys(t for n in opt.graph.node for t in n.output if t and t not in known))
    n_out = len(opt.graph.output)
    for t in inter:  # probe: every intermediate tensor as an extra output (removed again below)
        opt.graph.output.append(onnx.ValueInfoProto(name=t))
    sess = ort.InferenceSession(opt.SerializeToString(), _session_options("disable", threads),
                                providers=_providers(device))
    del opt.graph.output[n_out:]
    feed = random_inputs(proto, seed=seed)
    specs = []
    if inter:
        for t, a in zip(inter, sess.run(inter, feed)):  # keep shapes and types only
            specs.append((t, onnx.helper.np_dtype_to_tensor_dtype(np.asarray(a).dtype), list(np.shape(a))))
    del sess
    del opt.graph.value_info[:]
    for t, et, shp in specs:
        opt.graph.value_info.append(onnx.helper.make_tensor_value_info(t, et, shp))
    seen: Counter[str] = Counter()
    for i, n in enumerate(opt.graph.node):  # ORT leaves some names empty or repeated
        base = n.name or f"{n.op_type}_{i}"
        seen[base] += 1
        n.name = base if seen[base] == 1 else f"{base}__{seen[base]}"
    return opt


def optimized_op_counts(model: Graph | onnx.ModelProto, *, level: str = "all") -> dict[str, int]:
    """``{domain:op: count}`` of ORT's optimized graph (``FusedConv``, ``com.microsoft.nchwc:Conv``…)."""
    opt = optimized_model(model, level=level)
    return dict(Counter(f"{n.domain}:{n.op_type}" if n.domain else n.op_type for n in opt.graph.node))


class OrtOptimizedCost(CachedCost):
    """Sum of measured per-op times (ms) over ORT's optimized graph (see the module docstring).

    Args:
        level: the ORT optimization level the backend runs at (``all``).
        threads: intra-op threads (of the optimizer's session and of the per-op table).
        device: ``cpu`` or ``cuda``.
        rounds, warmup: of the per-op table's interleaved measurements.
        persist: keep the per-op table and the costs on disk.
        ops: the per-op table to use (default: a :class:`MeasuredOpCost` at level ``disable``).
    """

    name = "ort"

    def __init__(self, *, level: str = "all", threads: int = 1, device: str = "cpu", rounds: int = 10,
                 warmup: int = 3, persist: bool = True, ops: MeasuredOpCost | None = None) -> None:
        super().__init__()
        self.level, self.threads, self.device, self.persist = level, int(threads), device, persist
        self.ops = ops or MeasuredOpCost(device=device, threads=threads, level="disable", rounds=rounds,
                                         warmup=warmup, persist=persist)
        self._rows: dict[str, list[dict[str, Any]]] = {}

    def __repr__(self) -> str:
        return f"OrtOptimizedCost(level={self.level!r}, threads={self.threads}, device={self.device!r})"

    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__)  # measured: worth keeping (rows are small: no weights)

    # -- disk cache ---------------------------------------------------------------------------
    def _disk_path(self) -> Path:
        import onnxruntime as ort

        slug = device_slug(describe_device(self.device).label())
        return paths.cache_dir("costs", "ort") / (
            f"{slug}-{self.level}-t{self.threads}-ort{ort.__version__}-c{CACHE_VERSION}"
            f"-o{OPTABLE_VERSION}-h{HASH_VERSION}.json")

    def _load_disk(self) -> dict[str, float]:
        return load_costs(self._disk_path(), "ort cost cache")

    def _store(self, key: str, ms: float) -> None:
        store_cost(self._disk_path(), key, ms, "ort cost cache")

    # -- costs --------------------------------------------------------------------------------
    def optimized(self, model: Graph | onnx.ModelProto) -> Graph:
        """ORT's optimized graph of ``model`` (with shapes), as a :class:`Graph`."""
        return Graph.of(optimized_model(model, level=self.level, threads=self.threads, device=self.device))

    def _analyze(self, graph: Graph, key: str, pending: dict[str, onnx.ModelProto]) -> list[dict[str, Any]]:
        """Rows ``{node, op, domain, key}`` of ``graph``'s optimized graph (remembered by hash);
        one-node models of configurations missing from the table go to ``pending``. The optimized
        graph (a full copy of the weights) is dropped afterwards: memory stays one graph."""
        rows = self._rows.get(key)
        if rows is None:
            opt = self.optimized(graph)
            rows = []
            for node, k in self.ops._configs(opt):
                rows.append({"node": node.name, "op": node.op_type, "domain": node.domain, "key": k})
                if k is not None and k not in self.ops.table and k not in pending:
                    pending[k] = op_model(opt, node)
            self._rows[key] = rows
        else:
            for r in rows:  # a table entry may have been lost (a rebuilt cache file): re-time it
                if r["key"] is not None and r["key"] not in self.ops.table and r["key"] not in pending:
                    self._rows.pop(key)
                    return self._analyze(graph, key, pending)
        return rows

    def prepare(self, models: "list[Graph | onnx.ModelProto]") -> int:
        """Time the missing op configurations of every model's optimized graph in *one*
        interleaved run (graphs to be ranked against each other then share one machine state:
        on a busy machine, tables filled in separate runs drift apart); returns how many."""
        pending: dict[str, onnx.ModelProto] = {}
        for m in models:
            g = Graph.of(m)
            self._analyze(g, g.content_hash, pending)
            release_heap()  # each optimized graph (a copy of the weights) goes back to the OS at once
        return self.ops.time_models(pending)

    def breakdown(self, model: Graph | onnx.ModelProto) -> list[dict[str, Any]]:
        """Per-node rows ``{node, op, domain, key, ms}`` of ORT's optimized graph."""
        graph = Graph.of(model)
        pending: dict[str, onnx.ModelProto] = {}
        rows = self._analyze(graph, graph.content_hash, pending)
        self.ops.time_models(pending)
        return [{**r, "ms": self.ops.table[r["key"]] if r["key"] is not None else 0.0} for r in rows]

    def compute(self, graph: Graph) -> float:
        """Cost of ``graph`` in ms: the per-op table over ORT's optimized graph (:meth:`cost` caches it
        by hash, in memory and on disk, so ORT optimizes each distinct graph once)."""
        return float(sum(r["ms"] for r in self.breakdown(graph)))
