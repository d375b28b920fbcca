r"""Cost functions ``cost(model) -> float`` (milliseconds) for the search baselines.

:class:`AnalyticCost` is a per-node roofline with a fixed per-node overhead:

.. math::
    T(G) = \sum_{v \in G} \Big( \max\big(\tfrac{F_v}{P}, \tfrac{B_v}{W}\big) + o \Big)

where :math:`F_v` are the node's floating-point operations (2 per multiply-add), :math:`B_v` the
bytes it reads and writes (inputs + outputs, initializers included), :math:`P` the peak
FLOP/s, :math:`W` the memory bandwidth and :math:`o` the per-node dispatch overhead of a
:class:`DeviceProfile`. :func:`calibrate` fits :math:`P`, :math:`W`, :math:`o` with three ONNX
Runtime micro-benchmarks (a large MatMul, a large Add, a chain of tiny Relus).

This model counts merges as wins (fewer nodes, same FLOPs); on a CPU with ORT's blocked conv
layout they measure as losses (see ``MEASUREMENTS.md``) — which is why :class:`MeasuredCost`
(ORT latency, cached by graph hash) exists and why search results are re-measured.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import onnx

from xflow.rewrites._graph import GraphView, attrs_of

__all__ = ["DeviceProfile", "PROFILES", "node_costs", "AnalyticCost", "MeasuredCost", "calibrate", "flops"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeviceProfile:
    """Roofline parameters: peak GFLOP/s, bandwidth GB/s, per-node overhead µs."""

    name: str
    peak_gflops: float
    bandwidth_gbs: float
    overhead_us: float

    def as_dict(self) -> dict[str, Any]:
        """The profile as a plain dict (JSON-able)."""
        return asdict(self)


#: Uncalibrated defaults (one Zen-4 core with AVX-512 in ORT; an H100 with the CUDA provider).
PROFILES: dict[str, DeviceProfile] = {
    "cpu": DeviceProfile("cpu", peak_gflops=60.0, bandwidth_gbs=12.0, overhead_us=3.0),
    "cuda": DeviceProfile("cuda", peak_gflops=40000.0, bandwidth_gbs=2000.0, overhead_us=8.0),
}

_ELEM_FLOPS = {"Add": 1, "Sub": 1, "Mul": 1, "Div": 1, "Relu": 1, "Sigmoid": 4, "Tanh": 4, "Exp": 4,
               "Erf": 8, "Sqrt": 2, "Pow": 4, "Softmax": 5, "LayerNormalization": 8, "Gelu": 10,
               "BatchNormalization": 2, "Clip": 1, "LeakyRelu": 2, "HardSigmoid": 2, "HardSwish": 3}
_FREE = {"Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Shape", "Constant"}


def _numel(shape) -> int:
    return int(np.prod(shape)) if shape is not None else 0


def _bytes(view: GraphView, t: str) -> int:
    shp = view.shape(t)
    if shp is None:
        return 0
    et = view.elem_type(t)
    try:
        size = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(et)).itemsize if et else 4
    except Exception:  # noqa: BLE001
        size = 4
    return _numel(shp) * size


def flops(view: GraphView, node: onnx.NodeProto) -> float:
    """Floating-point operations of one node (2 per multiply-add; elementwise ops per element)."""
    out = view.shape(node.output[0]) if node.output and node.output[0] else None
    op = node.op_type
    if op in ("Conv", "ConvTranspose"):
        w = view.shape(node.input[1])
        if out is None or w is None:
            return 0.0
        return 2.0 * _numel(out) * _numel(w[1:])
    if op in ("MatMul", "Gemm"):
        a = view.shape(node.input[0])
        if out is None or a is None:
            return 0.0
        k = a[0] if (op == "Gemm" and int(attrs_of(node).get("transA", 0))) else a[-1]
        return 2.0 * _numel(out) * k
    if op in ("MaxPool", "AveragePool"):
        k = attrs_of(node).get("kernel_shape", (1,))
        return float(_numel(out) * _numel(k))
    if op in ("GlobalAveragePool", "GlobalMaxPool", "ReduceMean", "ReduceSum", "ReduceMax"):
        return float(_bytes(view, node.input[0]) / 4)
    if op in _FREE:
        return 0.0
    return float(_numel(out) * _ELEM_FLOPS.get(op, 1))


def node_costs(model: onnx.ModelProto | GraphView, profile: DeviceProfile | str = "cpu") -> list[dict[str, Any]]:
    """Per-node rows ``{node, op, flops, bytes, ms}`` under the roofline of ``profile``."""
    prof = PROFILES[profile] if isinstance(profile, str) else profile
    view = GraphView.of(model)
    rows = []
    for n in view.nodes:
        if n.op_type == "Constant":
            continue
        f = flops(view, n)
        b = 0 if n.op_type in _FREE else sum(_bytes(view, t) for t in list(n.input) + list(n.output) if t)
        ms = max(f / (prof.peak_gflops * 1e9), b / (prof.bandwidth_gbs * 1e9)) * 1e3 + prof.overhead_us * 1e-3
        rows.append({"node": n.name, "op": n.op_type, "flops": f, "bytes": b, "ms": ms})
    return rows


class AnalyticCost:
    """``cost(model) -> ms`` from the roofline of :func:`node_costs` (callers cache by graph hash)."""

    #: the roofline needs shapes only: search may pass a candidate's weight-free ``structure``
    accepts_structure = True

    def __init__(self, profile: DeviceProfile | str = "cpu"):
        self.profile = PROFILES[profile] if isinstance(profile, str) else profile

    def __call__(self, model: onnx.ModelProto) -> float:
        return float(sum(r["ms"] for r in node_costs(model, self.profile)))

    def __repr__(self) -> str:
        p = self.profile
        return f"AnalyticCost({p.name}: {p.peak_gflops:g} GFLOP/s, {p.bandwidth_gbs:g} GB/s, {p.overhead_us:g} µs/node)"


class MeasuredCost:
    """``cost(model) -> ms``: median ORT latency (``level``, ``intra_threads``), cached by graph hash."""

    def __init__(self, *, level: str = "all", intra_threads: int = 1, warmup: int = 3, repeats: int = 10,
                 device: str = "cpu"):
        self.kwargs = dict(level=level, intra_threads=intra_threads, warmup=warmup, repeats=repeats, device=device)
        self._cache: dict[str, float] = {}

    def __call__(self, model: onnx.ModelProto) -> float:
        from xflow.rewrites.candidates import graph_hash
        from xflow.runtime import measure_latency

        h = graph_hash(model)
        if h not in self._cache:
            self._cache[h] = float(measure_latency(model, **self.kwargs).median_ms)
        return self._cache[h]

    def __repr__(self) -> str:
        return f"MeasuredCost({self.kwargs})"


def _micro_models() -> dict[str, tuple[onnx.ModelProto, float, float, int]]:
    """Micro-benchmarks: name -> (model, flops, bytes, nodes)."""
    from onnx import TensorProto, helper, numpy_helper

    def mk(nodes, inputs, outputs, inits=()):
        g = helper.make_graph(nodes, "micro", inputs, outputs, initializer=list(inits))
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        return m

    f = TensorProto.FLOAT
    n = 512
    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((n, n)).astype(np.float32), "w")
    mm = mk([helper.make_node("MatMul", ["x", "w"], ["y"])], [helper.make_tensor_value_info("x", f, [n, n])],
            [helper.make_tensor_value_info("y", f, [n, n])], [w])
    e = 1 << 22
    add = mk([helper.make_node("Add", ["x", "x"], ["y"])], [helper.make_tensor_value_info("x", f, [e])],
             [helper.make_tensor_value_info("y", f, [e])])
    k = 50
    relus = [helper.make_node("Relu", [f"t{i}"], [f"t{i + 1}"]) for i in range(k)]
    chain = mk(relus, [helper.make_tensor_value_info("t0", f, [8])], [helper.make_tensor_value_info(f"t{k}", f, [8])])
    return {"matmul": (mm, 2.0 * n ** 3, 12.0 * n * n, 1), "add": (add, float(e), 8.0 * e, 1),
            "chain": (chain, 0.0, 0.0, k)}


def calibrate(device: str = "cpu", *, intra_threads: int = 1, repeats: int = 10, cache: bool = True) -> DeviceProfile:
    """Fit a :class:`DeviceProfile` with ORT micro-benchmarks (cached in ``cache_dir('rewrites')``)."""
    from xflow.paths import cache_dir
    from xflow.runtime import measure_latency

    from xflow.safeio import discard_corrupt, read_checked_json, write_checked_json

    path = cache_dir("rewrites") / f"profile_{device}_{intra_threads}t-v2.json"  # v2: content-checked
    stored = read_checked_json(path) if cache else None  # corrupt: reported, removed, re-measured
    if stored is not None:
        try:
            return DeviceProfile(**stored)
        except TypeError:
            discard_corrupt(path, "not a device profile")
    t = {}
    for name, (m, _, _, _) in _micro_models().items():
        t[name] = measure_latency(m, level="all", intra_threads=intra_threads, warmup=2, repeats=repeats,
                                  device=device).median_ms * 1e-3
    micro = _micro_models()
    overhead = max(t["chain"] / micro["chain"][3], 1e-7)
    peak = micro["matmul"][1] / max(t["matmul"] - overhead, 1e-7)
    bw = micro["add"][2] / max(t["add"] - overhead, 1e-7)
    prof = DeviceProfile(f"{device}-calibrated", peak / 1e9, bw / 1e9, overhead * 1e6)
    if cache:
        write_checked_json(path, prof.as_dict())
    log.info("calibrated %s", prof)
    return prof
