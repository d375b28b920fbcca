r"""Calibrate a device profile: five ONNX Runtime micro-benchmarks, timed in one interleaved run.

=============  =======================================================  ==============================
benchmark      graph                                                    fits
=============  =======================================================  ==============================
``matmul``     one 384³ GEMM (``ORT_ENABLE_ALL``)                        :math:`P = 2\cdot 384^3 / t`
``add``        one 2M-element Add (optimizations off)                   :math:`W = 3 \cdot 4\,\text{B} \cdot 2^{21} / t`
``overhead``   a chain of 64 tiny ``Neg`` (optimizations off)           :math:`o = t / 64`
``separate``   two sibling 3×3 convs, each followed by a 1×1 conv        \
``merged``     the same with the siblings merged into one conv + Split  :math:`\rho`
=============  =======================================================  ==============================

All five run in one :func:`xflow.runtime.latency.measure_models` call (interleaved shuffled
rounds, A/A control on ``separate``; thread CPU time decides at one thread). :math:`\rho`, the
Split-of-Conv reorder cost per byte, is what the merged graph costs beyond what the plain
roofline predicts, per byte the Split cuts — taken only when the merged graph measures
*significantly* slower than the separate one (verdict ``slower``), else 0.

``xflow costs calibrate`` runs :func:`calibrate` and writes the profile file
(:func:`xflow.costs.profiles.calibrated_path`); the ``calibrated`` cost model reads it (and
calibrates first when it is missing or invalid).
"""
from __future__ import annotations

import datetime as _dt
import logging
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from xflow.costs.profiles import DeviceProfile, InvalidProfile, calibrated_path, read_profile, write_profile
from xflow.costs.roofline import Roofline
from xflow.runtime.device import describe_device
from xflow.runtime.latency import measure_models

__all__ = ["calibrate", "micro_models", "fit_profile"]

log = logging.getLogger(__name__)

_LEVELS = {"matmul": "all", "add": "disable", "overhead": "disable", "separate": "all", "merged": "all"}


def _model(nodes, name, inputs, outputs, inits=()) -> onnx.ModelProto:
    m = helper.make_model(helper.make_graph(nodes, name, inputs, outputs, list(inits)),
                          opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def micro_models() -> dict[str, tuple[onnx.ModelProto, float, float]]:
    """The micro-benchmarks: ``{name: (model, flops, bytes)}`` (for ``merged``, bytes = what the
    Split cuts; ``overhead``'s "bytes" field is the number of ops)."""
    f = TensorProto.FLOAT
    rng = np.random.default_rng(0)
    n = 384
    w = onnx.numpy_helper.from_array(rng.standard_normal((n, n)).astype(np.float32), "W")
    mm = _model([helper.make_node("MatMul", ["X", "W"], ["Y"])], "calib_mm",
                [helper.make_tensor_value_info("X", f, [n, n])], [helper.make_tensor_value_info("Y", f, [n, n])], [w])
    e = 1 << 21
    add = _model([helper.make_node("Add", ["A", "B"], ["C"])], "calib_bw",
                 [helper.make_tensor_value_info("A", f, [e]), helper.make_tensor_value_info("B", f, [e])],
                 [helper.make_tensor_value_info("C", f, [e])])
    k = 64
    chain = _model([helper.make_node("Neg", [f"t{i}"], [f"t{i + 1}"]) for i in range(k)], "calib_overhead",
                   [helper.make_tensor_value_info("t0", f, [4])], [helper.make_tensor_value_info(f"t{k}", f, [4])])
    return {"matmul": (mm, 2.0 * n ** 3, 3.0 * n * n * 4), "add": (add, float(e), 3.0 * e * 4),
            "overhead": (chain, 0.0, float(k)), **_merge_models()}


def _merge_models(c: int = 64, size: int = 35) -> dict[str, tuple[onnx.ModelProto, float, float]]:
    """Two sibling 3×3 convs (each followed by a 1×1 conv) vs the same merged into one conv + Split."""
    rng = np.random.default_rng(1)

    def w(name, shape):
        return onnx.numpy_helper.from_array((rng.standard_normal(shape) * 0.1).astype(np.float32), name)

    f = TensorProto.FLOAT
    x = helper.make_tensor_value_info("x", f, [1, c, size, size])
    outs = [helper.make_tensor_value_info(f"y{i}", f, [1, c, size, size]) for i in range(2)]
    heads = [w(f"h{i}", (c, c, 1, 1)) for i in range(2)]
    conv = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    sep = [helper.make_node("Conv", ["x", f"w{i}"], [f"a{i}"], **conv) for i in range(2)]
    sep += [helper.make_node("Conv", [f"a{i}", f"h{i}"], [f"y{i}"]) for i in range(2)]
    separate = _model(sep, "calib_separate", [x], outs, [w("w0", (c, c, 3, 3)), w("w1", (c, c, 3, 3)), *heads])
    split = onnx.numpy_helper.from_array(np.array([c, c], np.int64), "split")
    mer = [helper.make_node("Conv", ["x", "wm"], ["m"], **conv),
           helper.make_node("Split", ["m", "split"], ["a0", "a1"], axis=1)]
    mer += [helper.make_node("Conv", [f"a{i}", f"h{i}"], [f"y{i}"]) for i in range(2)]
    merged = _model(mer, "calib_merged", [x], outs, [w("wm", (2 * c, c, 3, 3)), split, *heads])
    return {"separate": (separate, 0.0, 0.0), "merged": (merged, 0.0, float(2 * c * size * size * 4))}


def _time_micro(models: dict[str, tuple[onnx.ModelProto, float, float]], device: str, threads: int,
                rounds: int) -> tuple[dict[str, float], bool, dict[str, Any]]:
    """Seconds per run of each micro-benchmark (medians on the deciding clock of one interleaved
    run), whether ``merged`` is significantly slower than ``separate``, and the run's record."""

    variants = {k: (m, {"level": _LEVELS[k], "intra_threads": threads, "device": device})
                for k, (m, _, _) in models.items()}
    m = measure_models(variants, baseline="separate", warmup=3, rounds=rounds)
    cmp = m.compare("merged", "separate")
    times = {k: m.median_ms(k) / 1e3 for k in models}
    return times, cmp.verdict == "slower", {"conditions": m.conditions(), "merged_vs_separate": cmp.as_dict(),
                                            "warnings": list(m.warnings)}


def fit_profile(times: dict[str, float], merged_slower: bool, *, name: str, device: str, threads: int,
                models: dict[str, tuple[onnx.ModelProto, float, float]] | None = None,
                provenance: dict[str, Any] | None = None) -> DeviceProfile:
    """The profile the micro-benchmark ``times`` (seconds) imply (see the module docstring)."""
    models = models or micro_models()
    base = DeviceProfile(
        name=name, device=device, threads=threads,
        flops_per_s=models["matmul"][1] / max(times["matmul"], 1e-12),
        bytes_per_s=models["add"][2] / max(times["add"], 1e-12),
        op_overhead_s=max(times["overhead"] / models["overhead"][2], 1e-9),
        provenance=dict(provenance or {}, times_s=dict(times)),
    )
    rho = 0.0
    if merged_slower:
        plain = Roofline(base)
        predicted = (plain.cost(models["merged"][0]) - plain.cost(models["separate"][0])) / 1e3
        rho = max(0.0, ((times["merged"] - times["separate"]) - predicted) / models["merged"][2])
    return replace(base, split_reorder_s_per_byte=rho if math.isfinite(rho) else 0.0)


def calibrate(device: str = "cpu", *, threads: int = 1, rounds: int = 15, path: str | Path | None = None,
              refresh: bool = False) -> DeviceProfile:
    """Measure this machine's profile for ``device`` at ``threads`` threads and store it.

    The profile file (``path``, default :func:`~xflow.costs.profiles.calibrated_path`) is reused
    when it exists and is valid, unless ``refresh``; an invalid or stale-version file is
    re-measured and overwritten.
    """

    path = Path(path) if path is not None else calibrated_path(device, threads)
    if path.exists() and not refresh:
        try:
            return read_profile(path)
        except InvalidProfile as exc:
            log.warning("%s; re-calibrating", exc)
    models = micro_models()
    times, merged_slower, record = _time_micro(models, device, threads, rounds)
    label = describe_device(device).label()
    prof = fit_profile(times, merged_slower, name=f"{label}, {threads} thread(s)", device=device, threads=threads,
                       models=models, provenance={"measured": _dt.datetime.now().isoformat(timespec="seconds"),
                                                  "device_label": label, "rounds": rounds, **record})
    write_profile(prof, path)
    log.info("calibrated %r -> %s", prof, path)
    return prof
