"""Execution backends behind one session interface: ONNX Runtime, and ONNX→PyTorch on CPU or GPU.

=============  ==========================================================================
``ort``        ONNX Runtime, CPU execution provider (:func:`xflow.runtime.session.make_session`)
``torch``      the model lowered to a generated PyTorch module (:mod:`xflow.runtime.backend_lower`),
               eager, on the CPU: fused Conv+BN+activation, channels-last, oneDNN convolutions
``torch-cuda`` the same lowering on a CUDA GPU (``F.conv2d``/cuDNN; no oneDNN calls); raises
               :class:`~xflow.errors.DeviceUnavailable` where torch sees no GPU
=============  ==========================================================================

Every session has ``run(feeds) -> list[np.ndarray]`` (outputs in graph order), ``inputs`` /
``outputs`` (:class:`TensorSpec`: name, static shape, dtype) and ``variant(feeds)`` — a
:class:`~xflow.runtime.measure.Variant` that times the session on fixed inputs with the
measurement core (thread count and device synchronisation declared, so the core picks the right
clock). :func:`compare_outputs` in :mod:`xflow.runtime.equivalence` takes ``backend=`` to check a
backend's outputs against ONNX Runtime.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from xflow.errors import DeviceUnavailable, UnknownName
from xflow.graphs import load_model
from xflow.runtime.backend_codegen import load_module, program_weights, serial_module
from xflow.runtime.backend_graph import GraphView, load_view
from xflow.runtime.backend_lower import LowerOptions, lower as lower_fn
from xflow.runtime.measure import Variant
from xflow.runtime.session import make_session

__all__ = ["BACKENDS", "TensorSpec", "BackendSession", "OrtBackendSession", "TorchBackendSession",
           "make_backend_session", "torch_cuda_available"]

log = logging.getLogger(__name__)

BACKENDS = ("ort", "torch", "torch-cuda")


@dataclass(frozen=True)
class TensorSpec:
    """A graph input or output: name, static shape (``None`` if unknown) and numpy dtype name."""

    name: str
    shape: tuple[int, ...] | None
    dtype: str | None


class BackendSession(Protocol):
    """What every backend session offers."""

    backend: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Outputs (graph order) for the given input arrays."""
        ...

    def variant(self, feeds: Mapping[str, np.ndarray]) -> Variant:
        """A measurement-core variant timing one run on ``feeds`` (inputs prepared once)."""
        ...

    def describe(self) -> dict[str, Any]:
        """Settings to record with a number."""
        ...


def torch_cuda_available() -> bool:
    """Whether torch can use a CUDA GPU here."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return False
    return bool(torch.cuda.is_available())


class OrtBackendSession:
    """ONNX Runtime on the CPU execution provider (``level``, ``threads`` as in ``make_session``)."""

    backend = "ort"

    def __init__(self, model: Any, *, threads: int = 1, level: str = "all", mode: str = "sequential",
                 inter_threads: int = 1) -> None:
        self.threads, self.level, self.mode = int(threads), level, mode
        self.session = make_session(model, level=level, intra_threads=threads, inter_threads=inter_threads,
                                    mode=mode, device="cpu")
        self.inputs = [_ort_spec(i) for i in self.session.get_inputs()]
        self.outputs = [_ort_spec(o) for o in self.session.get_outputs()]

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        return list(self.session.run(None, {s.name: feeds[s.name] for s in self.inputs}))

    def variant(self, feeds: Mapping[str, np.ndarray]) -> Variant:
        sess, feed = self.session, {s.name: feeds[s.name] for s in self.inputs}
        one = self.threads == 1 and self.mode == "sequential"
        return Variant(lambda: sess.run(None, feed), threads=1 if one else None)

    def describe(self) -> dict[str, Any]:
        return {"backend": "ort", "threads": self.threads, "level": self.level, "mode": self.mode}


def _ort_spec(i: Any) -> TensorSpec:
    t = i.type.removeprefix("tensor(").removesuffix(")")
    t = {"float": "float32", "double": "float64"}.get(t, t)
    shape = tuple(i.shape) if all(isinstance(d, int) for d in i.shape) else None
    return TensorSpec(i.name, shape, t)


class TorchBackendSession:
    """The model as a generated PyTorch module (see :mod:`xflow.runtime.backend_lower`).

    Args:
        model: path, bytes, ``ModelProto`` or an already loaded graph view.
        device: ``"cpu"`` (backend ``torch``) or ``"cuda"`` (backend ``torch-cuda``).
        threads: torch intra-op threads set for each run (``0``: leave torch's setting).
        lower: :class:`~xflow.runtime.backend_lower.LowerOptions` (device is taken from ``device``).
        script: compile the generated kernels with TorchScript.
        input_shapes: fix symbolic input dimensions (``{"input": [1, 3, 224, 224]}``).
    """

    def __init__(self, model: Any, *, device: str = "cpu", threads: int = 1, lower: Any = None,
                 script: bool = False, input_shapes: Mapping[str, Sequence[int]] | None = None) -> None:
        from dataclasses import replace

        if device == "cuda" and not torch_cuda_available():
            raise DeviceUnavailable("backend 'torch-cuda' needs a CUDA GPU, and torch sees none here "
                                    "(torch.cuda.is_available() is False); use --backend torch")
        if device not in ("cpu", "cuda"):
            raise UnknownName(f"unknown device {device!r}; use 'cpu' or 'cuda'")
        self.backend = "torch" if device == "cpu" else "torch-cuda"
        self.device, self.threads, self.script = device, int(threads), bool(script)
        view = model if isinstance(model, GraphView) else load_view(model, input_shapes=input_shapes)
        opts = replace(lower or LowerOptions(), device=device)
        self.program = lower_fn(view, opts)
        self.source = serial_module(self.program, source=str(model) if isinstance(model, str) else None)
        mod = load_module(self.source)
        self.model = mod.Model(weights=program_weights(self.program), device=device, threads=threads,
                               script=script)
        v = self.program.view
        self.inputs = [TensorSpec(n, v.shape(n), _dtype_name(v.dtype(n))) for n in v.inputs]
        self.outputs = [TensorSpec(n, v.shape(n), _dtype_name(v.dtype(n))) for n in v.outputs]

    def _tensors(self, feeds: Mapping[str, np.ndarray]) -> list[Any]:
        import torch

        xs = []
        for s in self.inputs:
            if s.name not in feeds:
                raise KeyError(f"missing input {s.name!r} (inputs: {[i.name for i in self.inputs]})")
            xs.append(torch.from_numpy(np.ascontiguousarray(feeds[s.name])).to(self.device))
        return xs

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        outs = self.model(*self._tensors(feeds))
        return [t.detach().cpu().contiguous().numpy().copy() for t in outs]

    def variant(self, feeds: Mapping[str, np.ndarray]) -> Variant:
        xs, m = self._tensors(feeds), self.model
        sync = None
        if self.device == "cuda":
            import torch

            sync = torch.cuda.synchronize
        return Variant(lambda: m(*xs), threads=1 if (self.threads == 1 and sync is None) else None, sync=sync)

    def describe(self) -> dict[str, Any]:
        p = self.program
        return {"backend": self.backend, "threads": self.threads, "script": self.script,
                **p.options.as_dict(), "kernels": len(p.kernels), "fused_nodes": p.fused_nodes}


def _dtype_name(dt: Any) -> str | None:
    return None if dt is None else np.dtype(dt).name


def make_backend_session(model: Any, backend: str = "ort", *, threads: int = 1, level: str = "all",
                         lower: Any = None, script: bool = False,
                         input_shapes: Mapping[str, Sequence[int]] | None = None) -> BackendSession:
    """A session of ``model`` on ``backend`` (one of :data:`BACKENDS`).

    ``level`` is ONNX Runtime's graph optimization level (``ort`` only); ``lower``/``script``
    configure the torch backends; ``threads`` is the intra-op thread count of either.
    """
    if backend == "ort":
        if input_shapes:
            model = load_model(model, input_shapes=input_shapes).model
        return OrtBackendSession(model, threads=threads, level=level)
    if backend in ("torch", "torch-cuda"):
        return TorchBackendSession(model, device="cpu" if backend == "torch" else "cuda", threads=threads,
                                   lower=lower, script=script, input_shapes=input_shapes)
    raise UnknownName(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
