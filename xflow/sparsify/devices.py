"""Device handling for the sparsification experiments (``config["device"]``: ``cpu``, ``cuda``,
``cuda:N`` or ``auto``).

Models, features and graphs are plain tensors/modules, so they move with ``.to(device)``; every
tensor the layers create at run time is made on the device of its inputs. The compiled kernels
(:mod:`xflow.sparsify.kernels`) are CPU-only, so on other devices the layers use torch ops
(``torch.sparse.mm``, gather–scatter). The decoupled push propagation is a CPU precomputation; its
MLP trains on the device. A device other than the CPU is not exercised by the test suite (no GPU here).
"""
from __future__ import annotations

import torch

from xflow.errors import DeviceUnavailable

__all__ = ["resolve_device", "to_device"]


def resolve_device(name: str | None) -> torch.device:
    """``torch.device`` for ``name``; ``auto`` picks CUDA when present. Raises
    :class:`~xflow.errors.DeviceUnavailable` (naming the fix) for a CUDA device that is not there."""
    name = (name or "cpu").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise DeviceUnavailable(f"unknown device {name!r}; use cpu, cuda, cuda:N or auto") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceUnavailable(f"device {name!r} requested but torch sees no CUDA device; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceUnavailable(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type != "cpu":
        raise DeviceUnavailable(f"device {name!r} is not supported; use cpu, cuda, cuda:N or auto")
    return dev


def to_device(device: str | torch.device, model, data, graph):
    """``(model, data, graph)`` on ``device`` (data is copied with its masks and features)."""
    dev = resolve_device(device) if isinstance(device, str) else device
    if dev.type == "cpu":
        return model, data, graph
    return model.to(dev), data.to(dev), graph.to(dev)
