"""Edit a graph into a new one: record changes by name, apply them to a tensor-sharing clone.

An :class:`Editor` collects edits against a source :class:`~xflow.graphs.Graph` — nodes removed,
nodes added (new or copied from an existing one), new constants, uses of a tensor redirected to
another — without touching the source. :meth:`Editor.finish` applies them to a clone that shares
every tensor payload with the source (:meth:`~xflow.graphs.Graph.clone`), then

1. redirects readers (a node added with an output *name* that a removed node produced takes over
   that tensor's readers; graph outputs keep their names, bridged by ``Identity`` when needed),
2. sorts the nodes topologically (stable: kept nodes in source order, then added ones),
3. drops nodes no graph output depends on and initializers nothing reads,
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
from typing import Any, Iterable, Sequence

import numpy as np
import onnx_ir as ir

from xflow.errors import InvalidModel
from xflow.graphs.ir import Graph, node_reads
from xflow.graphs.shapes import infer_model_shapes, infer_node_shapes

__all__ = ["Editor", "Changes", "toposort", "dead_nodes"]

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
    def _resolve(self, t: str) -> str:
        seen = set()
        while t in self._rename and t not in seen:
            seen.add(t)
            t = self._rename[t]
        return t

    def finish(self) -> Graph:
        """The edited graph (see the module docstring); the source graph is left unchanged."""
        src = self.view
        model = src.clone()
        g = model.graph
        values: dict[str, ir.Value] = {v.name: v for v in g.inputs}
        values.update(g.initializers)
        by_name: dict[str, ir.Node] = {}
        for n in g:
            by_name[n.name] = n
            for o in n.outputs:
                if o.name:
                    values[o.name] = o
        unknown = self._removed - set(by_name)
        if unknown:
            raise InvalidModel(f"edit removes node(s) not in the graph: {sorted(unknown)}")
        removed = [n for n in g if n.name in self._removed]

        # new constants and the outputs of added nodes, by name
        new_values: dict[str, ir.Value] = {}
        for name, arr in self._inits.items():
            v = ir.Value(name=name, const_value=ir.tensor(arr, name=name))
            v.shape, v.dtype = ir.Shape(arr.shape), ir.DataType.from_numpy(arr.dtype)
            new_values[name] = v
        added_outputs: list[list[ir.Value]] = []
        for spec in self._added:
            added_outputs.append([ir.Value(name=o) if o else ir.Value(name="") for o in spec.outputs])
            for o, v in zip(spec.outputs, added_outputs[-1]):
                if o:
                    new_values[o] = v

        def lookup(t: str) -> ir.Value | None:
            if not t:
                return None
            t = self._resolve(t)
            v = new_values.get(t)
            if v is None:
                v = values.get(t)
            if v is None:
                raise InvalidModel(f"edit by {self.tag!r} reads tensor {t!r}, which the graph does not have")
            return v

        # detach removed nodes, then redirect every reader of a renamed or re-produced tensor
        for n in removed:
            for i in range(len(n.inputs)):
                n.replace_input_with(i, None)
        g.remove(removed)
        redirect = set(self._rename) | {o for o in new_values if o in values}
        kept = list(g)
        for n in kept:
            for i, v in enumerate(n.inputs):
                if v is not None and v.name in redirect:
                    n.replace_input_with(i, lookup(v.name))
            _redirect_subgraph_reads(n, redirect, lookup)
        nodes_new: list[ir.Node] = []
        for spec, outputs in zip(self._added, added_outputs):
            node = ir.Node(spec.domain, spec.op_type, [lookup(t) for t in spec.inputs], spec.attributes,
                           outputs=outputs, name=spec.name, overload=spec.overload)
            nodes_new.append(node)
        # graph outputs keep their names: re-produced ones point at the new value; renamed ones
        # whose producer is gone are bridged with Identity
        bridges: list[ir.Node] = []
        for i, out in enumerate(list(g.outputs)):
            name = out.name
            target = self._resolve(name)
            if name in new_values:
                g.outputs[i] = new_values[name]
            elif target != name and (out.producer() is None or out.producer().name in self._removed):
                fresh = ir.Value(name=name)
                fresh.shape, fresh.type = out.shape, out.type
                bridges.append(ir.Node("", "Identity", [lookup(target)], outputs=[fresh],
                                       name=self.fresh(f"{name}/identity")))
                g.outputs[i] = fresh
        for v in new_values.values():
            if v.const_value is not None:
                g.register_initializer(v)
        everything = kept + nodes_new + bridges
        order = toposort(everything)
        dead = dead_nodes(order, g.outputs)
        for n in dead:
            for i in range(len(n.inputs)):
                n.replace_input_with(i, None)
        live = [n for n in order if n not in dead]
        g.remove(kept)
        g.extend(live)
        for name, v in list(g.initializers.items()):
            if not v.uses() and not v.is_graph_output() and not v.is_graph_input():
                del g.initializers[name]
        new_ids = {id(n) for n in nodes_new + bridges}
        fresh_nodes = [n for n in live if id(n) in new_ids]  # topological order, for inference
        self._infer(model, fresh_nodes)
        removed_names = tuple(sorted(self._removed | {n.name for n in dead if n.name in src.node_by_name}))
        added_names = tuple(n.name for n in fresh_nodes)
        return Graph(model, changes=Changes(removed_names, added_names))

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


def _redirect_subgraph_reads(node: ir.Node, redirect: set[str], lookup) -> None:
    """Point outer-scope reads inside ``node``'s subgraphs at the redirected values."""
    for a in node.attributes.values():
        if not isinstance(a, ir.Attr) or a.type not in (ir.AttributeType.GRAPH, ir.AttributeType.GRAPHS):
            continue
        for sg in ([a.value] if a.type == ir.AttributeType.GRAPH else list(a.value)):
            for sub in sg:
                for i, v in enumerate(sub.inputs):
                    if v is not None and v.name in redirect and v.graph is not sg:
                        sub.replace_input_with(i, lookup(v.name))
                _redirect_subgraph_reads(sub, redirect, lookup)


def toposort(nodes: list[ir.Node]) -> list[ir.Node]:
    """Stable topological order (Kahn's algorithm, ready nodes taken in their list order).

    Raises :class:`~xflow.errors.InvalidModel` when the nodes form a cycle.
    """
    producer: dict[str, int] = {}
    for i, n in enumerate(nodes):
        for o in n.outputs:
            if o.name:
                producer[o.name] = i
    users: dict[int, list[int]] = {}
    remaining = []
    for i, n in enumerate(nodes):
        deps = {producer[t] for t in node_reads(n) if t in producer} - {i}
        remaining.append(len(deps))
        for j in deps:
            users.setdefault(j, []).append(i)
    ready = [i for i, r in enumerate(remaining) if r == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for u in users.get(i, ()):
            remaining[u] -= 1
            if remaining[u] == 0:
                heapq.heappush(ready, u)
    if len(order) != len(nodes):
        stuck = [nodes[i].name for i in range(len(nodes)) if i not in set(order)][:5]
        raise InvalidModel(f"the edited graph has a cycle through {stuck}")
    return [nodes[i] for i in order]


def dead_nodes(nodes: list[ir.Node], outputs: Iterable[ir.Value]) -> set[ir.Node]:
    """Nodes (of a topologically sorted list) none of whose outputs a graph output depends on;
    reads inside subgraphs count (:func:`~xflow.graphs.ir.node_reads`)."""
    live = {v.name for v in outputs}
    dead = set()
    for n in reversed(nodes):
        if any(o.name in live for o in n.outputs if o.name):
            live.update(node_reads(n))
        else:
            dead.add(n)
    return dead

