"""Shape inference for the IR: run once per graph, written back onto its values.

ONNX's shape inference works on a ``ModelProto``. It needs the *values* only of small constants
(Reshape targets, Split sizes, Slice bounds: data propagation), and only the type and shape of
the weights, so both entry points hand it a skeleton in which every initializer of more than
:data:`KEEP_NUMEL` elements is a typed graph input without data (after onnx-ir's
``call_onnx_api``): no weight bytes are copied, which keeps inference on an Inception-v3 graph
in milliseconds.

* :func:`infer_model_shapes` — the whole graph (a model loaded without shapes);
* :func:`infer_node_shapes` — only some nodes (the ones a rewrite added: every other value keeps
  the shape it had, because a rewrite preserves what the rest of the graph computes).

Both write the inferred types and shapes onto the ``ir.Value`` objects in place.
"""
from __future__ import annotations

import logging
import math
from typing import Callable, Iterable

import numpy as np
import onnx
import onnx_ir as ir
from onnx import helper

__all__ = ["KEEP_NUMEL", "skeleton", "infer_model_shapes", "infer_node_shapes", "write_back"]

log = logging.getLogger(__name__)

#: Initializers with at most this many elements keep their values in the skeleton.
KEEP_NUMEL = 64


def skeleton(proto: onnx.ModelProto, keep_numel: int = KEEP_NUMEL) -> onnx.ModelProto:
    """``proto`` with every initializer of more than ``keep_numel`` elements turned into a typed
    graph input without data (nodes, small constants, inputs and outputs unchanged)."""
    sk = onnx.ModelProto()
    sk.ir_version = proto.ir_version
    sk.opset_import.extend(proto.opset_import)
    sk.functions.extend(proto.functions)
    g, src = sk.graph, proto.graph
    g.name = src.name
    g.node.extend(src.node)
    g.input.extend(src.input)
    g.output.extend(src.output)
    g.value_info.extend(src.value_info)
    declared = {vi.name for vi in src.input}
    for t in src.initializer:
        if math.prod(t.dims) <= keep_numel and t.data_location != onnx.TensorProto.EXTERNAL:
            g.initializer.append(t)
        elif t.name not in declared:
            g.input.append(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    return sk


def write_back(graph: ir.Graph, inferred: onnx.GraphProto, names: Iterable[str] | None = None) -> int:
    """Copy the types and shapes ``inferred`` found onto ``graph``'s values (main graph only);
    with ``names`` only onto those values. Returns how many values changed."""
    values: dict[str, ir.Value] = {v.name: v for v in graph.inputs}
    values.update(graph.initializers)
    for n in graph:
        for o in n.outputs:
            if o.name:
                values[o.name] = o
    wanted = None if names is None else set(names)
    changed = 0
    for vi in list(inferred.value_info) + list(inferred.output):
        v = values.get(vi.name)
        if v is None or (wanted is not None and vi.name not in wanted) or not vi.type.HasField("tensor_type"):
            continue
        tt = vi.type.tensor_type
        dtype = ir.DataType(tt.elem_type) if tt.elem_type else None
        shape = ir.serde.deserialize_type_proto_for_shape(vi.type) if tt.HasField("shape") else None
        if dtype is not None and v.dtype != dtype:
            v.dtype = dtype
            changed += 1
        if shape is not None and v.shape != shape:
            v.shape = shape
            changed += 1
    return changed


def infer_model_shapes(model: ir.Model, proto: onnx.ModelProto | None = None, *, strict: bool = False) -> int:
    """Infer every shape of ``model`` once and write it onto its values (in place).

    ``proto`` is the same model as a ``ModelProto`` when the caller has it (saves serializing the
    graph). With ``strict`` a failure raises ``onnx.shape_inference.InferenceError``; otherwise
    it is logged and the model keeps the shapes it had. Returns how many values changed.
    """
    if proto is None:
        proto = _skeleton_of(model)
    try:
        inferred = onnx.shape_inference.infer_shapes(skeleton(proto), strict_mode=strict, data_prop=True)
    except Exception as exc:  # noqa: BLE001 - features and costs degrade to unknown shapes
        if strict:
            raise
        log.debug("shape inference failed: %s", exc)
        return 0
    return write_back(model.graph, inferred.graph)


def _skeleton_of(model: ir.Model) -> onnx.ModelProto:
    """The skeleton (see :func:`skeleton`) built straight from an IR model, weights left out."""
    g = model.graph
    inputs = [ir.serde.serialize_value(v) for v in g.inputs]
    declared = {v.name for v in g.inputs}
    inits = []
    for name, v in g.initializers.items():
        t = v.const_value
        if t is not None and t.size <= KEEP_NUMEL:
            inits.append(ir.serde.serialize_tensor(t))
            inits[-1].name = name
        elif name not in declared:
            inputs.append(helper.make_tensor_value_info(name, int(v.dtype), list(v.shape.dims)))
    nodes = [ir.serde.serialize_node(n) for n in g]
    outputs = [ir.serde.serialize_value(v) for v in g.outputs]
    gp = helper.make_graph(nodes, g.name or "graph", inputs, outputs, initializer=inits)
    m = helper.make_model(gp, opset_imports=[helper.make_opsetid(d, v) for d, v in model.opset_imports.items()])
    m.ir_version = model.ir_version
    m.functions.extend(ir.serde.serialize_function(f) for f in model.functions.values())
    return m


def infer_node_shapes(nodes: list[ir.Node], *, opset_imports: dict[str, int], ir_version: int,
                      const: Callable[[str], np.ndarray | None],
                      functions: Iterable[ir.Function] = ()) -> int:
    """Infer the output shapes of ``nodes`` only (in place), from the shapes of what they read.

    The nodes are cut out as a small model: every value they read but do not produce becomes a
    typed input, or an initializer when ``const(name)`` knows it and it is small (so data
    propagation sees Reshape targets and Split sizes). Returns how many values changed.
    """
    produced = {o.name for n in nodes for o in n.outputs if o.name}
    boundary: dict[str, ir.Value] = {}
    for n in nodes:
        for v in n.inputs:
            if v is not None and v.name and v.name not in produced:
                boundary.setdefault(v.name, v)
    inputs, inits = [], []
    for name, v in boundary.items():
        c = const(name)
        if c is not None and c.size <= KEEP_NUMEL:
            inits.append(onnx.numpy_helper.from_array(np.asarray(c), name))
        elif v.dtype is not None:
            dims = list(v.shape.dims) if v.shape is not None else None
            dims = None if dims is None else [d if isinstance(d, int) else (d.value or None) for d in dims]
            inputs.append(helper.make_tensor_value_info(name, int(v.dtype), dims))
    outputs = [helper.make_empty_tensor_value_info(o) for o in sorted(produced)]
    gp = helper.make_graph([ir.serde.serialize_node(n) for n in nodes], "local", inputs, outputs,
                           initializer=inits)
    m = helper.make_model(gp, opset_imports=[helper.make_opsetid(d, v) for d, v in opset_imports.items()])
    m.ir_version = ir_version
    m.functions.extend(ir.serde.serialize_function(f) for f in functions)
    try:
        inferred = onnx.shape_inference.infer_shapes(m, data_prop=True)
    except Exception as exc:  # noqa: BLE001 - the new values stay untyped
        log.debug("local shape inference failed: %s", exc)
        return 0
    values = {o.name: o for n in nodes for o in n.outputs if o.name}
    changed = 0
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
        v = values.get(vi.name)
        if v is None or not vi.type.HasField("tensor_type"):
            continue
        tt = vi.type.tensor_type
        if tt.elem_type and v.dtype != ir.DataType(tt.elem_type):
            v.dtype = ir.DataType(tt.elem_type)
            changed += 1
        if tt.HasField("shape"):
            shape = ir.serde.deserialize_type_proto_for_shape(vi.type)
            if shape is not None and v.shape != shape:
                v.shape = shape
                changed += 1
    return changed
