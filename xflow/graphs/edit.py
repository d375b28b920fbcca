"""Edit a graph into a new one: record changes by name, apply them to a tensor-sharing clone.

An :class:`Editor` collects edits against a source :class:`~xflow.graphs.Graph` — nodes removed,
nodes added (new or copied from an existing one), new constants, uses of a tensor redirected to
another — without touching the source. :meth:`Editor.finish` applies them to a clone that shares
every tensor payload with the source (:meth:`~xflow.graphs.Graph.clone`), then

1. redirects readers (a node added with an output *name* that a removed node produced takes over
   that tensor's readers; graph outputs keep their names, bridged by ``Identity`` when needed),
2. sorts the nodes topologically (stable: kept nodes in source order, then added ones),
3. drops nodes no graph output depends on and initializers nothing reads (by name, before any
   IR object is made, so the clone is built once, in its final order),
4. infers shapes for the added nodes only (:func:`xflow.graphs.shapes.infer_node_shapes`),

and returns the new :class:`~xflow.graphs.Graph` with :class:`Changes` saying which node names
were removed and added — what an incremental consumer (candidate generation, featurization)
needs to know about the step. A generic pattern engine can drive the same editor: remove the
matched nodes, add the replacement's nodes wired to the match's boundary tensors.
"""
from __future__ import annotations

import heapq
import logging
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import onnx_ir as ir

from xflow.errors import InvalidModel
from xflow.graphs.ir import Graph, _copy_value, node_reads, outs, ins
from xflow.graphs.shapes import infer_model_shapes, infer_node_shapes

__all__ = ["Editor", "Changes", "topological_order", "follow_renames"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Changes:
    """What one edit did, by node name: ``removed`` from the source, ``added`` to the result
    (nodes dropped as dead code count as removed)."""

    removed: tuple[str, ...]
    added: tuple[str, ...]


@dataclass
class _NewNode:
    op_type: str
    domain: str
    inputs: list[str]
    outputs: list[str]
    attributes: list[ir.Attr]
    name: str
    overload: str = ""


def _attr_list(values: dict[str, Any]) -> list[ir.Attr]:
    out = []
    for k, v in values.items():
        if v is None:
            continue
        if isinstance(v, tuple):
            v = list(v)
        if isinstance(v, np.ndarray):
            v = ir.tensor(v)
        out.append(ir.convenience.convert_attribute(k, v))
    return out


class Editor:
    """Edits of ``view`` recorded by tensor and node *names*; :meth:`finish` builds the new graph.

    Args:
        view: the source graph (never modified).
        tag: prefix of generated names (the rule's name).
    """

    def __init__(self, view: Graph, tag: str = "rw") -> None:
        self.view = view
        self.tag = tag
        self._removed: set[str] = set()
        self._added: list[_NewNode] = []
        self._inits: dict[str, np.ndarray] = {}
        self._rename: dict[str, str] = {}
        self._taken: set[str] = set(view.node_by_name) | set(view._values)

    # -- recording ------------------------------------------------------------------------
    def fresh(self, base: str) -> str:
        """A tensor/node name not used anywhere in the graph yet (deterministic)."""
        base = base or self.tag
        name, k = base, 0
        while name in self._taken:
            k += 1
            name = f"{base}_{k}"
        self._taken.add(name)
        return name

    def remove(self, *nodes: ir.Node | str) -> None:
        """Drop these nodes (by object or name) from the new graph."""
        for n in nodes:
            self._removed.add(n if isinstance(n, str) else n.name)

    def add_node(self, op_type: str, inputs: Sequence[str], outputs: Sequence[str], *,
                 name: str | None = None, domain: str = "", **attributes: Any) -> str:
        """Add a node ``op_type(inputs) -> outputs`` (its name made unique; ``None`` attributes
        are skipped); returns the node's name."""
        node = _NewNode(op_type, domain, list(inputs), list(outputs), _attr_list(attributes),
                        self.fresh(name or f"{self.tag}/{op_type}"))
        self._added.append(node)
        return node.name

    def copy_node(self, node: ir.Node, inputs: Sequence[str], outputs: Sequence[str], *,
                  name: str | None = None) -> str:
        """Add a node with ``node``'s op type, domain and attributes but new inputs/outputs."""
        new = _NewNode(node.op_type, node.domain, list(inputs), list(outputs),
                       [a for a in node.attributes.values() if isinstance(a, ir.Attr)],
                       self.fresh(name or f"{node.name}/{self.tag}"), node.overload)
        self._added.append(new)
        return new.name

    def add_initializer(self, base: str, array: np.ndarray) -> str:
        """Add a constant tensor; returns its (fresh) name."""
        name = self.fresh(base)
        self._inits[name] = np.ascontiguousarray(array)
        return name

    def add_int64(self, base: str, values: Iterable[int]) -> str:
        """Add a 1-D int64 constant (shapes, split sizes); returns its name."""
        return self.add_initializer(base, np.asarray(list(values), dtype=np.int64))

    def replace_uses(self, old: str, new: str) -> None:
        """Make every reader of tensor ``old`` read ``new`` instead (graph outputs keep their name)."""
        self._rename[old] = new

    def split(self, x: str, axis: int, sizes: Sequence[int], outputs: Sequence[str], *,
              name: str | None = None) -> str:
        """Add an opset-appropriate ``Split`` of ``x`` into ``outputs`` with static ``sizes``."""
        if self.view.opset >= 13:
            s = self.add_int64(f"{self.tag}/split_sizes", sizes)
            return self.add_node("Split", [x, s], outputs, name=name, axis=axis)
        return self.add_node("Split", [x], outputs, name=name, axis=axis, split=list(sizes))

    # -- building --------------------------------------------------------------------------
    # -- the recorded edit, read-only (for local diffs of candidates without building the graph) --
    @property
    def removed(self) -> frozenset[str]:
        """Names of the source nodes dropped so far."""
        return frozenset(self._removed)

    @property
    def added(self) -> tuple["_NewNode", ...]:
        """The nodes added so far (op, domain, inputs, outputs, attributes, name), in order."""
        return tuple(self._added)

    @property
    def initializers(self) -> Mapping[str, np.ndarray]:
        """New constant tensors by name (a read-only view)."""
        return MappingProxyType(self._inits)

    @property
    def renames(self) -> Mapping[str, str]:
        """Redirections ``old tensor -> new tensor`` recorded so far (a read-only view)."""
        return MappingProxyType(self._rename)

    def resolve(self, t: str) -> str:
        """The tensor that readers of ``t`` read after the edit (follows chained redirections)."""
        return self._resolve(t)

    def _resolve(self, t: str) -> str:
        return follow_renames(self._rename, t)

    def finish(self) -> Graph:
        """The edited graph (see the module docstring); the source graph is left unchanged.

        Built in one pass: the kept source nodes and the added ones are ordered and pruned by
        tensor name first, then only the live ones become IR nodes of a new graph whose values
        share the source's tensors, attributes and (frozen) shapes.
        """
        src = self.view
        g = src.ir.graph
        unknown = self._removed - set(src.node_by_name)
        if unknown:
            raise InvalidModel(f"edit removes node(s) not in the graph: {sorted(unknown)}")
        resolve = self._resolve
        kept = [n for n in g if n.name not in self._removed]
        added = self._added
        # -- by name: reads and writes of every candidate node, graph-output bridges
        reads: list[list[str]] = []
        writes: list[list[str]] = []
        for n in kept:
            reads.append([resolve(t) for t in node_reads(n)])
            writes.append(outs(n))
        for spec in added:
            reads.append([resolve(t) for t in spec.inputs if t])
            writes.append(list(spec.outputs))
        produced = {o for w in writes for o in w if o}
        known = produced | set(src._values) | set(self._inits)
        for spec in added:
            missing = [resolve(t) for t in spec.inputs if t and resolve(t) not in known]
            if missing:
                raise InvalidModel(f"edit by {self.tag!r} reads tensor(s) {missing}, which the graph does not have")
        bridges: list[tuple[str, str]] = []  # (graph output, the tensor it now forwards)
        for out in src.outputs:
            target = resolve(out)
            if target != out and out not in produced:
                bridges.append((out, target))
                reads.append([target])
                writes.append([out])
        order = topological_order(reads, writes)
        live = _live(order, reads, writes, set(src.outputs))
        n_kept, n_added = len(kept), len(added)
        used = {t for i in live for t in reads[i]} | set(src.outputs)

        # -- values of the new graph, by name (source values are copied, sharing tensors)
        values: dict[str, ir.Value] = {}
        vmap: dict[ir.Value, ir.Value] = {}
        inputs = []
        for v in g.inputs:
            nv = values[v.name] = vmap[v] = _copy_value(v, with_meta=v.const_value is not None)
            inputs.append(nv)
        inits = []
        for name, v in g.initializers.items():
            if name not in used:
                continue
            nv = values.get(name)
            if nv is None:
                nv = values[name] = vmap[v] = _copy_value(v, with_meta=True)
            inits.append(nv)
        for name, arr in self._inits.items():
            if name in used:
                v = values[name] = ir.Value(name=name, shape=ir.Shape(arr.shape, frozen=True),
                                            type=ir.TensorType(ir.DataType.from_numpy(arr.dtype)),
                                            const_value=ir.tensor(arr, name=name))
                inits.append(v)
        out_values: dict[int, list[ir.Value]] = {}
        for i in live:
            if i < n_kept:
                vals = [_copy_value(o, with_meta=False) for o in kept[i].outputs]
                for o, nv in zip(kept[i].outputs, vals):
                    vmap[o] = nv
            elif i < n_kept + n_added:
                vals = [ir.Value(name=o or "") for o in writes[i]]
            else:
                old = src.value(writes[i][0])
                vals = [ir.Value(name=writes[i][0], shape=old.shape, type=old.type)]
            out_values[i] = vals
            for o, nv in zip(writes[i], vals):
                if o:
                    values[o] = nv

        def lookup(t: str) -> ir.Value | None:
            if not t:
                return None
            v = values.get(resolve(t))
            if v is None:
                raise InvalidModel(f"edit by {self.tag!r} reads tensor {resolve(t)!r}, which the graph does not have")
            return v

        for name in set(self._rename) | (produced & set(src._values)):  # redirected source values
            old = src.value(name)
            if old is not None and resolve(name) in values:
                vmap[old] = values[resolve(name)]

        # -- the live nodes, in topological order
        nodes: list[ir.Node] = []
        fresh: list[ir.Node] = []
        for i in order:
            if i not in live:
                continue
            if i < n_kept:
                n = kept[i]
                nodes.append(ir.Node(n.domain, n.op_type, [lookup(t) for t in ins(n)],
                                     [_attr_copy(a, vmap) for a in n.attributes.values()],
                                     overload=n.overload, outputs=out_values[i], version=n.version,
                                     name=n.name, doc_string=n.doc_string))
            elif i < n_kept + n_added:
                spec = added[i - n_kept]
                node = ir.Node(spec.domain, spec.op_type, [lookup(t) for t in spec.inputs], spec.attributes,
                               outputs=out_values[i], name=spec.name, overload=spec.overload)
                nodes.append(node)
                fresh.append(node)
            else:
                out, target = bridges[i - n_kept - n_added]
                node = ir.Node("", "Identity", [lookup(target)], outputs=out_values[i],
                               name=self.fresh(f"{out}/identity"))
                nodes.append(node)
                fresh.append(node)
        graph = ir.Graph(inputs, [values[o] for o in src.outputs], nodes=nodes, initializers=inits,
                         doc_string=g.doc_string, opset_imports=dict(g.opset_imports), name=g.name)
        m = src.ir
        model = ir.Model(graph, ir_version=m.ir_version, producer_name=m.producer_name,
                         producer_version=m.producer_version, domain=m.domain, model_version=m.model_version,
                         doc_string=m.doc_string, functions=list(m.functions.values()),
                         metadata_props=dict(m.metadata_props))
        self._infer(model, fresh)
        dead_src = {kept[i].name for i in range(n_kept) if i not in live}
        return Graph(model, changes=Changes(tuple(sorted(self._removed | dead_src)), tuple(n.name for n in fresh)))

    def _infer(self, model: ir.Model, nodes: list[ir.Node]) -> None:
        if not nodes:
            return
        const = {}

        def lookup_const(name: str) -> np.ndarray | None:
            if name in self._inits:
                return self._inits[name]
            if name not in const:
                const[name] = self.view.const(name)
            return const[name]

        infer_node_shapes(nodes, opset_imports=model.opset_imports, ir_version=model.ir_version,
                          const=lookup_const, functions=model.functions.values())
        if any(o.name and o.shape is None for n in nodes for o in n.outputs):
            # local inference could not type every new value (e.g. an input without a shape):
            # fall back to one whole-graph inference rather than leave costs and features blind
            log.debug("edit by %s: local shape inference incomplete; inferring the whole graph", self.tag)
            infer_model_shapes(model)


def _attr_copy(a, vmap: dict) -> ir.Attr:
    """``a`` itself, or for a subgraph attribute a copy whose outer reads point at ``vmap``'s values."""
    if not isinstance(a, ir.Attr) or a.type not in (ir.AttributeType.GRAPH, ir.AttributeType.GRAPHS):
        return a
    from onnx_ir._cloner import Cloner

    cloner = Cloner(attr_map={}, value_map=dict(vmap), metadata_props={}, allow_outer_scope_values=True)
    return cloner.clone_attr(a.name, a)


def follow_renames(renames: Mapping[str, str], t: str) -> str:
    """The tensor readers of ``t`` read after redirections ``renames`` (chains followed, cycles stop)."""
    seen = set()
    while t in renames and t not in seen:
        seen.add(t)
        t = renames[t]
    return t


def topological_order(reads: list[list[str]], writes: list[list[str]]) -> list[int]:
    """Stable topological order of nodes given by the names they read and write (Kahn's
    algorithm; among ready nodes the earliest in the list goes first).

    Raises :class:`~xflow.errors.InvalidModel` when the nodes form a cycle.
    """
    producer: dict[str, int] = {}
    for i, w in enumerate(writes):
        for o in w:
            if o:
                producer[o] = i
    users: dict[int, list[int]] = {}
    remaining = []
    for i, r in enumerate(reads):
        deps = {producer[t] for t in r if t in producer} - {i}
        remaining.append(len(deps))
        for j in deps:
            users.setdefault(j, []).append(i)
    ready = [i for i, k in enumerate(remaining) if k == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for u in users.get(i, ()):
            remaining[u] -= 1
            if remaining[u] == 0:
                heapq.heappush(ready, u)
    if len(order) != len(reads):
        done = set(order)
        stuck = [writes[i] for i in range(len(reads)) if i not in done][:5]
        raise InvalidModel(f"the edited graph has a cycle through the nodes writing {stuck}")
    return order


def _live(order: list[int], reads: list[list[str]], writes: list[list[str]], outputs: set[str]) -> set[int]:
    """Nodes (indices, ``order`` topological) some graph output depends on."""
    need = set(outputs)
    live = set()
    for i in reversed(order):
        if any(o in need for o in writes[i] if o):
            live.add(i)
            need.update(reads[i])
    return live
