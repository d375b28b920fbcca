"""Cost models that turn a graph into a predicted or measured latency (milliseconds).

Two families, one interface (``cost(model, key=None) -> float`` in ms, cached by graph hash):

* :class:`AnalyticCost` — a roofline over the operators. For operator ``v`` with ``F_v`` floating
  point operations and ``B_v`` bytes moved (inputs, weights and outputs),

  .. math::

      t(G) = \\sum_{v \\in G} \\max\\Big(\\frac{F_v}{P_\\text{flops}}, \\frac{B_v}{P_\\text{bw}}\\Big)
             + t_\\text{op}

  where the device peaks :math:`P_\\text{flops}`, :math:`P_\\text{bw}` and the per-operator
  launch overhead :math:`t_\\text{op}` are a :class:`DevicePeaks`, either nominal or calibrated
  by :func:`calibrate` (a micro-benchmark run once per device and cached as JSON).
  Shape-only ops (Reshape, Squeeze, Unsqueeze, Flatten, Identity) are free. A Split/Slice of a
  Conv output also pays :math:`\rho \cdot B_\text{in}`, the layout-reorder cost per byte
  :math:`\rho` that :func:`calibrate` fits from a merged-vs-separate sibling-conv micro-benchmark
  (on the CPU of ``MEASUREMENTS.md`` merges measure as losses because of these reorders; on a
  device without them :math:`\rho` comes out 0).
* :class:`MeasuredCost` — the median end-to-end ONNX Runtime latency, cached by graph hash
  (in memory and on disk under ``cache_dir('envs', 'latency')``). Noisy but the truth: on the
  2-core CPU of ``MEASUREMENTS.md`` sibling-conv merges that the roofline calls wins are losses.

:func:`make_cost_model` resolves the names ``"analytic"`` (calibrated), ``"nominal"`` and
``"measured"``.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import onnx
from onnx import TensorProto, helper

from xflow import paths
from xflow.errors import UnknownName
from xflow.envs.features import tensor_shapes

__all__ = [
    "CostModel",
    "DevicePeaks",
    "AnalyticCost",
    "MeasuredCost",
    "FunctionCost",
    "calibrate",
    "agreement",
    "op_flops_bytes",
    "graph_hash",
    "make_cost_model",
    "COST_MODELS",
]

log = logging.getLogger(__name__)

_DTYPE_BYTES = {TensorProto.FLOAT: 4, TensorProto.FLOAT16: 2, TensorProto.DOUBLE: 8,
                TensorProto.INT64: 8, TensorProto.INT32: 4, TensorProto.INT8: 1,
                TensorProto.UINT8: 1, TensorProto.BOOL: 1, TensorProto.BFLOAT16: 2}
_UNARY = {"Relu", "Clip", "Sigmoid", "Tanh", "LeakyRelu", "HardSwish", "HardSigmoid", "Gelu",
          "Elu", "Selu", "Softplus"}
_FREE_OPS = {"Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Shape", "Constant",
             "Dropout"}


def graph_hash(model: onnx.ModelProto) -> str:
    """Stable content hash of ``model`` (:func:`xflow.graphs.model_hash`)."""
    from xflow.graphs import model_hash

    return model_hash(model)


@runtime_checkable
class CostModel(Protocol):
    """Anything with ``name`` and ``cost(model, key=None) -> milliseconds``."""

    name: str

    def cost(self, model: onnx.ModelProto, key: str | None = None) -> float:
        """Cost of ``model`` in ms; ``key`` is its graph hash when the caller knows it."""


@dataclass(frozen=True)
class DevicePeaks:
    """Roofline parameters of one device: FLOP/s, bytes/s and per-operator overhead (s)."""

    flops_per_s: float
    bytes_per_s: float
    op_overhead_s: float
    label: str = "nominal"
    #: extra seconds per byte of a Split (or Slice) that cuts a Conv's output: layout reorders
    #: (ORT's blocked NCHWc convs on CPU) that a merged conv + Split costs; fitted by calibrate().
    split_reorder_s_per_byte: float = 0.0

    @classmethod
    def nominal(cls) -> "DevicePeaks":
        """Round numbers for one modern CPU core (50 GFLOP/s, 20 GB/s, 2 µs per op)."""
        return cls(flops_per_s=50e9, bytes_per_s=20e9, op_overhead_s=2e-6, label="nominal")


def _numel(shape) -> float:
    if shape is None or any(d is None or d < 0 for d in shape):
        return 0.0
    return float(np.prod(shape, dtype=np.float64)) if len(shape) else 1.0


def _attr_ints(node: onnx.NodeProto, name: str) -> list[int]:
    for a in node.attribute:
        if a.name == name:
            return list(a.ints) if a.ints else [a.i]
    return []


def op_flops_bytes(node: onnx.NodeProto, shapes: dict) -> tuple[float, float]:
    """``(flops, bytes)`` of one operator given ``{tensor: (shape, elem_type)}``.

    Conv: ``2·numel(Y)·(C_in/g)·prod(kernel)``; MatMul: ``2·numel(Y)·K``; Gemm: ``2·M·N·K``;
    pools: ``numel(Y)·prod(kernel)``; everything else: ``numel(Y)`` (one op per output element).
    Bytes are the sizes of all inputs and outputs; shape-only ops cost nothing.
    """
    if node.op_type in _FREE_OPS:
        return 0.0, 0.0

    def size(t: str) -> float:
        shape, et = shapes.get(t, (None, 0))
        return _numel(shape) * _DTYPE_BYTES.get(et, 4)

    out_shape = shapes.get(node.output[0], (None, 0))[0] if node.output else None
    y = _numel(out_shape)
    op = node.op_type
    flops = y
    if op in ("Conv", "ConvTranspose") and len(node.input) > 1:
        w = shapes.get(node.input[1], (None, 0))[0]
        if w is not None and len(w) > 2 and all(d is not None for d in w):
            if op == "Conv":
                flops = 2.0 * y * float(np.prod(w[1:]))
            else:
                x = shapes.get(node.input[0], (None, 0))[0]
                flops = 2.0 * _numel(x) * float(np.prod(w[1:]))
    elif op in ("MatMul", "Gemm") and node.input:
        a = shapes.get(node.input[0], (None, 0))[0]
        if a:
            trans_a = _attr_ints(node, "transA")
            k = a[-2] if (op == "Gemm" and trans_a and trans_a[0]) else a[-1]
            flops = 2.0 * y * float(k or 0)
    elif op in ("MaxPool", "AveragePool"):
        flops = y * float(np.prod(_attr_ints(node, "kernel_shape") or [1]))
    elif op in ("GlobalAveragePool", "GlobalMaxPool", "ReduceMean", "ReduceSum", "Softmax",
                "LayerNormalization", "BatchNormalization"):
        flops = sum(_numel(shapes.get(i, (None, 0))[0]) for i in node.input[:1]) * 2.0
    bytes_ = sum(size(t) for t in node.input if t) + sum(size(t) for t in node.output if t)
    if op == "Transpose" or op in ("Concat", "Split", "Slice"):
        flops = 0.0
    return flops, bytes_


class AnalyticCost:
    """Roofline cost of a graph (ms) with the given :class:`DevicePeaks`; cached by hash."""

    def __init__(self, peaks: DevicePeaks | None = None, *, name: str = "analytic") -> None:
        self.peaks = peaks or DevicePeaks.nominal()
        self.name = name
        self._cache: dict[str, float] = {}

    def __repr__(self) -> str:
        p = self.peaks
        return (f"AnalyticCost({p.label}: {p.flops_per_s / 1e9:.1f} GFLOP/s, "
                f"{p.bytes_per_s / 1e9:.1f} GB/s, {p.op_overhead_s * 1e6:.1f} us/op, "
                f"split reorder {p.split_reorder_s_per_byte * 1e12:.1f} ps/B)")

    def breakdown(self, model: onnx.ModelProto) -> list[dict]:
        """Per-operator ``{node, op, flops, bytes, ms}`` rows (for notebooks and debugging)."""
        shapes = tensor_shapes(model)
        producer = {o: n for n in model.graph.node for o in n.output}

        def from_conv(t: str) -> bool:  # Conv, possibly followed by elementwise activations
            for _ in range(4):
                n = producer.get(t)
                if n is None:
                    return False
                if n.op_type == "Conv":
                    return True
                if n.op_type not in _UNARY or not n.input:
                    return False
                t = n.input[0]
            return False

        rho = self.peaks.split_reorder_s_per_byte
        rows = []
        for i, node in enumerate(model.graph.node):
            flops, bytes_ = op_flops_bytes(node, shapes)
            if node.op_type in _FREE_OPS:
                ms = 0.0
            else:
                ms = 1e3 * (max(flops / self.peaks.flops_per_s, bytes_ / self.peaks.bytes_per_s)
                            + self.peaks.op_overhead_s)
                if rho and node.op_type in ("Split", "Slice") and node.input and \
                        from_conv(node.input[0]):
                    shape, et = shapes.get(node.input[0], (None, 0))
                    ms += 1e3 * rho * _numel(shape) * _DTYPE_BYTES.get(et, 4)
            rows.append({"node": node.name or f"#{i}", "op": node.op_type, "flops": flops,
                         "bytes": bytes_, "ms": ms})
        return rows

    def cost(self, model: onnx.ModelProto, key: str | None = None) -> float:
        """Predicted latency of ``model`` in milliseconds (sum of the per-operator roofline)."""
        if key is not None and key in self._cache:
            return self._cache[key]
        total = float(sum(r["ms"] for r in self.breakdown(model)))
        if key is not None:
            self._cache[key] = total
        return total

    def __call__(self, model: onnx.ModelProto) -> float:
        """``cost(model)`` as a plain function (the search baselines' ``CostFn``)."""
        return self.cost(model, graph_hash(model))

    def __getstate__(self) -> dict:
        return {"peaks": self.peaks, "name": self.name, "_cache": {}}


class MeasuredCost:
    """Median ONNX Runtime latency (ms) of a graph, cached by graph hash (memory and disk).

    Args:
        level: ORT graph optimization level (``"all"``: the industrial baseline the rewrite must beat).
        threads: intra-op threads.
        warmup, repeats: runs discarded / timed.
        persist: also cache on disk (keyed by device, level, threads and graph hash).
    """

    def __init__(self, *, level: str = "all", threads: int = 1, warmup: int = 3,
                 repeats: int = 15, device: str = "cpu", persist: bool = True,
                 name: str = "measured") -> None:
        self.level, self.threads, self.warmup, self.repeats = level, threads, warmup, repeats
        self.device, self.persist, self.name = device, persist, name
        self._cache: dict[str, float] = {}

    def __repr__(self) -> str:
        return (f"MeasuredCost(level={self.level!r}, threads={self.threads}, "
                f"repeats={self.repeats}, device={self.device!r})")

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_cache"] = dict(self._cache)
        return state

    def __call__(self, model: onnx.ModelProto) -> float:
        """``cost(model)`` as a plain function (the search baselines' ``CostFn``)."""
        return self.cost(model)

    def _disk_path(self):
        from xflow.runtime.device import describe_device

        label = describe_device(self.device).label()
        slug = "".join(c if c.isalnum() else "_" for c in label)[:80]
        return paths.cache_dir("envs", "latency") / f"{slug}-{self.level}-t{self.threads}-v2.json"  # v2: checked

    def _load_disk(self) -> dict[str, float]:
        from xflow.safeio import read_checked_json

        data = read_checked_json(self._disk_path())  # a corrupt file is reported and removed
        return data if isinstance(data, dict) else {}

    def cost(self, model: onnx.ModelProto, key: str | None = None) -> float:
        """Measured median latency of ``model`` in ms (first call measures, later ones look up)."""
        key = key or graph_hash(model)
        if key in self._cache:
            return self._cache[key]
        if self.persist:
            disk = self._load_disk()
            if key in disk:
                self._cache[key] = float(disk[key])
                return self._cache[key]
        ms = _measure(model, level=self.level, threads=self.threads, warmup=self.warmup,
                      repeats=self.repeats, device=self.device)
        self._cache[key] = ms
        if self.persist:
            from xflow.safeio import file_lock, write_checked_json

            path = self._disk_path()
            try:
                with file_lock(path):  # processes share this file: locked read-merge-write, atomic
                    disk = self._load_disk()
                    disk[key] = ms
                    write_checked_json(path, disk, sort_keys=True)
            except OSError as exc:  # pragma: no cover - read-only cache is not fatal
                log.warning("cannot write latency cache: %s", exc)
        return ms


class FunctionCost:
    """Adapt any ``fn(model) -> ms`` (e.g. :class:`xflow.rewrites.cost.AnalyticCost`) to the
    :class:`CostModel` interface, cached by graph hash."""

    def __init__(self, fn, name: str | None = None) -> None:
        self.fn = fn
        self.name = name or getattr(fn, "name", None) or type(fn).__name__
        self._cache: dict[str, float] = {}

    def __repr__(self) -> str:
        return f"FunctionCost({self.fn!r})"

    def cost(self, model: onnx.ModelProto, key: str | None = None) -> float:
        """``fn(model)``, looked up by ``key`` (graph hash) when known."""
        key = key or graph_hash(model)
        if key not in self._cache:
            self._cache[key] = float(self.fn(model))
        return self._cache[key]

    def __call__(self, model: onnx.ModelProto) -> float:
        return self.cost(model)


def _measure(model: onnx.ModelProto, *, level: str, threads: int, warmup: int, repeats: int,
             device: str = "cpu") -> float:
    """Median latency (ms) via :func:`xflow.runtime.measure_latency`, or plain ORT if absent."""
    try:
        from xflow.runtime import measure_latency  # type: ignore[attr-defined]
    except ImportError:
        measure_latency = None
    if measure_latency is not None:
        stats = measure_latency(model, level=level, intra_threads=threads, warmup=warmup,
                                repeats=repeats, device=device)
        return float(stats.median_ms)
    import onnxruntime as ort

    levels = {"all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
              "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL}
    so = ort.SessionOptions()
    so.graph_optimization_level = levels[level]
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    feeds = _random_feeds(sess)
    for _ in range(warmup):
        sess.run(None, feeds)
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        sess.run(None, feeds)
        samples.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(samples))


def _random_feeds(sess) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    feeds = {}
    for i in sess.get_inputs():
        shape = [d if isinstance(d, int) else 1 for d in i.shape]
        if "int64" in i.type:
            feeds[i.name] = rng.integers(0, 2, size=shape).astype(np.int64)
        else:
            feeds[i.name] = rng.standard_normal(shape).astype(np.float32)
    return feeds


def _calib_models() -> dict[str, tuple[onnx.ModelProto, float, float]]:
    """Micro-benchmark graphs: ``{name: (model, flops, bytes)}``."""
    n = 384
    rng = np.random.default_rng(0)
    w = helper.make_tensor("W", TensorProto.FLOAT, [n, n], rng.standard_normal((n, n)).astype(
        np.float32).ravel().tolist())
    mm = helper.make_model(helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["Y"])], "calib_mm",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [n, n])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [n, n])], [w]),
        opset_imports=[helper.make_opsetid("", 17)])
    m = 1 << 21
    add = helper.make_model(helper.make_graph(
        [helper.make_node("Add", ["A", "B"], ["C"])], "calib_bw",
        [helper.make_tensor_value_info("A", TensorProto.FLOAT, [m]),
         helper.make_tensor_value_info("B", TensorProto.FLOAT, [m])],
        [helper.make_tensor_value_info("C", TensorProto.FLOAT, [m])]),
        opset_imports=[helper.make_opsetid("", 17)])
    k = 64
    chain = [helper.make_node("Neg", [f"t{i}"], [f"t{i + 1}"]) for i in range(k)]
    tiny = helper.make_model(helper.make_graph(
        chain, "calib_overhead", [helper.make_tensor_value_info("t0", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info(f"t{k}", TensorProto.FLOAT, [4])]),
        opset_imports=[helper.make_opsetid("", 17)])
    return {"matmul": (mm, 2.0 * n ** 3, 3.0 * n * n * 4), "add": (add, float(m), 3.0 * m * 4),
            "overhead": (tiny, 0.0, float(k)), **_merge_models()}


def _merge_models(c: int = 64, size: int = 35) -> dict[str, tuple[onnx.ModelProto, float, float]]:
    """Two sibling 3×3 convs (each followed by a 1×1 conv) vs the same merged into one conv + Split."""
    rng = np.random.default_rng(1)

    def w(name, shape):
        return helper.make_tensor(name, TensorProto.FLOAT, list(shape),
                                  (rng.standard_normal(shape) * 0.1).astype(np.float32).ravel().tolist())

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, size, size])
    outs = [helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, [1, c, size, size]) for i in range(2)]
    heads = [w(f"h{i}", (c, c, 1, 1)) for i in range(2)]
    conv = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    sep_nodes = [helper.make_node("Conv", ["x", f"w{i}"], [f"a{i}"], **conv) for i in range(2)]
    sep_nodes += [helper.make_node("Conv", [f"a{i}", f"h{i}"], [f"y{i}"]) for i in range(2)]
    separate = helper.make_model(helper.make_graph(
        sep_nodes, "calib_separate", [x], outs, [w("w0", (c, c, 3, 3)), w("w1", (c, c, 3, 3)), *heads]),
        opset_imports=[helper.make_opsetid("", 17)])
    split = helper.make_tensor("split", TensorProto.INT64, [2], [c, c])
    m_nodes = [helper.make_node("Conv", ["x", "wm"], ["m"], **conv),
               helper.make_node("Split", ["m", "split"], ["a0", "a1"], axis=1)]
    m_nodes += [helper.make_node("Conv", [f"a{i}", f"h{i}"], [f"y{i}"]) for i in range(2)]
    merged = helper.make_model(helper.make_graph(
        m_nodes, "calib_merged", [x], outs, [w("wm", (2 * c, c, 3, 3)), split, *heads]),
        opset_imports=[helper.make_opsetid("", 17)])
    split_bytes = float(2 * c * size * size * 4)
    return {"separate": (separate, 0.0, 0.0), "merged": (merged, 0.0, split_bytes)}


def calibrate(device: str = "cpu", *, threads: int = 1, refresh: bool = False) -> DevicePeaks:
    """Measure this device's roofline peaks with three ONNX Runtime micro-benchmarks, cached.

    ``matmul`` (384³ GEMM) gives FLOP/s, ``add`` (2M-element add) gives bytes/s, a chain of 64
    tiny ``Neg`` ops gives the per-operator overhead, and two sibling 3×3 convs measured
    separate vs merged (+ Split) give the Split-of-Conv reorder cost per byte (whatever the
    plain roofline does not explain; clipped at 0). The result is stored as JSON under
    ``cache_dir('envs', 'calibration')`` keyed by the device label and thread count, so later
    calls (and other processes) get identical numbers; ``refresh=True`` re-measures.
    """
    from xflow.runtime.device import describe_device

    label = describe_device(device).label()
    slug = "".join(c if c.isalnum() else "_" for c in label)[:80]
    path = paths.cache_dir("envs", "calibration") / f"{slug}-t{threads}-v3.json"  # v3: content-checked
    from xflow.safeio import discard_corrupt, read_checked_json, write_checked_json

    stored = None if refresh else read_checked_json(path)  # corrupt: reported, removed, re-measured
    if stored is not None:
        try:
            return DevicePeaks(**stored)
        except TypeError:
            discard_corrupt(path, "not a calibration entry")
    models = _calib_models()
    t_mm = _measure(models["matmul"][0], level="all", threads=threads, warmup=3, repeats=10,
                    device=device) / 1e3
    t_add = _measure(models["add"][0], level="disable", threads=threads, warmup=3, repeats=10,
                     device=device) / 1e3
    t_ovh = _measure(models["overhead"][0], level="disable", threads=threads, warmup=3,
                     repeats=20, device=device) / 1e3
    peaks = DevicePeaks(
        flops_per_s=models["matmul"][1] / max(t_mm, 1e-9),
        bytes_per_s=models["add"][2] / max(t_add, 1e-9),
        op_overhead_s=max(t_ovh / models["overhead"][2], 1e-8),
        label=f"{label}, {threads} thread(s)",
    )
    if not all(math.isfinite(v) and v > 0 for v in (peaks.flops_per_s, peaks.bytes_per_s)):
        log.warning("calibration gave unusable numbers %s; using nominal peaks", peaks)
        return DevicePeaks.nominal()
    # split_reorder: measured merge penalty beyond what the plain roofline predicts, per byte
    t_sep = t_mrg = 0.0
    for _ in range(3):  # interleaved, median of medians
        t_sep += _measure(models["separate"][0], level="all", threads=threads, warmup=2,
                          repeats=10, device=device) / 3e3
        t_mrg += _measure(models["merged"][0], level="all", threads=threads, warmup=2,
                          repeats=10, device=device) / 3e3
    plain = AnalyticCost(peaks)
    predicted = (plain.cost(models["merged"][0]) - plain.cost(models["separate"][0])) / 1e3
    rho = max(0.0, ((t_mrg - t_sep) - predicted) / models["merged"][2])
    from dataclasses import replace

    peaks = replace(peaks, split_reorder_s_per_byte=rho if math.isfinite(rho) else 0.0)
    try:
        write_checked_json(path, asdict(peaks), sort_keys=True)
    except OSError as exc:  # pragma: no cover
        log.warning("cannot write calibration cache: %s", exc)
    return peaks


def agreement(model: onnx.ModelProto, graphs: list[onnx.ModelProto], predicted: CostModel,
              measured: CostModel) -> dict[str, float]:
    """How well ``predicted`` ranks ``graphs`` (e.g. the rewrite candidates of ``model``) against
    ``measured``: Spearman rank correlation of the speed-ups ``c(model) / c(g)`` and the fraction
    of graphs where both agree on the sign (faster / slower than ``model``).

    Returns ``{"n", "spearman", "sign_agreement", "predicted_wins", "measured_wins"}``.
    """
    from scipy.stats import spearmanr

    p0, m0 = predicted.cost(model), measured.cost(model)
    p = np.array([p0 / predicted.cost(g) for g in graphs])
    m = np.array([m0 / measured.cost(g) for g in graphs])
    rho = float(spearmanr(p, m).statistic) if len(graphs) > 2 else float("nan")
    return {"n": float(len(graphs)), "spearman": rho,
            "sign_agreement": float(np.mean((p > 1) == (m > 1))) if len(graphs) else float("nan"),
            "predicted_wins": float(np.sum(p > 1)), "measured_wins": float(np.sum(m > 1))}


#: Names accepted by :func:`make_cost_model`.
COST_MODELS = ("analytic", "nominal", "measured")


def make_cost_model(spec: "str | CostModel", device: str = "cpu", threads: int = 1) -> CostModel:
    """Resolve a cost-model name (see :data:`COST_MODELS`), pass a :class:`CostModel` through, or
    wrap a plain ``fn(model) -> ms`` callable in a :class:`FunctionCost`."""
    if not isinstance(spec, str):
        if hasattr(spec, "cost") and hasattr(spec, "name"):
            return spec
        if callable(spec):
            return FunctionCost(spec)
        raise UnknownName(f"cost model {spec!r} is neither a name, a CostModel nor a callable")
    if spec == "analytic":
        return AnalyticCost(calibrate(device, threads=threads), name="analytic")
    if spec == "nominal":
        return AnalyticCost(DevicePeaks.nominal(), name="nominal")
    if spec == "measured":
        return MeasuredCost(device=device, threads=threads)
    raise UnknownName(f"unknown cost model {spec!r}; choose one of {list(COST_MODELS)}")
