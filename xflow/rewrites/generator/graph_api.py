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

Today's implementation is ``xflow.rewrites._graph`` (``GraphView`` over ``onnx.NodeProto``).
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import onnx

from xflow.rewrites._graph import Editor, GraphView, _toposort, attrs_of

__all__ = [
    "Editor", "View", "Node", "view_of", "nodes", "node_named", "producer", "consumers", "op_type", "domain",
    "node_name", "inputs", "outputs", "attrs", "graph_inputs", "graph_outputs", "is_initializer",
    "is_graph_output", "shape", "elem_type", "const", "split_sizes", "opset", "proto", "node_proto",
    "node_count", "toposort",
]

#: The read-only graph view and its node type.
View = GraphView
Node = onnx.NodeProto


def view_of(model: Any) -> View:
    """An indexed, shape-inferred view of ``model`` (a view is returned as is)."""
    return GraphView.of(model)


def nodes(view: View) -> list[Node]:
    """The nodes in graph order."""
    return view.nodes


def node_named(view: View, name: str) -> Node | None:
    """The node called ``name`` (None if there is none)."""
    return view.node_by_name.get(name)


def producer(view: View, tensor: str) -> Node | None:
    """The node computing ``tensor`` (None for inputs and initializers)."""
    return view.producer.get(tensor)


def consumers(view: View, tensor: str) -> list[Node]:
    """The nodes reading ``tensor``, in graph order."""
    return view.uses(tensor)


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
    return list(node.input)


def outputs(node: Node) -> list[str]:
    """The node's output tensor names."""
    return list(node.output)


def attrs(node: Node) -> dict[str, Any]:
    """The node's attributes as Python values (lists as tuples, strings decoded)."""
    return attrs_of(node)


def graph_inputs(view: View) -> list[str]:
    """Graph inputs that are not initializers."""
    return list(view.graph_inputs)


def graph_outputs(view: View) -> list[str]:
    """The graph's output tensor names, in order."""
    return list(view.graph_outputs)


def is_initializer(view: View, tensor: str) -> bool:
    """Whether ``tensor`` is an initializer of the graph."""
    return tensor in view.initializers


def initializer_names(view: View) -> list[str]:
    """The graph's initializer names."""
    return list(view.initializers)


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
    return node


def node_count(model: Any) -> int:
    """Number of nodes of a ``ModelProto``, a view or anything with ``graph.node``."""
    if isinstance(model, GraphView):
        return len(model.nodes)
    return len(model.graph.node)


def toposort(node_list: Iterable[onnx.NodeProto], available: set[str]) -> list[onnx.NodeProto]:
    """A stable topological order of ONNX nodes (``available``: tensors no node must produce)."""
    return _toposort(list(node_list), available)
