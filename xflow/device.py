"""Device descriptor: which machine produced a number.

Stored with every result record so that latencies from different machines are never mixed. It sits
in the base layer, beside :mod:`xflow.results` which stamps it into every record's provenance;
:mod:`xflow.runtime.device` re-exports it under the runtime's name.
"""
from __future__ import annotations

import functools
import os
import platform
from dataclasses import asdict, dataclass

__all__ = ["DeviceInfo", "describe_device", "cuda_available"]


@dataclass(frozen=True)
class DeviceInfo:
    """CPU model, core count, thread setting and GPU (if any) of this machine."""

    cpu: str
    cores: int
    machine: str
    gpu: str | None
    torch_threads: int

    def as_dict(self) -> dict:
        """Plain dict (for records and JSON)."""
        return asdict(self)

    def label(self) -> str:
        """Short human label for figure titles, e.g. ``'AMD EPYC 9R14 (2 cores)'``."""
        s = f"{self.cpu} ({self.cores} cores)"
        return f"{s} + {self.gpu}" if self.gpu else s


@functools.lru_cache(maxsize=1)
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cuda_available() -> bool:
    """True when torch sees a CUDA device (torch imported lazily)."""
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # pragma: no cover - torch missing or broken
        return False


def describe_device(device: str = "cpu") -> DeviceInfo:
    """Describe this machine; ``device='cuda'`` adds the GPU name."""
    gpu = None
    threads = 0
    try:
        import torch

        threads = torch.get_num_threads()
        if device.startswith("cuda") and torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    except Exception:  # pragma: no cover
        pass
    return DeviceInfo(
        cpu=_cpu_model(),
        cores=os.cpu_count() or 1,
        machine=platform.machine(),
        gpu=gpu,
        torch_threads=threads,
    )
