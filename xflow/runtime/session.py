"""ONNX Runtime session factory and random graph inputs.

One place decides how xflow runs a model: provider (CPU, or CUDA when ORT has it), graph
optimization level (``disable`` | ``basic`` | ``extended`` | ``all``), intra-/inter-op threads and
execution mode. Every latency and equivalence check goes through :func:`make_session`, so two numbers
taken with the same arguments are comparable.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, TypedDict

from xflow.errors import (
    DeviceUnavailable,
    DynamicShapeError,
    EmptyModelFile,
    InvalidModel,
    MalformedModel,
    ModelFileNotFound,
    UnknownName,
)

__all__ = ["LEVELS", "ModelLike", "SessionSettings", "make_session", "model_bytes", "as_model_proto", "random_inputs",
           "available_devices"]

log = logging.getLogger(__name__)

LEVELS = ("disable", "basic", "extended", "all")
"""ORT graph optimization levels, weakest first."""

ModelLike = Any  # onnx.ModelProto | bytes | str | Path | xflow.graphs.Graph (anything with ``.model``)


class SessionSettings(TypedDict, total=False):
    """The :func:`make_session` keywords that decide how a model runs (``level``, ``intra_threads``,
    ``inter_threads``, ``mode``, ``device``); a missing key takes :func:`make_session`'s default.
    Latency helpers take these as ``**settings`` so the settings are listed once."""

    level: str
    intra_threads: int
    inter_threads: int
    mode: str
    device: str


def _ort_level(level: str):
    import onnxruntime as ort

    table = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    try:
        return table[level]
    except KeyError:
        raise UnknownName(f"unknown optimization level {level!r}; use one of {', '.join(LEVELS)}") from None


def model_bytes(model: ModelLike) -> bytes:
    """Serialized ONNX bytes of ``model`` (ModelProto, bytes, path or an object with ``.model``).

    Raises :class:`~xflow.errors.ModelFileNotFound` / :class:`~xflow.errors.EmptyModelFile` for a bad path.
    """
    if hasattr(model, "model") and not isinstance(model, (bytes, str, Path)):
        model = model.model
    if isinstance(model, (bytes, bytearray)):
        data = bytes(model)
    elif isinstance(model, (str, Path)):
        p = Path(model)
        if not p.is_file():
            raise ModelFileNotFound(f"model file not found: {p}")
        data = p.read_bytes()
    elif hasattr(model, "SerializeToString"):
        data = model.SerializeToString()
    else:
        raise InvalidModel(f"expected an ONNX ModelProto, bytes or a path, got {type(model).__name__}")
    if not data:
        raise EmptyModelFile("the model is empty (0 bytes)")
    return data


def as_model_proto(model: ModelLike):
    """``model`` as an ``onnx.ModelProto`` (parsed, not validated)."""
    import onnx

    if hasattr(model, "model") and not isinstance(model, (bytes, str, Path)):
        model = model.model
    if isinstance(model, onnx.ModelProto):
        return model
    data = model_bytes(model)
    try:
        proto = onnx.load_from_string(data)
    except Exception as exc:  # noqa: BLE001 - protobuf raises a zoo of types
        raise MalformedModel(f"not an ONNX model (could not parse {len(data)} bytes): {exc}") from None
    if not proto.graph.node and not proto.graph.output:
        raise MalformedModel("not an ONNX model (parsed to an empty graph)")
    return proto


def available_devices() -> list[str]:
    """Devices ORT can run on here: ``['cpu']`` plus ``'cuda'`` when the CUDA provider is present."""
    import onnxruntime as ort

    devs = ["cpu"]
    if "CUDAExecutionProvider" in ort.get_available_providers():
        devs.append("cuda")
    return devs


def make_session(
    model: ModelLike,
    *,
    level: str = "all",
    intra_threads: int = 1,
    inter_threads: int = 1,
    mode: str = "sequential",
    device: str = "cpu",
    options: dict[str, str] | None = None,
    spinning: bool | None = None,
    profile_prefix: str | None = None,
):
    """An ``onnxruntime.InferenceSession`` for ``model`` with the given settings.

    Spinning: ORT's intra-op pool busy-waits after each run. When several sessions are timed in
    interleaved rounds (how xflow compares variants), the idle pools of the *other* sessions keep
    spinning and steal the cores: on 2 vCPUs, squeezenet1_1 at 2 threads measured 9.2 ms interleaved
    vs 2.9 ms alone with spinning, and 3.9 / 3.9 ms without. So with more than one intra-op thread,
    spinning is off by default (``spinning=None``); pass ``spinning=True`` for a lone session.

    Args:
        model: ``onnx.ModelProto``, serialized bytes, a path, or a graph object with ``.model``.
        level: graph optimization level, one of :data:`LEVELS`.
        intra_threads: intra-op threads (``0`` = ORT default, all cores).
        inter_threads: inter-op threads (used by ``mode='parallel'`` only).
        mode: ``'sequential'`` or ``'parallel'`` execution mode.
        device: ``'cpu'`` or ``'cuda'`` (raises :class:`~xflow.errors.DeviceUnavailable` if ORT has no
            CUDA provider here).
        options: extra session config entries (``SessionOptions.add_session_config_entry``).
        spinning: allow intra-op busy-waiting (``None``: only with 1 intra-op thread, see above).
        profile_prefix: turn ORT's profiler on, writing its JSON trace to files starting with this
            path (``session.end_profiling()`` returns the file; :mod:`xflow.runtime.node_profile`).
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = _ort_level(level)
    opts.intra_op_num_threads = int(intra_threads)
    opts.inter_op_num_threads = int(inter_threads)
    if mode not in ("sequential", "parallel"):
        raise UnknownName(f"unknown execution mode {mode!r}; use 'sequential' or 'parallel'")
    opts.execution_mode = (ort.ExecutionMode.ORT_SEQUENTIAL if mode == "sequential"
                           else ort.ExecutionMode.ORT_PARALLEL)
    opts.log_severity_level = 3
    if spinning is None:
        spinning = int(intra_threads) == 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "1" if spinning else "0")
    for k, v in (options or {}).items():
        opts.add_session_config_entry(k, str(v))
    if profile_prefix is not None:
        opts.enable_profiling = True
        opts.profile_file_prefix = str(profile_prefix)
    if device == "cpu":
        providers = ["CPUExecutionProvider"]
    elif device == "cuda":
        if "cuda" not in available_devices():
            raise DeviceUnavailable(
                "device 'cuda' requested but ONNX Runtime has no CUDAExecutionProvider here "
                "(install onnxruntime-gpu on a machine with an NVIDIA GPU, or use --device cpu)"
            )
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    else:
        raise UnknownName(f"unknown device {device!r}; use 'cpu' or 'cuda'")
    if isinstance(model, (str, Path)):  # let ORT read the file (resolves external data next to it)
        p = Path(model)
        if not p.is_file():
            raise ModelFileNotFound(f"model file not found: {p}")
        if p.stat().st_size == 0:
            raise EmptyModelFile(f"model file {p} is empty (0 bytes)")
        src: Any = str(p)
    else:
        src = model_bytes(model)
    try:
        return ort.InferenceSession(src, opts, providers=providers)
    except Exception as exc:  # noqa: BLE001 - ORT raises its own Fail/InvalidGraph/... types
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "invalid_protobuf" in msg.lower() or "protobuf parsing failed" in msg.lower():
            raise MalformedModel(f"not an ONNX model: ONNX Runtime could not parse it ({msg})") from None
        raise InvalidModel(f"ONNX Runtime rejected the model: {msg}") from None


def _np_dtype(elem_type: int):
    import numpy as np
    import onnx

    try:
        return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type))
    except Exception:  # noqa: BLE001
        raise InvalidModel(f"graph input has unsupported element type {elem_type}") from None


def _input_specs(model: ModelLike) -> list[tuple[str, list[Any], Any]]:
    """``(name, dims, numpy dtype)`` of each real graph input; dims hold ints or symbolic names."""
    import numpy as np

    if hasattr(model, "get_inputs") and hasattr(model, "run"):  # an InferenceSession
        specs = []
        for i in model.get_inputs():
            t = i.type.removeprefix("tensor(").removesuffix(")")
            t = {"float": "float32", "double": "float64", "float16": "float16"}.get(t, t)
            try:
                dtype = np.dtype(t)
            except TypeError:
                raise InvalidModel(f"graph input {i.name!r} has unsupported type {i.type}") from None
            specs.append((i.name, list(i.shape), dtype))
        return specs
    proto = as_model_proto(model)
    inits = {t.name for t in proto.graph.initializer}
    specs = []
    for vi in proto.graph.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else (d.dim_param or "?")
                for d in tt.shape.dim]
        specs.append((vi.name, dims, _np_dtype(tt.elem_type)))
    return specs


def random_inputs(model: ModelLike, *, seed: int = 0) -> dict[str, Any]:
    """Seeded random arrays for every graph input (initializers excluded), from declared types/shapes.

    ``model`` may also be an ``onnxruntime.InferenceSession`` (no re-parsing of the model).
    Floats are standard normal, integers uniform in ``[0, 2)`` (safe as indices), bools uniform.
    Raises :class:`~xflow.errors.DynamicShapeError` naming an input with a symbolic dimension.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {}
    for name, dims, dtype in _input_specs(model):
        shape = []
        for i, d in enumerate(dims):
            if not isinstance(d, int) or d <= 0:
                raise DynamicShapeError(
                    f"input {name!r} has a dynamic dimension {i} ({d!r}); fix its shape, e.g. with "
                    f"onnx.tools.update_model_dims or by re-exporting with a static batch size"
                )
            shape.append(d)
        if dtype.kind == "f":
            arr = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind in "iu":
            arr = rng.integers(0, 2, size=shape).astype(dtype)
        elif dtype.kind == "b":
            arr = rng.integers(0, 2, size=shape).astype(bool)
        else:
            raise InvalidModel(f"cannot make random values for input {name!r} of dtype {dtype}")
        out[name] = arr
    return out
