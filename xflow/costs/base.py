"""The one cost-model interface: ``cost(graph, key=None) -> milliseconds``, cached by graph hash.

Every cost model takes the IR (:class:`xflow.graphs.Graph`) — weight-free in cost, since a rewrite
candidate shares its tensors with its source — or an ``onnx.ModelProto`` (wrapped first). Models
that need to run the graph convert it to a ``ModelProto`` themselves, at that boundary.
"""
from __future__ import annotations

from typing import Any, Callable, Protocol, runtime_checkable

import onnx

from xflow.graphs.ir import Graph

__all__ = ["CostModel", "CachedCost", "FunctionCost", "graph_key"]


def graph_key(model: Graph | onnx.ModelProto) -> str:
    """The cache key of ``model``: its :func:`~xflow.graphs.hashing.graph_hash`."""
    return Graph.of(model).content_hash


@runtime_checkable
class CostModel(Protocol):
    """Anything with ``name`` and ``cost(model, key=None) -> milliseconds``."""

    name: str

    def cost(self, model: Graph | onnx.ModelProto, key: str | None = None) -> float:
        """Cost of ``model`` in ms; ``key`` is its graph hash when the caller knows it."""


class CachedCost:
    """Base class: ``cost`` looks the graph hash up before calling :meth:`compute`.

    Subclasses implement ``compute(graph) -> ms``; instances are also plain functions
    (``cost_model(graph) -> ms``, the search baselines' ``CostFn``).
    """

    name = "cost"

    def __init__(self) -> None:
        self._cache: dict[str, float] = {}

    def compute(self, graph: Graph) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    #: models that pay for a measurement set this (and implement ``_load_disk``/``_store``) to keep
    #: their costs on disk across processes as well
    persist: bool = False

    def cost(self, model: Graph | onnx.ModelProto, key: str | None = None) -> float:
        """Cost of ``model`` in milliseconds (computed once per graph hash; looked up on disk first
        when the model persists its costs)."""
        graph = Graph.of(model)
        key = key or graph.content_hash
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        if self.persist:
            hit = self._load_disk().get(key)
            if hit is not None:
                self._cache[key] = hit
                return hit
        ms = self._cache[key] = float(self.compute(graph))
        if self.persist:
            self._store(key, ms)
        return ms

    def _load_disk(self) -> dict[str, float]:  # pragma: no cover - persistent models override
        return {}

    def _store(self, key: str, ms: float) -> None:  # pragma: no cover - persistent models override
        pass

    def __call__(self, model: Graph | onnx.ModelProto) -> float:
        return self.cost(model)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_cache"] = {}
        return state


class FunctionCost(CachedCost):
    """Any ``fn(graph) -> ms`` as a :class:`CostModel`, cached by graph hash."""

    def __init__(self, fn: Callable[[Any], float], name: str | None = None) -> None:
        super().__init__()
        self.fn = fn
        self.name = name or getattr(fn, "name", None) or getattr(fn, "__name__", type(fn).__name__)

    def compute(self, graph: Graph) -> float:
        return float(self.fn(graph))

    def __repr__(self) -> str:
        return f"FunctionCost({self.fn!r})"
