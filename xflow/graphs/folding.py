"""The one constant-folding and dead-code-elimination pass of xflow (on the IR, in place).

Exporters emit weights as ``Constant`` nodes, ``Constant -> Identity`` chains, ``ConstantOfShape``
fills or small shape arithmetic (``Shape -> Gather -> Unsqueeze -> Concat -> Reshape``), and
sometimes ``Dropout`` that does nothing at inference. Rewrite rules, features, FLOP counts and the
parallelizer's code generator all want real weights as initializers and no dead nodes, so
:func:`fold` walks the nodes in topological order and

* **folds** a node when it is a ``Constant``, or every non-empty input is constant (an initializer
  or the output of a folded node), or it is ``Shape``/``Size`` of a tensor whose shape is static —
  provided it is deterministic (no ``Random*``/``Multinomial``/``Bernoulli``), in the default
  domain and has no subgraph; values come from ``onnx.reference`` (numpy). A result larger than
  ``max_elements`` *and* than the node's inputs (``Expand`` of a scalar to an activation) is kept
  as a node (counted in ``skipped_large``), so folding never blows the model up;
* resolves ``Identity`` of a constant **by name**: its readers read the source initializer, so
  weights shared through ``Identity`` are never duplicated;
* **bypasses inference-mode Dropout** (no ``training_mode`` input, or a constant false one, and an
  unused mask output): its readers read its input;
* keeps a folded **graph output** produced by a ``Constant`` node (ONNX outputs must be produced
  by a node), and an ``Identity`` whose output is a graph output;
* then (``dce``) removes nodes no graph output depends on — reads inside ``If``/``Loop``/``Scan``
  bodies count — and initializers nothing reads.

:class:`FoldStats` counts each kind of change (the Ramiel paper reports the same two passes).
:func:`fold_proto` / :func:`fold_constants` are the same pass for a ``ModelProto`` (a boundary).
It covers what ``graphs/folding.py`` and ``parallel/passes.py`` each did before (the Identity
aliasing, size caps and re-emitted graph outputs of the first; Dropout, and dead-code elimination
with counts of the second), and reads inside control-flow bodies keep nodes alive.
"""
from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass

import numpy as np
import onnx
import onnx_ir as ir

from xflow.graphs.ir import DEFAULT_DOMAINS, attrs, has_subgraph, node_reads, static_shape
from xflow.graphs.ir import constant_value
from xflow.graphs.shapes import infer_model_shapes

__all__ = ["FoldStats", "fold", "eliminate_dead_code", "fold_constants", "fold_proto", "NON_DETERMINISTIC_OPS",
           "MAX_FOLD_ELEMENTS"]

log = logging.getLogger(__name__)

#: Ops that are never folded: their output changes from run to run.
NON_DETERMINISTIC_OPS = frozenset(
    {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial", "Bernoulli"}
)
#: Default cap on a folded result (elements) when it is also larger than the node's inputs.
MAX_FOLD_ELEMENTS = 1 << 22


@dataclass
class FoldStats:
    """What :func:`fold` changed."""

    const_nodes_folded: int = 0
    identities_resolved: int = 0
    dropouts_removed: int = 0
    skipped_large: int = 0
    dead_nodes_removed: int = 0
    dead_initializers_removed: int = 0

    @property
    def changed(self) -> bool:
        """Whether the pass changed anything."""
        return any(asdict(self).values())

    def as_dict(self) -> dict[str, int]:
        """Plain dict (JSON record)."""
        return asdict(self)


def _evaluate(node: ir.Node, values: list[np.ndarray | None], opset: int) -> list[np.ndarray]:
    if node.op_type == "Constant":
        c = constant_value(node)
        if c is not None:
            return [c]
    from onnx.reference import ReferenceEvaluator

    proto = ir.serde.serialize_node(node)
    proto.name = proto.name or "fold"
    feeds = {name: v for name, v in zip(proto.input, values) if name}
    res = ReferenceEvaluator(proto, opsets={"": opset}).run(None, feeds)
    return [np.asarray(r) for r in res]


def _inference_dropout(node: ir.Node, const_of) -> bool:
    """A Dropout that is the identity: no training_mode, or a constant false one; mask unused."""
    if node.op_type != "Dropout" or node.domain not in DEFAULT_DOMAINS or not node.inputs or node.inputs[0] is None:
        return False
    if len(node.outputs) > 1 and node.outputs[1].name and node.outputs[1].uses():
        return False
    if len(node.inputs) > 2 and node.inputs[2] is not None:
        mode = const_of(node.inputs[2])
        return mode is not None and not bool(np.asarray(mode).reshape(-1)[0])
    return True


def _replace_uses(old: ir.Value, new: ir.Value) -> None:
    for user, index in list(old.uses()):
        user.replace_input_with(index, new)


def fold(model: ir.Model, *, max_elements: int = MAX_FOLD_ELEMENTS, constants: bool = True,
         dce: bool = True) -> FoldStats:
    """Fold constants (``constants``) and eliminate dead code (``dce``) in ``model``, in place.

    See the module docstring. Returns the :class:`FoldStats`.
    """
    stats = FoldStats()
    if constants:
        _fold_constants(model, max_elements, stats)
    if dce:
        eliminate_dead_code(model, stats)
    if stats.changed:
        log.info("fold: %s", {k: v for k, v in stats.as_dict().items() if v})
    return stats


def _fold_constants(model: ir.Model, max_elements: int, stats: FoldStats) -> None:
    g = model.graph
    opset = int(model.opset_imports.get("", model.opset_imports.get("ai.onnx", 17)))
    outputs = set(id(v) for v in g.outputs)
    cache: dict[int, np.ndarray] = {}

    def const_of(v: ir.Value | None) -> np.ndarray | None:
        if v is None:
            return None
        if v.const_value is None or v.is_graph_input():
            return None
        key = id(v)
        if key not in cache:
            cache[key] = np.asarray(v.const_value.numpy())
        return cache[key]

    for node in list(g):
        out_vals = [o for o in node.outputs if o.name]
        if node.domain not in DEFAULT_DOMAINS or has_subgraph(node) or not out_vals:
            continue
        first = node.inputs[0] if node.inputs else None
        if node.op_type == "Identity" and first is not None and const_of(first) is not None:
            out = node.outputs[0]
            if id(out) in outputs:
                continue  # the graph output keeps its Identity
            _replace_uses(out, first)
            _detach(g, node)
            stats.identities_resolved += 1
            continue
        if _inference_dropout(node, const_of):
            out = node.outputs[0]
            if id(out) in outputs:
                continue
            _replace_uses(out, first)
            _detach(g, node)
            stats.dropouts_removed += 1
            continue
        if node.op_type in NON_DETERMINISTIC_OPS or node.op_type == "Dropout":
            continue
        results: list[np.ndarray] | None = None
        shp = static_shape(first.shape) if first is not None else None
        if node.op_type in ("Shape", "Size") and shp is not None:
            if node.op_type == "Size":
                results = [np.array(math.prod(shp), np.int64)]
            else:
                a = attrs(node)
                results = [np.array(shp[a.get("start", 0):a.get("end", len(shp))], np.int64)]
        elif all(v is None or const_of(v) is not None for v in node.inputs):
            vals = [const_of(v) for v in node.inputs]
            try:
                results = _evaluate(node, vals, opset)
            except Exception as exc:  # noqa: BLE001 - leave it to the runtime
                log.debug("could not fold %s (%s): %s", node.name, node.op_type, exc)
                continue
            in_size = sum(int(v.size) for v in vals if v is not None)
            out_size = sum(int(r.size) for r in results)
            if out_size > max_elements and out_size > in_size:
                log.debug("not folding %s: result of %d elements", node.name, out_size)
                stats.skipped_large += 1
                continue
        if results is None:
            continue
        stats.const_nodes_folded += 1
        for out, r in zip(node.outputs, results):
            if not out.name:
                continue
            if id(out) in outputs:  # a graph output must stay produced by a node
                keep = ir.Value(name=out.name, shape=ir.Shape(r.shape), type=ir.TensorType(ir.DataType.from_numpy(r.dtype)))
                const_node = ir.Node("", "Constant", [], [ir.AttrTensor("value", ir.tensor(r))],
                                     outputs=[keep], name=_fresh_node_name(g, f"{out.name}_folded_constant"))
                _replace_uses(out, keep)
                g.outputs[[i for i, v in enumerate(g.outputs) if v is out][0]] = keep
                g.insert_before(node, const_node)
                outputs.discard(id(out))
                outputs.add(id(keep))
                continue
            init = ir.Value(name=out.name, const_value=ir.tensor(r, name=out.name))
            init.shape, init.dtype = ir.Shape(r.shape), ir.DataType.from_numpy(r.dtype)
            cache[id(init)] = r
            _replace_uses(out, init)
            _detach(g, node)
            g.register_initializer(init)
        if node.graph is g:
            _detach(g, node)


def _fresh_node_name(g: ir.Graph, base: str) -> str:
    taken = {n.name for n in g}
    name, k = base, 1
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    return name


def _detach(g: ir.Graph, node: ir.Node) -> None:
    """Remove ``node`` from ``g`` (no longer a user of its inputs)."""
    if node.graph is not g:
        return
    for i in range(len(node.inputs)):
        node.replace_input_with(i, None)
    g.remove(node)


def eliminate_dead_code(model: ir.Model, stats: FoldStats | None = None) -> FoldStats:
    """Remove nodes no graph output depends on and initializers nothing reads, in place."""
    stats = stats if stats is not None else FoldStats()
    g = model.graph
    live = {v.name for v in g.outputs}
    dead = []
    for n in reversed(list(g)):
        if any(o.name in live for o in n.outputs if o.name):
            live.update(node_reads(n))
        else:
            dead.append(n)
    for n in dead:
        for i in range(len(n.inputs)):
            n.replace_input_with(i, None)
    if dead:
        g.remove(dead)
    stats.dead_nodes_removed += len(dead)
    for name, v in list(g.initializers.items()):
        if not v.uses() and not v.is_graph_output():
            if v.is_graph_input():
                continue
            del g.initializers[name]
            stats.dead_initializers_removed += 1
    return stats


def fold_proto(model: onnx.ModelProto, *, max_elements: int = MAX_FOLD_ELEMENTS, constants: bool = True,
               dce: bool = True) -> tuple[onnx.ModelProto, FoldStats]:
    """:func:`fold` for a ``ModelProto`` (a boundary): a folded copy and the counts; ``model`` is
    not modified (its shapes are inferred first when missing, for ``Shape``/``Size`` folding)."""

    m = ir.serde.deserialize_model(model)
    if any(o.name and o.shape is None for n in m.graph for o in n.outputs):
        infer_model_shapes(m, model)
    stats = fold(m, max_elements=max_elements, constants=constants, dce=dce)
    return ir.serde.serialize_model(m), stats


def fold_constants(model: onnx.ModelProto, *, max_elements: int = MAX_FOLD_ELEMENTS,
                   dce: bool = True) -> onnx.ModelProto:
    """:func:`fold_proto` without the counts: a folded copy of ``model``."""
    return fold_proto(model, max_elements=max_elements, dce=dce)[0]
