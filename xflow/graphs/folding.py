"""Constant folding: evaluate constant subgraphs once and store their results as initializers.

Exporters often emit weights as ``Constant`` nodes, ``Constant -> Identity`` chains,
``ConstantOfShape`` fills or small shape arithmetic (``Shape -> Gather -> Unsqueeze ->
Concat -> Reshape``). Downstream passes (rewrite rules, PyG features, FLOP estimates) want
to see real weights as initializers, so :func:`fold_constants` walks the nodes in
topological order and folds a node when

* it is a ``Constant`` (no inputs), or every non-empty input is already constant
  (an initializer or the output of a folded node), or
* it is ``Shape``/``Size`` of a tensor whose shape is fully static after shape inference,

and the node is deterministic (no ``Random*``/``Multinomial``/``Bernoulli``), in the default
ONNX domain, and carries no subgraph (``If``/``Loop``/``Scan`` are left alone).
Values are computed with ``onnx.reference.ReferenceEvaluator`` (numpy), with a fast path for
``Constant``; an ``Identity`` of a constant is resolved by *name* (its consumers read the
source initializer directly), so weights shared through ``Identity`` are never duplicated. A node whose result would be larger than ``max_elements``
*and* larger than its inputs (e.g. ``Expand`` of a scalar to an activation-sized tensor) is
kept, so folding never blows up the model. Folded tensors that are graph outputs are
re-emitted as ``Constant`` nodes (ONNX outputs must be produced by a node). Initializers no
longer referenced afterwards are dropped.
"""
from __future__ import annotations

import logging

import numpy as np
import onnx
from onnx import helper, numpy_helper

__all__ = ["fold_constants", "NON_DETERMINISTIC_OPS"]

log = logging.getLogger(__name__)

#: Ops that must never be folded: their output changes from run to run.
NON_DETERMINISTIC_OPS = frozenset(
    {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial",
     "Bernoulli", "Dropout"}
)
_DEFAULT_DOMAINS = ("", "ai.onnx")


def _has_subgraph(node: onnx.NodeProto) -> bool:
    return any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
               for a in node.attribute)


def _subgraph_references(graph: onnx.GraphProto) -> set[str]:
    """Every tensor name read by a node inside any (nested) subgraph of ``graph``'s nodes."""
    refs: set[str] = set()

    def walk(g: onnx.GraphProto) -> None:
        for node in g.node:
            for a in node.attribute:
                subs = ([a.g] if a.HasField("g") else []) + list(a.graphs)
                for sg in subs:
                    for n in sg.node:
                        refs.update(n.input)
                    walk(sg)

    walk(graph)
    return refs


def _rename_inputs(graph: onnx.GraphProto, mapping: dict[str, str]) -> None:
    """In place: replace node inputs (also inside subgraphs) according to ``mapping``."""
    for node in graph.node:
        if any(i in mapping for i in node.input):
            node.input[:] = [mapping.get(i, i) for i in node.input]
        for a in node.attribute:
            for sg in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                _rename_inputs(sg, mapping)


def _static_shapes(model: onnx.ModelProto, infer: bool = True) -> dict[str, tuple[int, ...]]:
    """Fully static shapes of every tensor that shape inference can resolve.

    With ``infer=False`` the model's existing ``value_info`` is trusted (already inferred).
    """
    inferred = model
    if infer:
        try:
            inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
        except Exception as e:  # folding still works without Shape/Size folding
            log.debug("shape inference failed during folding: %s", e)
    g = inferred.graph
    out: dict[str, tuple[int, ...]] = {}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        tt = vi.type.tensor_type
        if not tt.HasField("shape"):
            continue
        dims = tt.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            out[vi.name] = tuple(int(d.dim_value) for d in dims)
    return out


def _evaluate(node: onnx.NodeProto, values: list[np.ndarray | None], opset: int) -> list[np.ndarray]:
    if node.op_type == "Identity":
        return [values[0]]
    if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
        return [numpy_helper.to_array(node.attribute[0].t)]
    from onnx.reference import ReferenceEvaluator

    n = onnx.NodeProto()
    n.CopyFrom(node)
    n.name = n.name or "fold"
    feeds = {name: v for name, v in zip(n.input, values) if name}
    res = ReferenceEvaluator(n, opsets={"": opset}).run(None, feeds)
    return [np.asarray(r) for r in res]


def fold_constants(
    model: onnx.ModelProto, *, max_elements: int = 1 << 22, infer_shapes: bool = True
) -> onnx.ModelProto:
    """Return a copy of ``model`` with constant subgraphs folded into initializers.

    Args:
        model: the model; it is not modified.
        max_elements: largest folded result (in elements) allowed when the result is also
            larger than the node's inputs; bigger expansions are left as nodes.
        infer_shapes: run shape inference to find static ``Shape``/``Size`` inputs; pass
            ``False`` when ``model`` is already shape-inferred.
    """
    opset = next((o.version for o in model.opset_import if o.domain in _DEFAULT_DOMAINS), 17)
    graph = model.graph
    input_names = {v.name for v in graph.input}
    init_protos = {t.name: t for t in graph.initializer if t.name not in input_names}
    shapes = _static_shapes(model, infer=infer_shapes)

    const: dict[str, np.ndarray] = {}

    alias: dict[str, str] = {}  # Identity(constant) output -> the constant it forwards

    def value(name: str) -> np.ndarray:
        name = alias.get(name, name)
        if name not in const:
            const[name] = numpy_helper.to_array(init_protos[name])
        return const[name]

    def is_const(name: str) -> bool:
        return name == "" or name in const or name in init_protos or name in alias

    folded_outputs: dict[str, np.ndarray] = {}
    kept_nodes: list[onnx.NodeProto] = []
    n_folded = 0
    for node in graph.node:
        foldable = (
            node.domain in _DEFAULT_DOMAINS
            and node.op_type not in NON_DETERMINISTIC_OPS
            and not _has_subgraph(node)
            and len(node.output) > 0
        )
        results: list[np.ndarray] | None = None
        if foldable and node.op_type == "Identity" and node.input[0] and is_const(node.input[0]):
            # forward by name instead of copying the tensor (exporters share weights this way)
            alias[node.output[0]] = alias.get(node.input[0], node.input[0])
            n_folded += 1
            continue
        if foldable and node.op_type in ("Shape", "Size") and node.input[0] in shapes:
            shp = shapes[node.input[0]]
            if node.op_type == "Size":
                results = [np.array(int(np.prod(shp)), np.int64)]
            else:
                attrs = {a.name: a.i for a in node.attribute}
                start, end = attrs.get("start", 0), attrs.get("end", len(shp))
                results = [np.array(shp[start:end], np.int64)]
        elif foldable and all(is_const(i) for i in node.input):
            vals = [value(i) if i else None for i in node.input]
            try:
                results = _evaluate(node, vals, opset)
            except Exception as e:  # leave it to the runtime
                log.debug("could not fold %s (%s): %s", node.name, node.op_type, e)
                results = None
            if results is not None:
                in_size = sum(int(v.size) for v in vals if v is not None)
                out_size = sum(int(r.size) for r in results)
                if out_size > max_elements and out_size > in_size:
                    log.debug("not folding %s: result of %d elements", node.name, out_size)
                    results = None
        if results is None:
            kept_nodes.append(node)
            continue
        n_folded += 1
        for name, r in zip(node.output, results):
            if name:
                const[name] = r
                folded_outputs[name] = r

    if not n_folded:
        out = onnx.ModelProto()
        out.CopyFrom(model)
        return out

    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    del g.node[:]
    g.node.extend(kept_nodes)
    if alias:
        _rename_inputs(g, alias)
    graph_outputs = [o.name for o in graph.output]
    taken = {n.name for n in graph.node}

    def fresh(base: str) -> str:
        name, k = base, 1
        while name in taken:
            name, k = f"{base}_{k}", k + 1
        taken.add(name)
        return name

    emitted = [
        helper.make_node("Constant", [], [n], name=fresh(f"{n}_folded_constant"),
                         value=numpy_helper.from_array(np.asarray(folded_outputs[n]), f"{n}_value"))
        for n in graph_outputs if n in folded_outputs
    ]
    emitted += [helper.make_node("Identity", [alias[n]], [n], name=fresh(f"{n}_identity"))
                for n in graph_outputs if n in alias]
    if emitted:
        kept = list(g.node)
        del g.node[:]
        g.node.extend(emitted + kept)
    used: set[str] = set()
    for node in g.node:
        used.update(node.input)
    used |= _subgraph_references(g)

    new_inits = [t for t in graph.initializer if t.name in used or t.name in input_names]
    new_inits += [numpy_helper.from_array(np.asarray(folded_outputs[n]), n)
                  for n in folded_outputs if n in used]
    del g.initializer[:]
    g.initializer.extend(new_inits)
    keep_vi = [vi for vi in g.value_info if vi.name not in folded_outputs and vi.name not in alias]
    del g.value_info[:]
    g.value_info.extend(keep_vi)
    log.info("folded %d constant node(s); %d remain", n_folded, len(g.node))
    return out
