"""The one place where the generated-rule engine and TENSAT's encoder touch the graph core.

The generic matcher/applier (:mod:`.rule`) and the e-graph encoder/rebuilder
(:mod:`xflow.rewrites.searches.tensat`) read graphs only through these functions and edit them only
through :class:`Editor`, so moving the graph core to another IR (onnx-ir's ``xflow.graphs.Graph``
on the ``graphcore`` branch) changes this file alone. What they need from a graph is small:

* a read-only indexed view (:func:`view_of`) with its nodes, the producer and the readers of a
  tensor, nodes by name, the non-initializer graph inputs, the graph outputs, initializers;
* per tensor: static shape, ONNX element type, constant value (initializer, ``Constant``, Identity
  of one); per node: op type, domain, name, input and output names, attributes as Python values,
  a ``Split``'s static section sizes;
* an editor that removes nodes, adds nodes/initializers/Splits and redirects a tensor's readers.

Today's implementation is the graph core (:class:`xflow.graphs.Graph` over onnx-ir, edits through
:class:`xflow.graphs.edit.Editor`).
"""
from __future__ import annotations

from typing import Any, Iterable

import heapq
import logging

import numpy as np
import onnx
import onnx_ir as ir

from xflow.graphs.edit import Editor
from xflow.graphs.ir import Graph
from xflow.graphs.ir import attrs as _ir_attrs
from xflow.graphs.ir import ins, outs

log = logging.getLogger(__name__)

__all__ = [
    "Editor", "View", "Node", "view_of", "nodes", "node_named", "producer", "consumers", "op_type", "domain",
    "node_name", "inputs", "outputs", "attrs", "graph_inputs", "graph_outputs", "is_initializer",
    "is_graph_output", "shape", "elem_type", "const", "split_sizes", "opset", "proto", "node_proto",
    "node_count", "toposort",
]

#: The read-only graph view and its node type.
View = Graph
Node = ir.Node


def view_of(model: Any) -> View:
    """An indexed, shape-inferred view of ``model`` (a view is returned as is)."""
    return Graph.of(model)


def nodes(view: View) -> list[Node]:
    """The nodes in graph order."""
    return view.nodes


def node_named(view: View, name: str) -> Node | None:
    """The node called ``name`` (None if there is none)."""
    return view.node_by_name.get(name)


def producer(view: View, tensor: str) -> Node | None:
    """The node computing ``tensor`` (None for inputs and initializers)."""
    return view.producer(tensor)


def consumers(view: View, tensor: str) -> list[Node]:
    """The nodes reading ``tensor``, in graph order."""
    return view.consumers(tensor)


def op_type(node: Node) -> str:
    """The node's operator type."""
    return node.op_type


def domain(node: Node) -> str:
    """The node's operator domain (``""`` for ONNX)."""
    return node.domain


def node_name(node: Node) -> str:
    """The node's (unique) name."""
    return node.name


def inputs(node: Node) -> list[str]:
    """The node's input tensor names (``""`` for an omitted optional input)."""
    return ins(node)


def outputs(node: Node) -> list[str]:
    """The node's output tensor names."""
    return outs(node)


def attrs(node: Node) -> dict[str, Any]:
    """The node's attributes as Python values (lists as tuples, strings decoded)."""
    return _ir_attrs(node)


def graph_inputs(view: View) -> list[str]:
    """Graph inputs that are not initializers."""
    return list(view.inputs)


def graph_outputs(view: View) -> list[str]:
    """The graph's output tensor names, in order."""
    return list(view.outputs)


def is_initializer(view: View, tensor: str) -> bool:
    """Whether ``tensor`` is an initializer of the graph."""
    return view.is_initializer(tensor)


def initializer_names(view: View) -> list[str]:
    """The graph's initializer names."""
    return list(view.initializer_values)


def is_graph_output(view: View, tensor: str) -> bool:
    """Whether ``tensor`` is a graph output."""
    return view.is_graph_output(tensor)


def shape(view: View, tensor: str) -> tuple[int, ...] | None:
    """The static shape of ``tensor`` (None if unknown or symbolic)."""
    return view.shape(tensor)


def elem_type(view: View, tensor: str) -> int | None:
    """The ONNX element type of ``tensor`` (``TensorProto.FLOAT`` …) or None."""
    return view.elem_type(tensor)


def const(view: View, tensor: str) -> np.ndarray | None:
    """The constant value of ``tensor`` (initializer, ``Constant`` output, Identity of one) or None."""
    return view.const(tensor)


def split_sizes(view: View, node: Node) -> list[int] | None:
    """Static section sizes of a ``Split`` node."""
    return view.split_sizes(node)


def opset(view: View) -> int:
    """The default-domain opset of the graph."""
    return view.opset


def proto(view: View) -> onnx.ModelProto:
    """The model as an ``onnx.ModelProto``."""
    return view.model


def node_proto(view: View, node: Node) -> onnx.NodeProto:
    """``node`` as an ``onnx.NodeProto`` (to copy it into a rebuilt model)."""
    return ir.serde.serialize_node(node)


def node_count(model: Any) -> int:
    """Number of nodes of a ``ModelProto``, a view or anything with ``graph.node``."""
    if isinstance(model, Graph):
        return len(model.nodes)
    return len(model.graph.node)


def toposort(node_list: Iterable[onnx.NodeProto], available: set[str]) -> list[onnx.NodeProto]:
    """A stable topological order of ONNX nodes (``available``: tensors no node must produce)."""
    nodes_ = list(node_list)
    producers = {o: i for i, n in enumerate(nodes_) for o in n.output if o}
    deps: list[set[int]] = []
    users: dict[int, list[int]] = {}
    for i, n in enumerate(nodes_):
        d = {producers[t] for t in _proto_reads(n) if t not in available and t in producers}
        d.discard(i)
        deps.append(d)
        for j in d:
            users.setdefault(j, []).append(i)
    ready = [i for i, d in enumerate(deps) if not d]
    heapq.heapify(ready)
    order: list[int] = []
    remaining = [len(d) for d in deps]
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for u in users.get(i, []):
            remaining[u] -= 1
            if remaining[u] == 0:
                heapq.heappush(ready, u)
    if len(order) != len(nodes_):  # a cycle: should never happen; keep the rest in order
        done = set(order)
        left = [i for i in range(len(nodes_)) if i not in done]
        log.warning("graph has a cycle after rewrite (%d nodes unsorted)", len(left))
        order += left
    return [nodes_[i] for i in order]


def _proto_reads(n: onnx.NodeProto) -> list[str]:
    """Tensors a ``NodeProto`` reads, including outer-scope names its subgraphs use."""
    out = [t for t in n.input if t]
    for a in n.attribute:
        for g in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
            inner = {o for m in g.node for o in m.output} | {i.name for i in g.input} | \
                {t.name for t in g.initializer}
            out += [t for m in g.node for t in _proto_reads(m) if t not in inner]
    return out
