"""Stable content hash of a graph: the cache key of exports, rewrites, costs and measurements.

``graph_hash(g)`` is a SHA-256 (first 16 bytes, hex) over what the graph *computes*:

* :data:`HASH_VERSION` (bumped whenever the encoding changes, so stale cache entries keyed by an
  older hash are never served);
* the opset imports (sorted);
* graph inputs (name, element type, declared dimensions) and output names;
* every node in graph order: domain, op type, overload, wiring and attributes (sorted by name;
  floats as float32 bytes, tensors by digest, subgraphs recursively);
* initializers: each as its :func:`tensor_digest` (XXH3-128 of dtype, shape and values) under
  its canonical name; local functions.

It ignores what does not change the computation: doc strings, producer and model metadata,
model/graph/node names, inferred shapes of intermediates and outputs, and the *names* of internal
tensors (replaced by their order of first appearance, so renaming an intermediate keeps the hash).

Tensor digests are cached on the initializer's ``ir.Value`` (``meta``); a tensor-sharing clone
(:meth:`xflow.graphs.Graph.clone`) copies that cache, so hashing a rewrite candidate reads only
its new tensors, never the ~95 MB of weights it shares with its source.
"""
from __future__ import annotations

import hashlib
import logging
import struct
import sys
from typing import Any

import numpy as np
import onnx
import onnx_ir as ir
from onnx import helper, numpy_helper

__all__ = ["HASH_VERSION", "graph_hash", "model_hash", "tensor_digest", "array_digest", "value_digest",
           "attribute_bytes"]

#: Version of the hash encoding; part of every hash (bump on any change to what is hashed).
HASH_VERSION = 2

_DIGEST_KEY = "xflow.tensor_digest"

#: dtypes whose little-endian raw bytes equal ``numpy_helper.to_array(t).tobytes()``.
_RAW_OK = frozenset({
    onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16, onnx.TensorProto.INT8,
    onnx.TensorProto.UINT8, onnx.TensorProto.INT16, onnx.TensorProto.UINT16, onnx.TensorProto.INT32,
    onnx.TensorProto.UINT32, onnx.TensorProto.INT64, onnx.TensorProto.UINT64,
})


def _value_hasher():
    """XXH3-128 (``xxhash``, ~12x faster than SHA-256 here) for tensor values, else SHA-256.

    Tensor digests only need to tell different weights apart (cache keys, deduplication), not
    to resist adversaries, and weight bytes dominate hashing time. ``xxhash`` comes with
    torch_geometric; without it every hash differs from the ones computed with it (logged once).
    """
    global _XXH
    if _XXH is None:
        try:
            import xxhash

            _XXH = xxhash.xxh3_128
        except ImportError:  # pragma: no cover - xxhash ships with torch_geometric
            logging.getLogger(__name__).warning(
                "xxhash not installed: tensor digests use SHA-256 (hashes differ from xxhash installs)")
            _XXH = hashlib.sha256
    return _XXH()


_XXH = None


def array_digest(array: np.ndarray) -> bytes:
    """Digest (XXH3-128) of an array's ONNX dtype, shape and values."""
    arr = np.ascontiguousarray(array)
    try:
        dtype = helper.np_dtype_to_tensor_dtype(arr.dtype)
    except Exception:  # noqa: BLE001 - exotic dtype: hash numpy's own description
        dtype = arr.dtype.str
    h = _value_hasher()
    h.update(str(dtype).encode())
    h.update(str(list(arr.shape)).encode())
    if arr.dtype.kind in "OUS":
        h.update(repr(arr.tolist()).encode())
    else:
        h.update(memoryview(arr.view(np.uint8) if arr.ndim else arr.reshape(1).view(np.uint8)).cast("B"))
    return h.digest()


def tensor_digest(tensor: onnx.TensorProto | ir.TensorProtocol) -> bytes:
    """Digest of a tensor's dtype, shape and values (not its name); equal for the same values
    stored as ``raw_data`` or ``float_data``, as a ``TensorProto`` or an IR tensor."""
    if isinstance(tensor, onnx.TensorProto):
        if (sys.byteorder == "little" and tensor.data_type in _RAW_OK and tensor.HasField("raw_data")
                and tensor.data_location != onnx.TensorProto.EXTERNAL):
            h = _value_hasher()  # == array_digest(to_array(tensor)), without two copies
            h.update(str(tensor.data_type).encode())
            h.update(str(list(tensor.dims)).encode())
            h.update(tensor.raw_data)
            return h.digest()
        return array_digest(numpy_helper.to_array(tensor))
    return array_digest(np.asarray(tensor.numpy()))


def value_digest(value: ir.Value) -> bytes:
    """:func:`tensor_digest` of an initializer value, cached on the value (clones share it)."""
    d = value.meta.get(_DIGEST_KEY)
    if d is None:
        t = value.const_value
        raw = getattr(t, "raw", None)
        d = tensor_digest(raw if isinstance(raw, onnx.TensorProto) else t)
        value.meta[_DIGEST_KEY] = d
    return d


def _attr_bytes(a: ir.Attr, names: "_Names") -> bytes:
    t, v = a.type, a.value
    A = ir.AttributeType
    if t == A.INT:
        body = struct.pack("<q", int(v))
    elif t == A.FLOAT:
        body = struct.pack("<f", float(v))
    elif t == A.STRING:
        body = v.encode() if isinstance(v, str) else bytes(v)
    elif t == A.INTS:
        body = struct.pack(f"<{len(v)}q", *(int(x) for x in v))
    elif t == A.FLOATS:
        body = struct.pack(f"<{len(v)}f", *(float(x) for x in v))
    elif t == A.STRINGS:
        body = b"\x00".join(x.encode() if isinstance(x, str) else bytes(x) for x in v)
    elif t == A.TENSOR:
        body = tensor_digest(v)
    elif t == A.TENSORS:
        body = b"".join(tensor_digest(x) for x in v)
    elif t == A.GRAPH:
        body = _subgraph_bytes(v, names)
    elif t == A.GRAPHS:
        body = b"".join(_subgraph_bytes(g, names) for g in v)
    else:  # sparse tensors, type protos: their proto serialization
        body = ir.serde.serialize_attribute(a).SerializeToString(deterministic=True)
    head = f"{a.name}:{int(t)}".encode()
    return len(head).to_bytes(4, "little") + head + len(body).to_bytes(4, "little") + body


def attribute_bytes(a: ir.Attr) -> bytes:
    """Canonical bytes of one attribute (value, type and any subgraph, names canonicalized): equal
    bytes mean equal attributes. Used to fingerprint edits before their graph is built."""
    return _attr_bytes(a, _Names(set()))


class _Names:
    """Canonical tensor names: kept names stay, others become ``%i`` in order of first use."""

    def __init__(self, keep: set[str], parent: "_Names | None" = None) -> None:
        self.map: dict[str, str] = {n: n for n in keep}
        self.map[""] = ""
        self.parent = parent
        self.prefix = "" if parent is None else parent.prefix + "^"

    def __call__(self, name: str) -> str:
        m = self.map.get(name)
        if m is None:
            if self.parent is not None and self.parent.known(name):
                return self.parent(name)
            m = self.map[name] = f"{self.prefix}%{len(self.map)}"
        return m

    def known(self, name: str) -> bool:
        return name in self.map or (self.parent is not None and self.parent.known(name))


def _node_bytes(node: ir.Node, names: _Names) -> bytes:
    ins_ = [names(v.name) if v is not None else "" for v in node.inputs]
    outs_ = [names(v.name or "") for v in node.outputs]
    text = "\x00".join([node.domain, node.op_type, node.overload, str(len(ins_)), *ins_, *outs_]).encode()
    attrs = b"".join(_attr_bytes(node.attributes[k], names) for k in sorted(node.attributes)
                     if isinstance(node.attributes[k], ir.Attr))
    return len(text).to_bytes(4, "little") + text + len(attrs).to_bytes(4, "little") + attrs


def _subgraph_bytes(g: ir.Graph, outer: _Names) -> bytes:
    names = _Names(set(), parent=outer)
    parts = [f"in{len(g.inputs)}".encode()]
    for v in g.inputs:
        parts.append(names(v.name).encode() + str(v.type).encode())
    for name, v in sorted(g.initializers.items()):
        parts.append(names(name).encode() + value_digest(v))
    parts += [_node_bytes(n, names) for n in g]
    parts.append(" ".join(names(v.name) for v in g.outputs).encode())
    return b"".join(parts)


def graph_hash(graph: Any) -> str:
    """Stable hex digest of a graph's computation (see module docstring).

    ``graph`` is an :class:`xflow.graphs.Graph`, an ``onnx_ir.Model`` or an ``onnx.ModelProto``
    (a boundary: it is wrapped first). Two graphs that differ only in doc strings, metadata,
    model/graph/node names or intermediate tensor names hash equal; changing a weight, an
    attribute, an op, the wiring or the opset changes the hash.
    """
    if isinstance(graph, onnx.ModelProto):
        model = ir.serde.deserialize_model(graph)
    elif isinstance(graph, ir.Model):
        model = graph
    else:
        model = graph.ir
    g = model.graph
    h = hashlib.sha256(f"xflow-graph-hash-v{HASH_VERSION};".encode())
    for dom, ver in sorted((d or "ai.onnx", v) for d, v in model.opset_imports.items()):
        h.update(f"opset:{dom}:{ver};".encode())
    inputs = [v for v in g.inputs if v.const_value is None]
    names = _Names({v.name for v in g.inputs} | {v.name for v in g.outputs})
    h.update(b"inputs;")
    for v in inputs:
        dims = "?" if v.shape is None else ",".join(str(d) if isinstance(d, int) else "?" for d in v.shape.dims)
        h.update(f"{v.name}:{int(v.dtype) if v.dtype is not None else 0}:[{dims}];".encode())
    h.update(b"outputs;")
    h.update(";".join(v.name for v in g.outputs).encode())
    h.update(b"nodes;")
    for node in g:
        h.update(_node_bytes(node, names))
    h.update(b"initializers;")
    inits = g.initializers
    for name in sorted(inits):  # unused initializers get canonical names last, in name order
        names(name)
    for name in sorted(inits, key=names):
        h.update(names(name).encode())
        h.update(value_digest(inits[name]))
    for key in sorted(model.functions):
        fp = ir.serde.serialize_function(model.functions[key])
        fp.doc_string = ""
        h.update(fp.SerializeToString(deterministic=True))
    return h.hexdigest()[:32]


def model_hash(model: onnx.ModelProto) -> str:
    """:func:`graph_hash` of a ``ModelProto`` (the hash of the graph it holds)."""
    return graph_hash(model)
