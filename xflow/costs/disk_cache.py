"""One on-disk cache of measured costs (``{graph hash: ms}`` in a JSON file), shared by processes.

Used by the cost models that pay for a measurement per graph (:mod:`xflow.costs.measured`,
:mod:`xflow.costs.ort_optimized`): reads tolerate a missing or corrupt file (it is rebuilt), writes
are a locked read-merge-write with an atomic replace, so parallel sweep workers never lose entries.
"""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path

from xflow.safeio import atomic_write_json, file_lock

__all__ = ["load_costs", "store_cost"]

log = logging.getLogger(__name__)


def load_costs(path: Path, what: str = "cost cache") -> dict[str, float]:
    """The finite ``{key: ms}`` entries of ``path``; ``{}`` (with a warning) when it is unreadable."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("%s %s is unreadable (%s); it will be rebuilt", what, path, exc)
        return {}
    if not isinstance(data, dict):
        log.warning("%s %s is not a JSON object; it will be rebuilt", what, path)
        return {}
    return {k: float(v) for k, v in data.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


def store_cost(path: Path, key: str, ms: float, what: str = "cost cache") -> None:
    """Add ``key: ms`` to ``path`` (locked read-merge-write, atomic replace); a read-only cache
    directory only logs a warning."""
    try:
        with file_lock(path):
            disk = load_costs(path, what)
            disk[key] = float(ms)
            atomic_write_json(path, disk, sort_keys=True)
    except OSError as exc:  # pragma: no cover - a read-only cache is not fatal
        log.warning("cannot write %s: %s", what, exc)
