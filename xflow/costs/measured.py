"""``measured``: the end-to-end ONNX Runtime latency of a graph, cached by graph hash.

The truth the other cost models approximate, and noisy: on the 2-core CPU of ``MEASUREMENTS.md``
sibling-conv merges that the roofline calls wins are losses. Each distinct graph is timed once
(:func:`xflow.runtime.measure_latency`, the measurement core) and remembered in memory and on
disk under ``cache_dir('costs', 'latency')``, in a file keyed by device label, optimization level,
threads, :data:`CACHE_VERSION` and :data:`xflow.graphs.hashing.HASH_VERSION` (a file written by an
older encoding is never read). A corrupt cache file is ignored and rewritten.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from xflow import paths
from xflow.costs.base import CachedCost
from xflow.costs.disk_cache import load_costs, store_cost
from xflow.costs.profiles import device_slug
from xflow.graphs.hashing import HASH_VERSION
from xflow.graphs.ir import Graph
from xflow.runtime import measure_latency
from xflow.runtime.device import describe_device

__all__ = ["MeasuredCost", "CACHE_VERSION", "measure_ms"]

log = logging.getLogger(__name__)

#: Version of the latency-cache format and of how a latency is obtained (part of the file name).
CACHE_VERSION = 1


def measure_ms(graph: Graph, *, level: str, threads: int, warmup: int, repeats: int, device: str = "cpu") -> float:
    """Median latency (ms) of ``graph`` in ONNX Runtime via :func:`xflow.runtime.measure_latency`."""

    stats = measure_latency(graph.model, level=level, intra_threads=threads, warmup=warmup, repeats=repeats,
                            device=device)
    return float(stats.median_ms)


class MeasuredCost(CachedCost):
    """Median ONNX Runtime latency (ms) of a graph, cached by graph hash (memory and disk).

    Args:
        level: ORT graph optimization level (``"all"``: the industrial baseline a rewrite must beat).
        threads: intra-op threads.
        warmup, repeats: runs discarded / timed.
        device: ``cpu`` or ``cuda``.
        persist: also cache on disk.
    """

    def __init__(self, *, level: str = "all", threads: int = 1, warmup: int = 3, repeats: int = 15,
                 device: str = "cpu", persist: bool = True, name: str = "measured") -> None:
        super().__init__()
        self.level, self.threads, self.warmup, self.repeats = level, threads, warmup, repeats
        self.device, self.persist, self.name = device, persist, name

    def __repr__(self) -> str:
        return (f"MeasuredCost(level={self.level!r}, threads={self.threads}, repeats={self.repeats}, "
                f"device={self.device!r})")

    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__)  # the measured cache is worth keeping

    def _disk_path(self) -> Path:
        slug = device_slug(describe_device(self.device).label())
        return paths.cache_dir("costs", "latency") / (
            f"{slug}-{self.level}-t{self.threads}-c{CACHE_VERSION}-h{HASH_VERSION}.json")

    def _load_disk(self) -> dict[str, float]:
        return load_costs(self._disk_path(), "latency cache")

    def _store(self, key: str, ms: float) -> None:
        store_cost(self._disk_path(), key, ms, "latency cache")

    def compute(self, graph: Graph) -> float:
        """Measured median latency of ``graph`` in ms (:meth:`cost` caches it by hash, in memory and on disk)."""
        return float(measure_ms(graph, level=self.level, threads=self.threads, warmup=self.warmup,
                                repeats=self.repeats, device=self.device))
