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

__all__ = ["load_costs", "store_cost", "store_costs"]

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


def store_costs(path: Path, entries: dict[str, float], what: str = "cost cache", *,
                keep_existing: bool = False) -> dict[str, float]:
    """Merge ``entries`` into ``path`` (locked read-merge-write, atomic replace) and return the
    stored value of each of their keys. ``keep_existing``: a key already on disk keeps its value
    (the first process to store it wins) instead of being replaced. A read-only cache directory
    only logs a warning (and the given values are returned)."""
    try:
        with file_lock(path):
            disk, new = load_costs(path, what), {k: float(v) for k, v in entries.items()}
            merged = {**new, **disk} if keep_existing else {**disk, **new}
            atomic_write_json(path, merged, sort_keys=True)
        return {k: merged[k] for k in entries}
    except OSError as exc:  # pragma: no cover - a read-only cache is not fatal
        log.warning("cannot write %s: %s", what, exc)
        return {k: float(v) for k, v in entries.items()}


def store_cost(path: Path, key: str, ms: float, what: str = "cost cache") -> None:
    """Add ``key: ms`` to ``path`` (:func:`store_costs`: locked, atomic, replacing the old value)."""
    store_costs(path, {key: ms}, what)
