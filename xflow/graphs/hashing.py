"""Stable content hash of an ONNX model.

``model_hash(m)`` is a SHA-256 (hex, first 16 bytes) over what the model *computes*:

* node op types, domains, attributes and wiring, in graph order;
* initializer values (as normalised numpy bytes, so ``raw_data`` vs ``float_data`` storage
  does not matter), dtypes and shapes;
* graph input/output names and their declared types;
* the opset imports (sorted).

It ignores everything that does not change the computation: doc strings, producer name and
version, model/graph names, model version, metadata properties, node names, ``value_info``
(derived by shape inference) and the *names* of internal tensors (they are replaced by their
order of first appearance, so renaming an intermediate tensor keeps the hash).
Used as a cache key for exported models, rewrite results and measurements.
"""
from __future__ import annotations

import hashlib
from typing import Iterable

import onnx
from onnx import numpy_helper

__all__ = ["model_hash"]


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


def _strip_subgraph(graph: onnx.GraphProto, outer: dict[str, str]) -> None:
    """In place: drop names/doc strings of a control-flow body; rename outer-scope references."""
    graph.name = ""
    graph.doc_string = ""
    graph.ClearField("value_info")
    for node in graph.node:
        stripped = _strip_node(node, outer)
        node.CopyFrom(stripped)


def _update_tensor(h, tensor: onnx.TensorProto, name: str) -> None:
    h.update(name.encode())
    h.update(str(tensor.data_type).encode())
    h.update(str(list(tensor.dims)).encode())
    try:
        arr = numpy_helper.to_array(tensor)
        h.update(arr.tobytes())
    except Exception:  # external data not loaded, exotic dtype: hash the proto fields instead
        t = onnx.TensorProto()
        t.CopyFrom(tensor)
        t.name = ""
        t.doc_string = ""
        h.update(t.SerializeToString(deterministic=True))


def _update_value_infos(h, infos: Iterable[onnx.ValueInfoProto]) -> None:
    for vi in infos:
        v = onnx.ValueInfoProto()
        v.CopyFrom(vi)
        v.doc_string = ""
        h.update(v.SerializeToString(deterministic=True))


def model_hash(model: onnx.ModelProto) -> str:
    """Return a stable hex digest of ``model``'s computation (see module docstring).

    Two models that differ only in doc strings, producer metadata, model/graph/node names
    or intermediate tensor names hash equal; changing a weight, an attribute, an op, the
    wiring or the opset changes the hash.
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
        h.update(_strip_node(node, mapping).SerializeToString(deterministic=True))
    h.update(b"initializers;")
    for init in sorted(graph.initializer, key=lambda t: mapping.get(t.name, t.name)):
        _update_tensor(h, init, mapping.get(init.name, init.name))
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
