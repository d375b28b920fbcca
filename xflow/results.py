"""Append-only, long-format result records.

A *record* is a flat dict: one measured quantity per row (``metric``, ``value``) plus the config
columns that produced it. :func:`write_records` adds provenance columns (git sha, package versions,
device, threads, timestamp) and appends a new parquet part file under ``results/<name>/``;
nothing is ever overwritten. :func:`read_results` concatenates all parts of a result set.
"""
from __future__ import annotations

import datetime as _dt
import functools
import json
import os
import subprocess
import uuid
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from xflow import paths
from xflow.device import describe_device
from xflow.safeio import atomic_output

__all__ = ["provenance", "write_records", "read_results", "git_sha", "package_versions"]

_PACKAGES = ("xflow", "torch", "torchvision", "torch_geometric", "onnx", "onnxruntime", "numpy", "ray")


@functools.lru_cache(maxsize=1)
def git_sha() -> str:
    """Current commit of the checkout (``'unknown'`` outside git), ``+dirty`` when modified."""
    try:
        root = paths.repo_root()
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        if not sha:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root, capture_output=True, text=True, timeout=10,
        ).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except Exception:
        return "unknown"


@functools.lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    """Installed versions of the packages that shape the numbers."""
    out = {}
    for p in _PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = "absent"
    return out


def provenance(device: str = "cpu", threads: int | None = None) -> dict[str, Any]:
    """Provenance columns added to every record."""
    info = describe_device(device)
    return {
        "git_sha": git_sha(),
        "versions": json.dumps(package_versions(), sort_keys=True),
        "device": info.label(),
        "device_kind": device,
        "threads": threads if threads is not None else info.torch_threads,
        "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def _flat(v: Any) -> Any:
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(v, sort_keys=True, default=str)
    return v


def write_records(
    records: Iterable[Mapping[str, Any]],
    name: str,
    *,
    device: str = "cpu",
    threads: int | None = None,
    directory: Path | None = None,
) -> Path:
    """Append ``records`` (with provenance) as a new parquet part in ``results/<name>/``; return its path.

    Columns a record already sets (e.g. ``threads`` of a thread sweep) take precedence over the
    provenance defaults.
    """
    import pandas as pd

    prov = provenance(device, threads)
    rows = [{**prov, **{k: _flat(v) for k, v in r.items()}} for r in records]
    if not rows:
        raise ValueError(f"write_records({name!r}): no records to write")
    out_dir = Path(directory) if directory else paths.results_dir(name)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    path = out_dir / f"part-{stamp}-{os.getpid()}-{uuid.uuid4().hex[:6]}.parquet"

    # written under a temporary name readers do not glob, then renamed: never half a part
    with atomic_output(path, suffix="") as tmp:
        pd.DataFrame(rows).to_parquet(tmp, index=False)
    return path


def read_results(name: str, directory: Path | None = None):
    """All parts of result set ``name`` as one DataFrame (empty if none)."""
    import pandas as pd

    d = Path(directory) if directory else paths.results_dir(name)
    parts = sorted(d.glob("*.parquet"))
    if not parts:
        return pd.DataFrame()
    return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
