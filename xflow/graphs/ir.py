"""The one ONNX IR of xflow: an ``onnx_ir.Model`` with name indexes, static shapes and constants.

Every package works on a :class:`Graph`: rewrite rules match and edit it, the environment
featurizes and costs it, the parallelizer builds its dataflow graph from it. ``onnx.ModelProto``
appears only at the boundaries: :meth:`Graph.from_proto` (after loading or export) and
:attr:`Graph.model` (ONNX Runtime, saving to disk, the checker).

What the IR gives on top of ``onnx_ir`` (after onnx/ir-py's ``Model`` / ``Graph`` / ``Node`` /
``Value``):

* **one node naming** (:func:`name_nodes`): an unnamed or duplicate node becomes
  ``<OpType>_<index>`` (then ``_1``, ``_2`` … if taken), so rules, PyG features, rendering and the
  parallelizer address nodes by the same name;
* **name indexes**: :meth:`Graph.node`, :meth:`Graph.value`, :meth:`Graph.producer`,
  :meth:`Graph.consumers` (a node that reads a tensor only inside an ``If``/``Loop``/``Scan`` body
  counts as a consumer: :func:`node_reads`);
* **one attribute reader** (:func:`attrs`): attributes as plain Python values;
* **shapes, inferred once per graph** and written back onto the values
  (:mod:`xflow.graphs.shapes`): :meth:`Graph.shape` (static), :meth:`Graph.dims` (with symbolic
  dims), :meth:`Graph.elem_type`;
* **constants**: :meth:`Graph.const` for initializers, ``Constant`` outputs and ``Identity`` of
  either (exporters route weights through ``Identity``);
* **tensor-sharing clones**: :meth:`Graph.clone` copies nodes and values but shares every tensor
  payload, so a rewrite candidate costs its structure, not its weights
  (:class:`xflow.graphs.edit.Editor` edits such a clone).

A :class:`Graph` is immutable once built (indexes and the serialized model are cached): to change
one, edit a clone with an :class:`~xflow.graphs.edit.Editor`, or run a pass on an ``ir.Model``
before wrapping it.
"""
from __future__ import annotations

import difflib
import math
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np
import onnx
import onnx_ir as ir

from xflow.errors import InvalidModel, UnknownName
from xflow.graphs.hashing import graph_hash
from xflow.graphs.shapes import infer_model_shapes

if TYPE_CHECKING:
    from xflow.graphs.edit import Changes

__all__ = [
    "Graph",
    "TensorInfo",
    "DEFAULT_DOMAINS",
    "attrs",
    "ins",
    "outs",
    "node_reads",
    "name_nodes",
    "np_dtype",
    "static_shape",
    "has_subgraph",
    "as_proto",
    "clone_model",
    "constant_value",
]

#: Spellings of the default ONNX operator domain.
DEFAULT_DOMAINS = ("", "ai.onnx")


# ---------------------------------------------------------------------------------------
# small readers shared by every package
# ---------------------------------------------------------------------------------------
def ins(node: ir.Node) -> list[str]:
    """Names of ``node``'s inputs, ``""`` for an omitted optional input."""
    return [v.name if v is not None else "" for v in node.inputs]


def outs(node: ir.Node) -> list[str]:
    """Names of ``node``'s outputs (``""`` for an unused optional output)."""
    return [v.name or "" for v in node.outputs]


def _attr_value(a: ir.Attr) -> Any:
    t = a.type
    v = a.value
    if t in (ir.AttributeType.INTS, ir.AttributeType.FLOATS, ir.AttributeType.STRINGS):
        return tuple(v)
    if t == ir.AttributeType.TENSOR:
        return np.asarray(v.numpy())
    if t == ir.AttributeType.TENSORS:
        return tuple(np.asarray(x.numpy()) for x in v)
    return v


def attrs(node: ir.Node) -> dict[str, Any]:
    """The one attribute reader: ``{name: value}`` with plain Python values.

    INT → ``int``, FLOAT → ``float``, STRING → ``str``, INTS/FLOATS/STRINGS → ``tuple``,
    TENSOR → ``numpy.ndarray``, GRAPH → ``onnx_ir.Graph`` (reference attributes are skipped).
    """
    return {k: _attr_value(a) for k, a in node.attributes.items() if isinstance(a, ir.Attr) and not a.is_ref()}


def node_reads(node: ir.Node) -> list[str]:
    """Tensor names ``node`` reads: its inputs plus the outer-scope names its subgraphs read
    (``If``/``Loop``/``Scan`` bodies may use outer tensors without listing them as inputs)."""
    names = [v.name for v in node.inputs if v is not None and v.name]
    for a in node.attributes.values():
        if not isinstance(a, ir.Attr) or a.is_ref():
            continue
        if a.type == ir.AttributeType.GRAPH:
            graphs = [a.value]
        elif a.type == ir.AttributeType.GRAPHS:
            graphs = list(a.value)
        else:
            continue
        for g in graphs:
            local = {v.name for v in g.inputs} | set(g.initializers)
            for sub in g:
                local.update(v.name for v in sub.outputs if v.name)
            for sub in g:
                names.extend(n for n in node_reads(sub) if n not in local)
    return names


def has_subgraph(node: ir.Node) -> bool:
    """Whether ``node`` carries a GRAPH/GRAPHS attribute (control flow)."""
    return any(isinstance(a, ir.Attr) and a.type in (ir.AttributeType.GRAPH, ir.AttributeType.GRAPHS)
               for a in node.attributes.values())


def name_nodes(nodes: Iterable[ir.Node]) -> None:
    """The one node naming, in place: unnamed or duplicate names become ``<OpType>_<index>``
    (``index`` = position in graph order; ``_1``, ``_2`` … appended while that name is taken)."""
    seen: set[str] = set()
    for i, node in enumerate(nodes):
        if not node.name or node.name in seen:
            base = f"{node.op_type}_{i}"
            name, k = base, 1
            while name in seen:
                name, k = f"{base}_{k}", k + 1
            node.name = name
        seen.add(node.name)


def np_dtype(dtype: ir.DataType | int | None) -> np.dtype | None:
    """numpy dtype of an ONNX element type (``None`` when undefined or without numpy equivalent)."""
    if dtype is None or int(dtype) == 0:
        return None
    try:
        return np.dtype(ir.DataType(int(dtype)).numpy())
    except Exception:  # noqa: BLE001 - exotic types (float8 without ml_dtypes, strings)
        return None


def static_shape(shape: ir.Shape | None) -> tuple[int, ...] | None:
    """``shape`` as a tuple of ints, or ``None`` when unknown or any dimension is symbolic."""
    if shape is None:
        return None
    dims = shape.dims
    if all(isinstance(d, int) for d in dims):
        return tuple(dims)
    return None


def _dims(shape: ir.Shape | None) -> tuple[int | str, ...] | None:
    if shape is None:
        return None
    return tuple(d if isinstance(d, int) else (d.value or "?") for d in shape.dims)


@dataclass(frozen=True)
class TensorInfo:
    """Name, shape and element type of one tensor.

    ``shape`` is ``None`` when the rank is unknown; a dimension is an ``int`` when static and
    a ``str`` (the symbolic name, or ``"?"``) when not. ``dtype`` is ``None`` for non-tensor or
    untyped values.
    """

    name: str
    shape: tuple[int | str, ...] | None
    dtype: np.dtype | None

    @property
    def is_static(self) -> bool:
        """True when the rank and every dimension are known integers."""
        return self.shape is not None and all(isinstance(d, int) for d in self.shape)

    @property
    def numel(self) -> int | None:
        """Number of elements, or ``None`` when the shape is not static."""
        return math.prod(self.shape) if self.is_static else None  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------
# the graph
# ---------------------------------------------------------------------------------------
class Graph:
    """An ONNX model in the one IR (see the module docstring).

    Build one with :func:`xflow.graphs.load_model` (validated, shape-inferred, folded),
    :meth:`from_proto` (a model you trust; shapes inferred if missing) or from an ``ir.Model``
    whose values already carry their shapes.

    Attributes:
        ir: the ``onnx_ir.Model``.
        changes: what the edit that produced this graph removed and added
            (:class:`xflow.graphs.edit.Changes`; ``None`` for a graph that was loaded).
    """

    def __init__(self, model: ir.Model, *, changes: Changes | None = None) -> None:
        self.ir = model
        self.changes = changes
        #: counts of the folding pass that produced this graph (:func:`xflow.graphs.load_model`)
        self.fold_stats = None
        g = model.graph
        self._nodes: list[ir.Node] = list(g)
        self._values: dict[str, ir.Value] = {}
        for v in g.inputs:
            if v.name:
                self._values[v.name] = v
        for name, v in g.initializers.items():
            self._values[name] = v
        self._producer: dict[str, ir.Node] = {}
        self._by_name: dict[str, ir.Node] = {}
        for n in self._nodes:
            if n.name:
                self._by_name.setdefault(n.name, n)
            for o in n.outputs:
                if o.name:
                    self._values[o.name] = o
                    self._producer[o.name] = n
        for v in g.outputs:  # outputs that are inputs/initializers are indexed already
            if v.name and v.name not in self._values:
                self._values[v.name] = v
        self._const: dict[str, np.ndarray | None] = {}

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_proto(cls, proto: onnx.ModelProto, *, infer: bool = True) -> "Graph":
        """Wrap a ``ModelProto`` (not modified): deserialize, name the nodes, and — when some node
        output has no recorded shape and ``infer`` — infer the shapes once (big weights stay out of
        the call, see :func:`xflow.graphs.shapes.infer_model_shapes`)."""
        if not isinstance(proto, onnx.ModelProto):
            raise InvalidModel(f"expected an onnx.ModelProto, got {type(proto).__name__}")
        model = ir.serde.deserialize_model(proto)
        name_nodes(model.graph)
        if infer and any(o.name and (o.shape is None or o.dtype is None) for n in model.graph for o in n.outputs):
            infer_model_shapes(model, proto)
        return cls(model)

    @classmethod
    def of(cls, model: "onnx.ModelProto | Graph") -> "Graph":
        """``model`` itself if it is a :class:`Graph`, else :meth:`from_proto`."""
        return model if isinstance(model, Graph) else cls.from_proto(model)

    def clone(self) -> ir.Model:
        """A copy of the ``ir.Model`` to edit: new nodes and values, *shared* tensor payloads,
        attributes and (frozen) shapes, so a rewrite candidate costs its structure, not its
        weights (see :func:`clone_model`)."""
        return clone_model(self.ir)

    # -- boundaries -------------------------------------------------------------------------
    @cached_property
    def model(self) -> onnx.ModelProto:
        """The graph as an ``onnx.ModelProto`` (built once; a boundary: ORT, saving, the checker)."""
        return ir.serde.serialize_model(self.ir)

    @cached_property
    def content_hash(self) -> str:
        """Stable hash of the computation (:func:`xflow.graphs.hashing.graph_hash`)."""
        return graph_hash(self)

    # -- nodes ------------------------------------------------------------------------------
    @property
    def nodes(self) -> list[ir.Node]:
        """The nodes in graph (topological) order."""
        return self._nodes

    @property
    def node_by_name(self) -> dict[str, ir.Node]:
        """``{name: node}``."""
        return self._by_name

    @cached_property
    def node_index(self) -> dict[str, int]:
        """``{name: position in graph order}``."""
        return {n.name: i for i, n in enumerate(self._nodes)}

    def node(self, name: str) -> ir.Node:
        """The node called ``name``; :class:`~xflow.errors.UnknownName` with suggestions if none."""
        try:
            return self._by_name[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self._by_name), n=3)
            hint = f"; did you mean {close}?" if close else ""
            raise UnknownName(f"no node named {name!r} in graph {self.ir.graph.name!r}{hint}") from None

    def producer(self, tensor: str) -> ir.Node | None:
        """The node that outputs ``tensor`` (``None`` for inputs and initializers)."""
        return self._producer.get(tensor)

    @cached_property
    def consumer_map(self) -> dict[str, list[ir.Node]]:
        """``{tensor: nodes reading it}`` (each node once, in graph order; subgraph reads count)."""
        out: dict[str, list[ir.Node]] = {}
        for n in self._nodes:
            for t in dict.fromkeys(node_reads(n)):
                out.setdefault(t, []).append(n)
        return out

    def consumers(self, tensor: str) -> list[ir.Node]:
        """Nodes that read ``tensor`` (each once, in graph order)."""
        return self.consumer_map.get(tensor, [])

    def sole_consumer(self, tensor: str) -> ir.Node | None:
        """The only node reading ``tensor`` (``None`` if several, none, or it is a graph output)."""
        users = self.consumers(tensor)
        if len(users) != 1 or self.is_graph_output(tensor):
            return None
        return users[0]

    def predecessors(self, node: ir.Node) -> list[ir.Node]:
        """Distinct producer nodes of ``node``'s inputs."""
        out: dict[int, ir.Node] = {}
        for t in ins(node):
            p = self._producer.get(t)
            if p is not None:
                out[id(p)] = p
        return list(out.values())

    def successors(self, node: ir.Node) -> list[ir.Node]:
        """Distinct consumer nodes of ``node``'s outputs."""
        out: dict[int, ir.Node] = {}
        for o in outs(node):
            for c in self.consumers(o):
                out[id(c)] = c
        return list(out.values())

    def op_counts(self) -> Counter:
        """How many nodes of each op type."""
        return Counter(n.op_type for n in self._nodes)

    # -- values -----------------------------------------------------------------------------
    def value(self, tensor: str) -> ir.Value | None:
        """The ``ir.Value`` called ``tensor`` (graph input, initializer or node output)."""
        return self._values.get(tensor)

    def has_tensor(self, tensor: str) -> bool:
        """Whether a value called ``tensor`` exists (graph input, initializer or node output)."""
        return tensor in self._values

    def share_constants(self, other: "Graph") -> int:
        """Reuse ``other``'s converted constants (:meth:`const`) for the initializers both graphs
        share (the same tensor object, as in a tensor-sharing clone), so the next graph of a
        rollout does not convert weights from the protobuf again; returns how many were shared."""
        n = 0
        for name, arr in other._const.items():
            if arr is None or name in self._const:
                continue
            ov, nv = other._values.get(name), self._values.get(name)
            if ov is not None and nv is not None and ov.const_value is not None and nv.const_value is ov.const_value:
                self._const[name] = arr
                n += 1
        return n

    @cached_property
    def inputs(self) -> list[str]:
        """Graph input names, excluding initializers."""
        return [v.name for v in self.ir.graph.inputs if v.const_value is None]

    @cached_property
    def outputs(self) -> list[str]:
        """Graph output names."""
        return [v.name for v in self.ir.graph.outputs]

    @cached_property
    def _output_set(self) -> frozenset[str]:
        return frozenset(self.outputs)

    def is_graph_output(self, tensor: str) -> bool:
        """Whether ``tensor`` is one of the graph's outputs."""
        return tensor in self._output_set

    def is_initializer(self, tensor: str) -> bool:
        """Whether ``tensor`` is an initializer (a weight)."""
        return tensor in self.ir.graph.initializers

    @property
    def initializer_values(self) -> dict[str, ir.Value]:
        """``{name: ir.Value}`` of the initializers (their ``const_value`` holds the tensor)."""
        return dict(self.ir.graph.initializers)

    @cached_property
    def initializers(self) -> dict[str, np.ndarray]:
        """``{name: numpy array}`` of every initializer (converted on first access)."""
        return {k: np.asarray(v.const_value.numpy()) for k, v in self.ir.graph.initializers.items()}

    def const(self, tensor: str) -> np.ndarray | None:
        """The value of ``tensor`` if it is an initializer, a ``Constant`` output or an ``Identity``
        of one; else ``None`` (arrays are read-only views of the shared tensors)."""
        if tensor in self._const:
            return self._const[tensor]
        val = None
        v = self._values.get(tensor)
        if v is not None and v.const_value is not None:
            val = np.asarray(v.const_value.numpy())
        else:
            p = self._producer.get(tensor)
            if p is not None and p.op_type == "Identity" and p.inputs and p.inputs[0] is not None:
                val = self.const(p.inputs[0].name)
            elif p is not None and p.op_type == "Constant":
                val = constant_value(p)
        self._const[tensor] = val
        return val

    def is_const(self, tensor: str) -> bool:
        """Whether ``tensor`` has a known constant value (see :meth:`const`)."""
        return self.const(tensor) is not None

    def shape(self, tensor: str) -> tuple[int, ...] | None:
        """Static shape of ``tensor`` (``None`` if unknown or any dimension is symbolic)."""
        v = self._values.get(tensor)
        if v is None:
            return None
        s = static_shape(v.shape)
        if s is None and v.shape is None:
            c = self.const(tensor)
            if c is not None:
                return tuple(c.shape)
        return s

    def dims(self, tensor: str) -> tuple[int | str, ...] | None:
        """Shape of ``tensor`` with symbolic dimensions as strings (``None``: rank unknown)."""
        v = self._values.get(tensor)
        return None if v is None else _dims(v.shape)

    def elem_type(self, tensor: str) -> int | None:
        """ONNX element type of ``tensor`` (``onnx.TensorProto.FLOAT`` …) or ``None`` if unknown."""
        v = self._values.get(tensor)
        if v is not None and v.dtype is not None:
            return int(v.dtype)
        c = self.const(tensor)
        return None if c is None else int(ir.DataType.from_numpy(c.dtype))

    def dtype(self, tensor: str) -> np.dtype | None:
        """numpy dtype of ``tensor`` (``None`` if unknown)."""
        return np_dtype(self.elem_type(tensor))

    @cached_property
    def tensors(self) -> dict[str, TensorInfo]:
        """``{name: TensorInfo}`` for inputs, outputs, intermediates and initializers."""
        return {k: TensorInfo(k, _dims(v.shape), np_dtype(v.dtype)) for k, v in self._values.items()}

    @property
    def opset(self) -> int:
        """The default-domain (``ai.onnx``) opset version."""
        imports = self.ir.opset_imports
        return int(imports.get("", imports.get("ai.onnx", 0)))

    def split_sizes(self, node: ir.Node) -> list[int] | None:
        """Static section sizes of a ``Split`` node (attribute, input or equal split)."""
        a = attrs(node)
        if "split" in a:
            return [int(s) for s in a["split"]]
        names = ins(node)
        if len(names) > 1 and names[1]:
            c = self.const(names[1])
            return None if c is None else [int(s) for s in c.reshape(-1)]
        shp = self.shape(names[0])
        if shp is None:
            return None
        axis = int(a.get("axis", 0)) % len(shp)
        n = len(node.outputs)
        total = shp[axis]
        if total % n == 0:
            return [total // n] * n
        chunk = -(-total // n)
        return [chunk] * (n - 1) + [total - chunk * (n - 1)]

    def __len__(self) -> int:
        return len(self._nodes)

    def __repr__(self) -> str:
        return (f"Graph({self.ir.graph.name!r}, nodes={len(self._nodes)}, "
                f"inputs={self.inputs}, outputs={self.outputs}, opset={self.opset})")


def constant_value(node: ir.Node) -> np.ndarray | None:
    """The tensor a ``Constant`` node produces (any of its value attributes)."""
    for key, a in node.attributes.items():
        v = a.value
        if key == "value":
            return np.asarray(v.numpy())
        if key == "value_float":
            return np.array(v, dtype=np.float32)
        if key == "value_floats":
            return np.array(list(v), dtype=np.float32)
        if key == "value_int":
            return np.array(v, dtype=np.int64)
        if key == "value_ints":
            return np.array(list(v), dtype=np.int64)
    return None


def _copy_value(v: ir.Value, with_meta: bool) -> ir.Value:
    shape = v.shape
    if shape is not None and not shape.frozen:
        shape.freeze()  # shared between the source and its clones: nobody may change it in place
    nv = ir.Value(name=v.name, shape=shape, type=v.type, doc_string=v.doc_string, const_value=v.const_value)
    if with_meta:
        for k, x in v.meta.items():
            nv.meta[k] = x
    return nv


def clone_model(model: ir.Model) -> ir.Model:
    """A tensor-sharing copy of ``model`` (after onnx-ir's ``Cloner.clone_graph``, which it uses for
    graphs with control-flow subgraphs): nodes and values are new, tensors, attributes and shapes
    (frozen) are shared, initializer metadata (tensor digests) is copied."""
    g = model.graph
    if any(has_subgraph(n) for n in g):
        graph = g.clone()
    else:
        vmap: dict[int, ir.Value] = {}
        inputs = []
        for v in g.inputs:
            nv = vmap[id(v)] = _copy_value(v, with_meta=v.const_value is not None)
            inputs.append(nv)
        inits = []
        for v in g.initializers.values():
            nv = vmap.get(id(v))
            if nv is None:
                nv = vmap[id(v)] = _copy_value(v, with_meta=True)
            inits.append(nv)
        nodes = []
        for n in g:
            outputs = [_copy_value(o, with_meta=False) for o in n.outputs]
            for o, no in zip(n.outputs, outputs):
                vmap[id(o)] = no
            nodes.append(ir.Node(n.domain, n.op_type, [vmap[id(v)] if v is not None else None for v in n.inputs],
                                 list(n.attributes.values()), overload=n.overload, outputs=outputs,
                                 version=n.version, name=n.name, doc_string=n.doc_string))
        graph = ir.Graph(inputs, [vmap[id(v)] for v in g.outputs], nodes=nodes, initializers=inits,
                         doc_string=g.doc_string, opset_imports=dict(g.opset_imports), name=g.name)
    return ir.Model(graph, ir_version=model.ir_version, producer_name=model.producer_name,
                    producer_version=model.producer_version, domain=model.domain, model_version=model.model_version,
                    doc_string=model.doc_string, functions=list(model.functions.values()),
                    metadata_props=dict(model.metadata_props))


def as_proto(model: "Graph | onnx.ModelProto") -> onnx.ModelProto:
    """``model`` as an ``onnx.ModelProto`` (the boundary to ONNX Runtime and files)."""
    return model.model if isinstance(model, Graph) else model

