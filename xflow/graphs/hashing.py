"""Stable content hash of an ONNX model.

``model_hash(m)`` is a SHA-256 (hex, first 16 bytes) over what the model *computes*:

* node op types, domains, attributes and wiring, in graph order;
* initializer values, dtypes and shapes — each initializer enters as its
  :func:`tensor_digest` (XXH3-128 of dtype, shape and normalised numpy bytes, so ``raw_data`` vs
  ``float_data`` storage does not matter) under its canonical name;
* graph input/output names and their declared types;
* the opset imports (sorted).

It ignores everything that does not change the computation: doc strings, producer name and
version, model/graph names, model version, metadata properties, node names, ``value_info``
(derived by shape inference) and the *names* of internal tensors (they are replaced by their
order of first appearance, so renaming an intermediate tensor keeps the hash).
Used as a cache key for exported models, rewrite results and measurements.

Hashing per-tensor digests (instead of streaming every weight byte into one hash) lets callers
that know a tensor is unchanged pass its digest in: ``model_hash(m, known_digests=d)`` with
``d = initializer_digests(source)``. The rewrite candidates of Inception-v3 share ~95 MB of
weights with their source, so each candidate's hash only reads its new tensors and the graph
structure (:mod:`xflow.rewrites.candidates`). Without hints the result is the same.
"""
from __future__ import annotations

import hashlib
import logging
import sys
from typing import Iterable, Mapping

import onnx
import numpy as np
from onnx import helper, numpy_helper

__all__ = ["model_hash", "tensor_digest", "array_digest", "initializer_digests"]


def _canonical_names(graph: onnx.GraphProto) -> dict[str, str]:
    """Map internal tensor names to ``%i`` in order of first appearance (inputs/outputs kept)."""
    keep = {v.name for v in graph.input} | {v.name for v in graph.output}
    mapping: dict[str, str] = {n: n for n in keep}
    mapping[""] = ""

    def see(name: str) -> None:
        if name not in mapping:
            mapping[name] = f"%{len(mapping)}"

    for node in graph.node:
        for n in node.input:
            see(n)
        for n in node.output:
            see(n)
    for init in sorted(graph.initializer, key=lambda t: t.name):
        see(init.name)  # unused initializers last, in name order
    return mapping


def _strip_node(node: onnx.NodeProto, mapping: dict[str, str]) -> onnx.NodeProto:
    n = onnx.NodeProto()
    n.CopyFrom(node)
    n.name = ""
    n.doc_string = ""
    if hasattr(n, "metadata_props"):
        n.ClearField("metadata_props")
    n.input[:] = [mapping.get(x, x) for x in node.input]
    n.output[:] = [mapping.get(x, x) for x in node.output]
    for attr in n.attribute:
        attr.doc_string = ""
        subgraphs = ([attr.g] if attr.HasField("g") else []) + list(attr.graphs)
        for sg in subgraphs:
            _strip_subgraph(sg, mapping)
    return n


def _node_bytes(node: onnx.NodeProto, mapping: dict[str, str]) -> bytes:
    """Canonical bytes of one node: op, domain, renamed wiring and attributes (names/docs dropped)."""
    if any(a.HasField("g") or len(a.graphs) or a.doc_string for a in node.attribute):
        return b"N" + _strip_node(node, mapping).SerializeToString(deterministic=True)
    parts = [node.domain, node.op_type, node.overload, str(len(node.input)),
             *(mapping.get(x, x) for x in node.input), *(mapping.get(x, x) for x in node.output)]
    text = "\x00".join(parts).encode()
    attrs = b"".join(len(b).to_bytes(4, "little") + b
                     for b in (a.SerializeToString(deterministic=True) for a in node.attribute))
    return b"F" + len(text).to_bytes(4, "little") + text + len(attrs).to_bytes(4, "little") + attrs


def _strip_subgraph(graph: onnx.GraphProto, outer: dict[str, str]) -> None:
    """In place: drop names/doc strings of a control-flow body; rename outer-scope references."""
    graph.name = ""
    graph.doc_string = ""
    graph.ClearField("value_info")
    for node in graph.node:
        stripped = _strip_node(node, outer)
        node.CopyFrom(stripped)


#: dtypes whose little-endian ``raw_data`` equals ``numpy_helper.to_array(t).tobytes()``.
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


def tensor_digest(tensor: onnx.TensorProto) -> bytes:
    """Digest (XXH3-128, see :func:`_value_hasher`) of a tensor's dtype, shape and values (not its name).

    Values are hashed as normalised numpy bytes, so the same values stored in ``raw_data`` or
    in ``float_data``/``int64_data`` give the same digest.
    """
    h = _value_hasher()
    h.update(str(tensor.data_type).encode())
    h.update(str(list(tensor.dims)).encode())
    if (sys.byteorder == "little" and tensor.data_type in _RAW_OK and tensor.HasField("raw_data")
            and tensor.data_location != onnx.TensorProto.EXTERNAL):
        h.update(tensor.raw_data)  # == to_array(tensor).tobytes(), without two copies
        return h.digest()
    try:
        arr = numpy_helper.to_array(tensor)
        h.update(arr.tobytes())
    except Exception:  # external data not loaded, exotic dtype: hash the proto fields instead
        t = onnx.TensorProto()
        t.CopyFrom(tensor)
        t.name = ""
        t.doc_string = ""
        h.update(t.SerializeToString(deterministic=True))
    return h.digest()


def array_digest(array: np.ndarray) -> bytes:
    """``tensor_digest(numpy_helper.from_array(array))`` without building the TensorProto."""
    arr = np.ascontiguousarray(array)
    try:
        dtype = helper.np_dtype_to_tensor_dtype(arr.dtype)
    except Exception:  # noqa: BLE001 - exotic dtype: take the slow, certainly-equal path
        dtype = None
    if dtype not in _RAW_OK or sys.byteorder != "little":
        return tensor_digest(numpy_helper.from_array(arr))
    h = _value_hasher()
    h.update(str(dtype).encode())
    h.update(str(list(arr.shape)).encode())
    h.update(memoryview(arr).cast("B"))
    return h.digest()


def initializer_digests(model: onnx.ModelProto) -> dict[str, bytes]:
    """``{initializer name: tensor_digest}`` for every initializer of ``model``'s main graph."""
    return {t.name: tensor_digest(t) for t in model.graph.initializer}


def _update_value_infos(h, infos: Iterable[onnx.ValueInfoProto]) -> None:
    for vi in infos:
        v = onnx.ValueInfoProto()
        v.CopyFrom(vi)
        v.doc_string = ""
        h.update(v.SerializeToString(deterministic=True))


def model_hash(model: onnx.ModelProto, *, known_digests: Mapping[str, bytes] | None = None) -> str:
    """Return a stable hex digest of ``model``'s computation (see module docstring).

    Two models that differ only in doc strings, producer metadata, model/graph/node names
    or intermediate tensor names hash equal; changing a weight, an attribute, an op, the
    wiring or the opset changes the hash.

    Args:
        model: the model.
        known_digests: optional ``{initializer name: tensor_digest}`` for initializers the caller
            knows to be unchanged (e.g. shared with the model a rewrite started from); those
            tensors are not read. A wrong hint gives a wrong hash, so only pass digests of
            tensors that are byte-identical.
    """
    graph = model.graph
    mapping = _canonical_names(graph)
    h = hashlib.sha256()
    for op in sorted((o.domain or "ai.onnx", o.version) for o in model.opset_import):
        h.update(f"opset:{op[0]}:{op[1]};".encode())
    h.update(b"inputs;")
    inits = {t.name for t in graph.initializer}
    _update_value_infos(h, (v for v in graph.input if v.name not in inits))
    h.update(b"outputs;")
    _update_value_infos(h, graph.output)
    h.update(b"nodes;")
    for node in graph.node:
        h.update(_node_bytes(node, mapping))
    h.update(b"initializers;")
    known = known_digests or {}
    for init in sorted(graph.initializer, key=lambda t: mapping.get(t.name, t.name)):
        h.update(mapping.get(init.name, init.name).encode())
        digest = known.get(init.name)
        h.update(digest if digest is not None else tensor_digest(init))
    for sp in graph.sparse_initializer:
        t = onnx.SparseTensorProto()
        t.CopyFrom(sp)
        h.update(t.SerializeToString(deterministic=True))
    for fn in sorted(model.functions, key=lambda f: (f.domain, f.name)):
        f = onnx.FunctionProto()
        f.CopyFrom(fn)
        f.doc_string = ""
        h.update(f.SerializeToString(deterministic=True))
    return h.hexdigest()[:32]
