r"""``measured-ops``: a graph's cost as the sum of measured per-operator times, after TASO.

TASO (Jia et al., SOSP 2019) costs a graph as :math:`\sum_v t(v)`, where :math:`t(v)` is the
measured time of operator :math:`v`'s *configuration* — op type, attributes, input shapes and
types — and each distinct configuration is timed once on the device and remembered. Here:

* a configuration (:func:`op_config`) is the op, its attributes, every input's element type and
  static shape, which inputs are constant, and the values of integer and scalar constants (a
  Reshape target, Split sizes or a Pow exponent change what the op does); weights and biases
  enter by shape only;
* it is timed as a one-node ONNX Runtime session (constant inputs as initializers, so ORT
  pre-packs weights as it would in the full graph) in one interleaved
  :func:`xflow.runtime.latency.measure_models` run together with every other missing
  configuration of the graph and an *empty* session (one ``Identity`` on one float, with its A/A
  control); :math:`t(v)` = median(op session) − median(empty session), clipped at 0, on the
  deciding clock (thread CPU time at one thread) — the session-call overhead is not the op's;
* results live in a table keyed by the configuration's content hash, in memory and on disk under
  ``cache_dir('costs', 'ops')`` (one file per device label, level, threads and
  :data:`OPTABLE_VERSION`; corrupt files are ignored and rewritten, writes are atomic).

Differences from TASO: ONNX Runtime on the CPU instead of cuDNN/cuBLAS kernels on a GPU; a
session call per op instead of a bare kernel launch (hence the empty-session subtraction); no
per-op layout choice. Operators with control-flow subgraphs or non-static input shapes cannot be
timed alone and cost 0 (logged once per op type).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx_ir as ir
from onnx import TensorProto, helper

from xflow import paths
from xflow.costs.base import CachedCost
from xflow.costs.profiles import device_slug
from xflow.graphs.hashing import array_digest
from xflow.graphs.ir import Graph, attrs, has_subgraph, ins, outs
from xflow.runtime.device import describe_device
from xflow.runtime.latency import measure_models

__all__ = ["MeasuredOpCost", "OPTABLE_VERSION", "op_config", "config_key", "op_model"]

log = logging.getLogger(__name__)

#: Version of the per-op table (its key encoding and how a time is obtained).
OPTABLE_VERSION = 1

_FLOATS = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.BFLOAT16}
_EMPTY = "_empty"


def _canon(v: Any) -> Any:
    if isinstance(v, float):
        return struct.unpack("<f", struct.pack("<f", v))[0]
    if isinstance(v, (tuple, list)):
        return [_canon(x) for x in v]
    if isinstance(v, np.ndarray):
        return array_digest(v).hex()
    if isinstance(v, (str, int, bool)) or v is None:
        return v
    return repr(v)


def op_config(graph: Graph, node: ir.Node) -> dict[str, Any] | None:
    """The configuration of ``node`` (see the module docstring), or ``None`` when it cannot be
    timed alone (subgraphs, ``Constant``, an input without a static shape or type)."""
    if node.op_type == "Constant" or has_subgraph(node):
        return None
    inputs = []
    for t in ins(node):
        if not t:
            inputs.append(None)
            continue
        et, shp, c = graph.elem_type(t), graph.shape(t), graph.const(t)
        if et is None or shp is None:
            return None
        entry: dict[str, Any] = {"dtype": et, "shape": list(shp), "const": c is not None}
        if c is not None and (et not in _FLOATS or c.size <= 1):
            entry["values"] = array_digest(c).hex()
        inputs.append(entry)
    return {"op": node.op_type, "domain": node.domain, "opset": graph.opset,
            "attrs": {k: _canon(v) for k, v in sorted(attrs(node).items())},
            "inputs": inputs, "outputs": len(node.outputs)}


def config_key(config: dict[str, Any]) -> str:
    """Content hash of a configuration (hex, 24 characters)."""
    blob = json.dumps({"v": OPTABLE_VERSION, **config}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def op_model(graph: Graph, node: ir.Node) -> onnx.ModelProto:
    """``node`` alone as a model: constant inputs as initializers, the others as typed inputs."""
    g_inputs, g_inits, seen = [], [], set()
    for t in ins(node):
        if not t or t in seen:
            continue
        seen.add(t)
        c = graph.const(t)
        if c is not None:
            g_inits.append(onnx.numpy_helper.from_array(np.asarray(c), t))
        else:
            g_inputs.append(helper.make_tensor_value_info(t, graph.elem_type(t), list(graph.shape(t))))
    g_outputs = [helper.make_tensor_value_info(o, graph.elem_type(o) or TensorProto.UNDEFINED, graph.shape(o))
                 for o in outs(node) if o]
    proto = ir.serde.serialize_node(node)
    m = helper.make_model(helper.make_graph([proto], f"op_{node.op_type}", g_inputs, g_outputs, g_inits),
                          opset_imports=[helper.make_opsetid(d, v) for d, v in graph.ir.opset_imports.items()])
    m.ir_version = graph.ir.ir_version
    return m


def _empty_model() -> onnx.ModelProto:
    m = helper.make_model(helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "empty",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])]), opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


class MeasuredOpCost(CachedCost):
    """Sum of measured per-operator times (ms), each configuration timed once (see module docstring).

    Args:
        device: ``cpu`` or ``cuda``.
        threads: ORT intra-op threads.
        level: ORT graph optimization level of the one-node sessions.
        rounds, warmup: of the interleaved measurement of missing configurations.
        persist: keep the table on disk.
    """

    name = "measured-ops"

    def __init__(self, *, device: str = "cpu", threads: int = 1, level: str = "all", rounds: int = 10,
                 warmup: int = 3, persist: bool = True) -> None:
        super().__init__()
        self.device, self.threads, self.level = device, int(threads), level
        self.rounds, self.warmup, self.persist = rounds, warmup, persist
        self._table: dict[str, float] | None = None
        self._unmeasurable: set[str] = set()

    def __repr__(self) -> str:
        return f"MeasuredOpCost(device={self.device!r}, threads={self.threads}, level={self.level!r})"

    # -- the table ----------------------------------------------------------------------------
    def _path(self) -> Path:
        slug = device_slug(describe_device(self.device).label())
        return paths.cache_dir("costs", "ops") / f"{slug}-{self.level}-t{self.threads}-v{OPTABLE_VERSION}.json"

    @property
    def table(self) -> dict[str, float]:
        """``{configuration key: ms}`` (loaded from disk on first access)."""
        if self._table is None:
            self._table = {}
            if self.persist:
                p = self._path()
                try:
                    data = json.loads(p.read_text())
                    if isinstance(data, dict):
                        self._table = {k: float(v) for k, v in data.items() if isinstance(v, (int, float))}
                except FileNotFoundError:
                    pass
                except (OSError, ValueError) as exc:
                    log.warning("per-op table %s is unreadable (%s); it will be rebuilt", p, exc)
        return self._table

    def _save(self) -> None:
        p = self._path()
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
        with os.fdopen(fd, "w") as f:
            json.dump(self.table, f, sort_keys=True)
        os.replace(tmp, p)

    def _configs(self, graph: Graph) -> list[tuple[ir.Node, str | None]]:
        out = []
        for node in graph.nodes:
            cfg = op_config(graph, node)
            if cfg is None:
                if node.op_type != "Constant" and node.op_type not in self._unmeasurable:
                    self._unmeasurable.add(node.op_type)
                    log.warning("measured-ops: %s nodes cannot be timed alone (dynamic shape or subgraph); "
                                "they cost 0", node.op_type)
                out.append((node, None))
            else:
                out.append((node, config_key(cfg)))
        return out

    def ensure(self, *graphs: Graph) -> int:
        """Time every configuration of ``graphs`` not in the table yet, all in one interleaved run
        (so the configurations of graphs that will be compared share the machine's conditions);
        returns how many were timed."""
        missing: dict[str, tuple[Graph, ir.Node]] = {}
        for graph in graphs:
            for node, key in self._configs(graph):
                if key is not None and key not in self.table and key not in missing:
                    missing[key] = (graph, node)
        return self.time_models({k: op_model(g, n) for k, (g, n) in missing.items()})

    def time_models(self, models: dict[str, onnx.ModelProto]) -> int:
        """Time one-node models ``{configuration key: model}`` (:func:`op_model`) not in the table
        yet, in one interleaved run with the empty session; returns how many were timed."""
        missing = {k: v for k, v in models.items() if k not in self.table}
        if not missing:
            return 0
        settings = {"level": self.level, "intra_threads": self.threads, "device": self.device}
        variants = {_EMPTY: (_empty_model(), settings)}
        variants.update({k: (mdl, settings) for k, mdl in missing.items()})
        m = measure_models(variants, baseline=_EMPTY, warmup=self.warmup, rounds=self.rounds)
        empty = m.median_ms(_EMPTY)
        for k in missing:
            self.table[k] = max(m.median_ms(k) - empty, 0.0)
        if self.persist:
            self._save()
        log.info("measured-ops: timed %d new op configurations (empty session %.4f ms)", len(missing), empty)
        return len(missing)

    # -- costs --------------------------------------------------------------------------------
    def breakdown(self, model) -> list[dict[str, Any]]:
        """Per-operator rows ``{node, op, key, ms}``."""
        graph = Graph.of(model)
        self.ensure(graph)
        return [{"node": n.name, "op": n.op_type, "key": k, "ms": self.table[k] if k is not None else 0.0}
                for n, k in self._configs(graph)]

    def compute(self, graph: Graph) -> float:
        return float(sum(r["ms"] for r in self.breakdown(graph)))
