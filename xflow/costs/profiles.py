"""Device profiles: the roofline's parameters as data, one JSON file per device.

A :class:`DeviceProfile` holds the peak FLOP/s, the memory bandwidth, the per-operator overhead,
the layout-reorder cost per byte of a ``Split`` of a ``Conv`` output, and the intra-op thread
scaling law. Two kinds of file:

* **nominal** profiles ship with xflow (``xflow/costs/profiles/<device>-nominal.json``): round
  numbers for a device class, never measured — deterministic, for tests and for reasoning;
* **calibrated** profiles are measured on this machine by one command,
  ``xflow costs calibrate [--device cpu] [--threads 1]`` (:func:`xflow.costs.calibration.calibrate`),
  and stored as ``cache_dir('costs', 'profiles')/<device label>-t<threads>.json`` (or where
  ``-o`` says). Each records how it was measured (``provenance``: date, load, raw times).

A file whose ``version`` is not :data:`PROFILE_VERSION`, or that does not parse, is never used:
:func:`read_profile` raises :class:`~xflow.errors.InvalidProfile` (the calibrated cost model then
re-calibrates and rewrites it).
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from xflow import paths
from xflow.errors import UnknownName, XflowError
from xflow.runtime.device import describe_device

__all__ = ["DeviceProfile", "PROFILE_VERSION", "InvalidProfile", "nominal", "read_profile", "write_profile",
           "calibrated_path", "NOMINAL_DIR", "device_slug"]

#: Version of the profile file format (and of the calibration procedure that fills it).
PROFILE_VERSION = 1
#: Where the nominal profiles live (package data).
NOMINAL_DIR = Path(__file__).with_name("profiles")


class InvalidProfile(XflowError, ValueError):
    """A profile file is corrupt, from another version, or has non-positive peaks."""


@dataclass(frozen=True)
class DeviceProfile:
    """Roofline parameters of one device (see :class:`xflow.costs.roofline.Roofline`).

    Args:
        name: ``cpu-nominal`` or the calibrated device label.
        device: ``cpu`` or ``cuda``.
        flops_per_s: peak floating-point operations per second :math:`P`.
        bytes_per_s: memory bandwidth :math:`W`.
        op_overhead_s: per-operator dispatch overhead :math:`o`.
        split_reorder_s_per_byte: extra seconds per input byte of a ``Split``/``Slice`` that cuts
            a ``Conv`` output (:math:`\\rho`; ONNX Runtime's blocked conv layout reorders there).
        thread_efficiency, thread_half_work_flops: intra-op speed-up at ``T`` threads
            :math:`s_T = 1 + (T-1)\\,e\\,F/(F + F_{1/2})` (small ops do not scale).
        threads: intra-op threads the profile was measured with.
        provenance: how the numbers were obtained (nominal source, or the calibration run).
        version: :data:`PROFILE_VERSION` of the file.
    """

    name: str
    device: str
    flops_per_s: float
    bytes_per_s: float
    op_overhead_s: float
    split_reorder_s_per_byte: float = 0.0
    thread_efficiency: float = 0.8
    thread_half_work_flops: float = 4e6
    threads: int = 1
    provenance: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    version: int = PROFILE_VERSION

    def __post_init__(self) -> None:
        for k in ("flops_per_s", "bytes_per_s"):
            v = getattr(self, k)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise InvalidProfile(f"profile {self.name!r}: {k} must be a positive number, got {v!r}")
        for k in ("op_overhead_s", "split_reorder_s_per_byte"):
            v = getattr(self, k)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise InvalidProfile(f"profile {self.name!r}: {k} must be a number >= 0, got {v!r}")

    def as_dict(self) -> dict[str, Any]:
        """The profile as a JSON-able dict (the file format)."""
        return asdict(self)

    def speedup(self, flops: float, threads: int) -> float:
        """Intra-op speed-up :math:`s_T` of an op of ``flops`` at ``threads`` threads."""
        if threads <= 1 or flops <= 0:
            return 1.0
        return 1.0 + (threads - 1) * self.thread_efficiency * flops / (flops + self.thread_half_work_flops)

    def __repr__(self) -> str:
        return (f"DeviceProfile({self.name}: {self.flops_per_s / 1e9:.1f} GFLOP/s, "
                f"{self.bytes_per_s / 1e9:.1f} GB/s, {self.op_overhead_s * 1e6:.2f} us/op, "
                f"split reorder {self.split_reorder_s_per_byte * 1e12:.1f} ps/B)")


def device_slug(label: str) -> str:
    """A file-name-safe version of a device label."""
    return "".join(c if c.isalnum() else "_" for c in label)[:80]


def read_profile(path: str | os.PathLike) -> DeviceProfile:
    """Load a profile file; :class:`InvalidProfile` when it is corrupt or of another version."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise InvalidProfile(f"cannot read device profile {p}: {exc}") from exc
    if not isinstance(data, dict) or data.get("version") != PROFILE_VERSION:
        raise InvalidProfile(f"device profile {p} has version {data.get('version') if isinstance(data, dict) else '?'}, "
                             f"expected {PROFILE_VERSION}; re-run `xflow costs calibrate`")
    known = {f.name for f in fields(DeviceProfile)}
    try:
        return DeviceProfile(**{k: v for k, v in data.items() if k in known})
    except TypeError as exc:
        raise InvalidProfile(f"device profile {p} misses fields: {exc}") from exc


def write_profile(profile: DeviceProfile, path: str | os.PathLike) -> Path:
    """Write ``profile`` as JSON to ``path`` atomically (a killed write never leaves half a file)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(profile.as_dict(), f, indent=2, sort_keys=True)
    os.replace(tmp, p)
    return p


def nominal(device: str = "cpu") -> DeviceProfile:
    """The shipped nominal profile of ``device`` (``cpu`` or ``cuda``)."""
    kind = "cuda" if device.startswith("cuda") else device
    path = NOMINAL_DIR / f"{kind}-nominal.json"
    if not path.exists():
        have = sorted(p.stem for p in NOMINAL_DIR.glob("*-nominal.json"))
        raise UnknownName(f"no nominal profile for device {device!r}; have {have}")
    return read_profile(path)


def calibrated_path(device: str = "cpu", threads: int = 1) -> Path:
    """Where the calibrated profile of this machine's ``device`` at ``threads`` threads lives."""

    label = describe_device(device).label()
    return paths.cache_dir("costs", "profiles") / f"{device_slug(label)}-t{int(threads)}.json"
