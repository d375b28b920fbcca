"""Graph clean-up passes run before clustering: constant propagation and dead-code elimination.

*Constant propagation* evaluates every node whose inputs are all known at compile time
(initializers, ``Constant`` nodes, ``Shape`` of a statically shaped tensor, and the results of other
folded nodes) and replaces its outputs by initializers. *Dead-code elimination* removes nodes none of
whose outputs reach a graph output, and initializers nobody reads. Both return how much they removed,
so the compiler can report it (the Ramiel paper reports the same two passes).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

__all__ = ["PassStats", "propagate_constants", "eliminate_dead_code"]

log = logging.getLogger(__name__)

# Ops never folded even with constant inputs (random or side effects).
_NEVER_FOLD = frozenset({"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
                         "Multinomial", "Bernoulli"})
# Don't materialise huge constants (e.g. ConstantOfShape of a feature map).
_MAX_FOLD_ELEMENTS = 1 << 22


@dataclass
class PassStats:
    """What the clean-up passes removed."""

    const_nodes_folded: int = 0
    dead_nodes_removed: int = 0
    dead_initializers_removed: int = 0

    def as_dict(self) -> dict[str, int]:
        """Plain dict (JSON record)."""
        return dict(self.__dict__)


def _static_shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    out: dict[str, tuple[int, ...]] = {}
    g = model.graph
    for vi in list(g.value_info) + list(g.input) + list(g.output):
        t = vi.type.tensor_type
        if not t.HasField("shape"):
            continue
        dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
        if all(d is not None for d in dims):
            out[vi.name] = tuple(int(d) for d in dims)
    return out


def _eval_node(node: onnx.NodeProto, vals: list[np.ndarray | None], opset: int) -> list[np.ndarray]:
    from onnx.reference import ReferenceEvaluator

    names = [f"i{k}" if v is not None else "" for k, v in enumerate(vals)]
    n2 = helper.make_node(node.op_type, names, [f"o{k}" for k in range(len(node.output))],
                          domain=node.domain)
    n2.attribute.extend(node.attribute)
    feeds = {nm: v for nm, v in zip(names, vals) if nm}
    ins = [helper.make_tensor_value_info(nm, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
           for nm, v in feeds.items()]
    outs = [helper.make_tensor_value_info(f"o{k}", onnx.TensorProto.UNDEFINED, None)
            for k in range(len(node.output))]
    g = helper.make_graph([n2], "fold", ins, outs)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    return list(ReferenceEvaluator(m).run(None, feeds))


def propagate_constants(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """Fold every compile-time-constant node into initializers.

    Returns ``(new_model, n_nodes_folded)``; the input model is not modified. A node is constant if
    it is a ``Constant``, a ``Shape`` of a tensor whose shape is static, or all its (non-empty)
    inputs are initializers or outputs of folded nodes.
    """
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    opset = next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), 17)
    consts: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    graph_inputs = {i.name for i in g.input} - set(consts)
    shapes = _static_shapes(m)
    keep: list[onnx.NodeProto] = []
    new_inits: dict[str, np.ndarray] = {}
    folded = 0
    for node in g.node:
        vals: list[np.ndarray | None] | None = None
        if node.op_type == "Constant":
            vals = None
            outs = _eval_node(node, [], opset)
        elif node.op_type == "Shape" and node.input[0] in shapes and not node.attribute:
            outs = [np.asarray(shapes[node.input[0]], dtype=np.int64)]
        elif (node.op_type not in _NEVER_FOLD and node.domain in ("", "ai.onnx")
              and node.input and all((not i) or (i in consts and i not in graph_inputs)
                                     for i in node.input)):
            vals = [consts[i] if i else None for i in node.input]
            try:
                outs = _eval_node(node, vals, opset)
            except Exception as exc:  # noqa: BLE001 - leave the node in place
                log.debug("could not fold %s (%s): %s", node.name, node.op_type, exc)
                keep.append(node)
                continue
            if any(np.asarray(o).size > _MAX_FOLD_ELEMENTS for o in outs):
                keep.append(node)
                continue
        else:
            keep.append(node)
            continue
        folded += 1
        for name, val in zip(node.output, outs):
            if name:
                consts[name] = np.asarray(val)
                new_inits[name] = np.asarray(val)
    del g.node[:]
    g.node.extend(keep)
    g.initializer.extend(numpy_helper.from_array(v, name=k) for k, v in new_inits.items())
    # tensors that became initializers no longer need value_info entries
    vis = [vi for vi in g.value_info if vi.name not in new_inits]
    del g.value_info[:]
    g.value_info.extend(vis)
    return m, folded


def eliminate_dead_code(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int, int]:
    """Remove nodes that no graph output depends on and initializers that nothing reads.

    Returns ``(new_model, n_nodes_removed, n_initializers_removed)``.
    """
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    live = {o.name for o in g.output}
    keep_rev: list[onnx.NodeProto] = []
    for node in reversed(list(g.node)):
        if any(o in live for o in node.output):
            keep_rev.append(node)
            live.update(i for i in node.input if i)
    removed = len(g.node) - len(keep_rev)
    del g.node[:]
    g.node.extend(reversed(keep_rev))
    inits = [i for i in g.initializer if i.name in live]
    removed_inits = len(g.initializer) - len(inits)
    del g.initializer[:]
    g.initializer.extend(inits)
    ginputs = [i for i in g.input if i.name in live or i.name not in {x.name for x in model.graph.initializer}]
    del g.input[:]
    g.input.extend(ginputs)
    return m, removed, removed_inits
