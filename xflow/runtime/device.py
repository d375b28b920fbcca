"""The device descriptor, under its runtime name: :mod:`xflow.device` re-exported.

The descriptor lives in the base layer (:mod:`xflow.device`) because the results store stamps it
into every record's provenance and the base layer never imports the runtime; this module keeps
the ``xflow.runtime.device`` import path that the runtime, the techniques and the notebooks use.
"""
from __future__ import annotations

from xflow.device import DeviceInfo, cuda_available, describe_device

__all__ = ["DeviceInfo", "cuda_available", "describe_device"]
