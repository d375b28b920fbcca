"""The backend's view of a graph: the one file that reads ``xflow.graphs`` for the torch backend.

The ONNX→PyTorch lowering (:mod:`xflow.runtime.backend_lower`) and its op emitters
(:mod:`xflow.runtime.backend_ops`) never touch ``onnx`` protobufs. They see

* :class:`OpView` — one node: ``op_type``, ``domain``, ``name``, input/output tensor names and a
  plain ``attrs`` dict (ints, floats, strings, lists, numpy arrays for tensor attributes);
* :class:`GraphView` — the nodes in topological order, graph inputs/outputs, and per tensor its
  static shape, dtype and constant value (initializers), plus producers and consumers.

Both are built from an :class:`xflow.graphs.Graph` (``load_model``: validation, shape inference,
constant folding). Moving the graph core onto another IR (onnx-ir) changes this file only.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xflow.graphs import Graph, load_model
from xflow.graphs.ir import attrs, ins, outs

__all__ = ["OpView", "GraphView", "load_view", "view_of"]


@dataclass(frozen=True)
class OpView:
    """One operator as the emitters see it (attributes already decoded)."""

    name: str
    op_type: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)
    domain: str = ""

    def attr(self, key: str, default: Any = None) -> Any:
        """Attribute ``key`` or ``default``."""
        return self.attrs.get(key, default)


def _plain_attrs(node: Any) -> dict[str, Any]:
    """The graph core's attribute reader (:func:`xflow.graphs.ir.attrs`) with lists for sequences
    (tensors → numpy arrays; subgraphs stay opaque: no emitter handles control flow)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in attrs(node).items()}


class GraphView:
    """Nodes, tensors and constants of one model, read-only.

    Attributes:
        nodes: :class:`OpView` s in topological order (unique names).
        inputs / outputs: graph input names (initializers excluded) / output names.
        model: the underlying ``onnx.ModelProto`` (for ONNX Runtime, hashing, writing weights).
        content_hash: stable hash of the computation.
    """

    def __init__(self, graph: Any) -> None:
        self._graph = graph
        self.model = graph.model
        self.inputs: list[str] = list(graph.inputs)
        self.outputs: list[str] = list(graph.outputs)
        self.nodes: list[OpView] = []
        seen: set[str] = set()
        for i, nd in enumerate(graph.nodes):
            name = nd.name or f"{nd.op_type}_{i}"
            while name in seen:
                name += "_"
            seen.add(name)
            self.nodes.append(OpView(name, nd.op_type, tuple(ins(nd)), tuple(outs(nd)),
                                     _plain_attrs(nd), nd.domain or ""))
        self._producer: dict[str, OpView] = {}
        self._consumers: dict[str, list[OpView]] = {}
        for n in self.nodes:
            for o in n.outputs:
                if o:
                    self._producer[o] = n
            for t in dict.fromkeys(n.inputs):
                if t:
                    self._consumers.setdefault(t, []).append(n)

    # -- tensors -----------------------------------------------------------------------------
    @property
    def initializers(self) -> dict[str, np.ndarray]:
        """Every constant tensor (weights) by name."""
        return self._graph.initializers

    def const(self, name: str) -> np.ndarray | None:
        """The value of tensor ``name`` if it is a constant, else ``None``."""
        return self._graph.initializers.get(name) if name else None

    def is_const(self, name: str) -> bool:
        """Whether ``name`` is a constant (initializer)."""
        return bool(name) and name in self._graph.initializers

    def shape(self, name: str) -> tuple[int, ...] | None:
        """The static shape of ``name`` (``None`` when unknown or symbolic)."""
        if not name:
            return None
        return self._graph.shape(name)

    def dtype(self, name: str) -> np.dtype | None:
        """The element type of ``name`` (``None`` when unknown)."""
        return self._graph.dtype(name) if name else None

    # -- structure -----------------------------------------------------------------------------
    def producer(self, name: str) -> OpView | None:
        """The node writing ``name`` (``None`` for inputs and constants)."""
        return self._producer.get(name)

    def consumers(self, name: str) -> list[OpView]:
        """The nodes reading ``name`` (each once, in graph order)."""
        return list(self._consumers.get(name, ()))

    @property
    def opset(self) -> int:
        """The default-domain opset version (17 when the model does not say)."""
        return int(getattr(self._graph, "opset", 0) or 17)

    @property
    def content_hash(self) -> str:
        """Stable hash of the computation (from the graph core)."""
        return self._graph.content_hash

    def __len__(self) -> int:
        return len(self.nodes)


def load_view(src: Any, *, input_shapes: Mapping[str, Sequence[int]] | None = None,
              fold: bool = True) -> GraphView:
    """Load, validate, shape-infer and fold ``src`` (path, bytes, ModelProto) with the graph core.

    Raises the graph core's typed errors (missing/empty/malformed file, invalid model, dynamic
    input shape with the fix to apply, unknown operator domain).
    """
    return GraphView(load_model(src, input_shapes=input_shapes, fold=fold))


def view_of(model: Any) -> GraphView:
    """A view of an already loaded and shape-inferred model (``ModelProto`` or graph-core ``Graph``).

    No validation and no folding: for models a pass of ours produced.
    """
    if isinstance(model, GraphView):
        return model
    if isinstance(model, Graph):
        return GraphView(model)
    return GraphView(Graph.of(model))
