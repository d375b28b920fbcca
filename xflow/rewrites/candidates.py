"""All one-step rewrites of a model: every (rule × location), deduplicated by graph hash, verified.

This is the action set of the X-RLflow environment and the neighbourhood of the search
baselines. Each :class:`Candidate` holds the rewritten :class:`~xflow.graphs.Graph` — a clone of
the source that shares every tensor payload with it, so enumerating the candidates of
Inception-v3 never copies its ~95 MB of weights — and its :func:`~xflow.graphs.hashing.graph_hash`
(tensor digests are cached on the shared values, so only new tensors are hashed). A candidate
whose outputs differ from the source model's (ONNX Runtime, optimizations disabled, seeded random
inputs) is dropped and logged at WARNING — that would be a rule bug.
"""
from __future__ import annotations

import hashlib
import logging
from typing import Sequence

import numpy as np
import onnx
import onnx_ir as ir

from xflow.graphs.edit import Changes, Editor, follow_renames, topological_order
from xflow.graphs.hashing import array_digest, attribute_bytes
from xflow.graphs.ir import Graph, node_reads, outs
from xflow.graphs.shapes import infer_node_shapes
from xflow.rewrites._base import Location, Rule
from xflow.rewrites._registry import RULES, get_rule
from xflow.rewrites.verify import Verifier, verify_local

__all__ = ["Candidate", "candidates", "graph_hash", "EditDiff", "edit_diff"]

log = logging.getLogger(__name__)


def graph_hash(model: Graph | onnx.ModelProto) -> str:
    """Stable content hash (ignores names and metadata): :func:`xflow.graphs.hashing.graph_hash`."""
    return model.content_hash if isinstance(model, Graph) else Graph.from_proto(model, infer=False).content_hash


class Candidate:
    """One rewrite of a model: ``rule`` name, ``location``, the new ``graph`` and its ``hash``.

    ``graph`` shares its tensors with the source (costing, hashing and featurizing it reads
    structure only); :attr:`model` is the ``ModelProto`` for ONNX Runtime and files (built on
    first access); :attr:`changes` names the nodes the rewrite removed and added.
    """

    __slots__ = ("rule", "location", "graph", "hash")

    def __init__(self, rule: str, location: Location, graph: Graph, hash: str = "") -> None:  # noqa: A002
        self.rule = rule
        self.location = location
        self.graph = graph
        self.hash = hash or graph.content_hash

    @property
    def model(self) -> onnx.ModelProto:
        """The rewritten model as an ``onnx.ModelProto`` (a boundary; built once)."""
        return self.graph.model

    @property
    def changes(self) -> Changes | None:
        """Which node names the rewrite removed and added."""
        return self.graph.changes

    def action(self) -> dict:
        """JSON-able ``{"rule": …, "location": …}`` (replay with :func:`xflow.rewrites.apply_action`)."""
        return {"rule": self.rule, "location": self.location.to_json()}

    def __repr__(self) -> str:
        return f"Candidate(rule={self.rule!r}, location={self.location}, hash={self.hash!r})"


def candidates(
    model: Graph | onnx.ModelProto,
    rules: Sequence[Rule | str] | None = None,
    max_candidates: int = 500,
    verify: bool | str = True,
    *,
    exclude_hashes: Sequence[str] = (),
) -> list[Candidate]:
    """Every distinct graph one rewrite away from ``model``.

    Args:
        model: the source graph (not mutated); a ``ModelProto`` is wrapped first.
        rules: rule objects or names (default: all of :data:`xflow.rewrites.RULES`).
        max_candidates: stop after this many distinct candidates (rules in registry order,
            locations in graph order, so the cut is deterministic).
        verify: check each candidate numerically in ORT and drop those whose outputs differ:
            ``True``/``"local"`` runs only the rewritten region (random boundary inputs; falls back
            to the whole model when the region is not self-contained), ``"full"`` the whole model.
        exclude_hashes: graph hashes to skip (the source's own hash is always skipped).

    Returns:
        Candidates in deterministic order, unique by graph hash.
    """
    rule_objs = [get_rule(r) if isinstance(r, str) else r for r in (rules if rules is not None else RULES)]
    view = Graph.of(model)
    seen = {view.content_hash, *exclude_hashes}
    verifier = None
    out: list[Candidate] = []
    for rule in rule_objs:
        for loc in rule.match(view):
            if len(out) >= max_candidates:
                return out
            try:
                new = rule.apply(view, loc)
                h = new.content_hash
            except Exception as exc:  # noqa: BLE001 - a crashing rule must not kill the search
                log.warning("rule %s failed to apply at %s: %s", rule.name, loc, exc)
                continue
            if h in seen:
                continue
            seen.add(h)
            if verify:
                if verify == "full":
                    verifier = verifier or Verifier(view.model)
                    verdict = verifier.check(new.model)
                else:
                    verdict = verify_local(view, new)
                if not verdict.ok:
                    log.warning("dropping %s at %s: not equivalent (%s)", rule.name, loc, verdict.reason)
                    continue
            out.append(Candidate(rule.name, loc, new, h))
    return out


# ---------------------------------------------------------------------------------------
# local differences: a candidate described by what its edit changes, without building it
# ---------------------------------------------------------------------------------------
class EditDiff:
    """What one rewrite would change in ``view``, computed without building the new graph.

    From the :class:`~xflow.graphs.edit.Editor` a rule records (nothing is finished):

    * ``removed``: source node names that disappear — the nodes the rule removes plus the ones
      that become dead code (what :meth:`Editor.finish` would drop), so ``removed`` equals the
      finished graph's ``changes.removed``;
    * ``rewired``: kept source nodes whose input names change (readers of a redirected tensor);
    * ``nodes``: IR nodes of the added operators (live ones only, plus the ``Identity`` bridges of
      redirected graph outputs), standing alone — their inputs are fresh values that copy the
      source's shapes, so the source graph is never touched — with their output shapes inferred
      locally (:func:`xflow.graphs.shapes.infer_node_shapes`), and the rewired nodes' new
      versions (``rewired_nodes``);
    * ``signature``: a digest of the edit with generated names replaced by their order of first
      appearance, so two locations that make the same edit deduplicate without a graph hash;
    * ``verdict``: ``None`` when every tensor that leaves the changed region (read by a kept node
      or a graph output) keeps its shape and element type, else the reason — the cheap check
      that catches a rewrite changing an output's shape.
    """

    __slots__ = ("removed", "rewired", "nodes", "rewired_nodes", "values", "inits", "signature",
                 "verdict", "footprint", "node_costs", "numeric", "_rename")

    def __init__(self) -> None:
        self.removed: frozenset[str] = frozenset()
        self.rewired: frozenset[str] = frozenset()
        self.nodes: list = []
        self.rewired_nodes: list = []
        self.values: dict = {}
        self.inits: dict = {}
        self.signature: str = ""
        self.verdict: str | None = None
        self.footprint: frozenset[str] = frozenset()
        #: ``{added node name: ms}`` once a consumer has costed the added region (cache)
        self.node_costs: dict[str, float] | None = None
        #: outcome of a numeric (ONNX Runtime) check once one ran (``None``: not checked)
        self.numeric: bool | None = None
        self._rename: dict[str, str] = {}

    def resolve(self, tensor: str) -> str:
        """The tensor that readers of ``tensor`` read after the edit."""
        return follow_renames(self._rename, tensor)

    def region_graph(self, opset_imports: dict[str, int] | None = None) -> Graph:
        """The added and rewired nodes as a standalone :class:`~xflow.graphs.Graph` (their inputs
        as graph inputs, small integer constants such as split sizes as initializers, shapes as
        inferred), for per-node costs of the changed region. ``opset_imports``: the source graph's
        (a cost model that runs the region in ONNX Runtime needs them; default opset 17)."""
        nodes = list(self.nodes) + list(self.rewired_nodes)
        produced = {id(o) for n in nodes for o in n.outputs}
        inputs, seen = [], set()
        for n in nodes:
            for v in n.inputs:
                if v is not None and id(v) not in produced and id(v) not in seen:
                    seen.add(id(v))
                    inputs.append(v)
        outputs = [o for n in nodes for o in n.outputs if o.name]
        consts = [v for v in inputs if v.const_value is not None]  # small constants: initializers
        inputs = [v for v in inputs if v.const_value is None]
        g = ir.Graph(inputs, outputs, nodes=nodes, initializers=consts, name="region",
                     opset_imports=dict(opset_imports) if opset_imports else {"": 17})
        return Graph(ir.Model(g, ir_version=10))

    @property
    def nbytes(self) -> int:
        """Rough memory held (new constants plus a per-node overhead), for byte-bounded caches."""
        return sum(int(a.nbytes) for a in self.inits.values()) + 2048 * (len(self.nodes) + len(self.rewired_nodes)) + 512


class _ArrayMeta:
    """Shape and dtype of a new constant of an :class:`EditDiff` (the array itself is dropped)."""

    __slots__ = ("shape", "dtype")

    def __init__(self, shape: tuple, dtype) -> None:
        self.shape, self.dtype = shape, dtype

    @property
    def nbytes(self) -> int:
        return 64


def _canon_names(view: Graph, ed) -> "callable":
    table: dict[str, str] = {}
    nodes = view.node_by_name

    def canon(name: str) -> str:
        if not name or view.has_tensor(name) or name in nodes:
            return name
        if name not in table:
            table[name] = f"#{len(table)}"
        return table[name]

    return canon


def _edit_signature(view: Graph, ed, removed: frozenset[str]) -> str:
    """Digest of an edit (removed nodes, added nodes, constants, redirections), generated names
    canonicalized: equal signatures mean equal graphs."""
    canon = _canon_names(view, ed)
    h = hashlib.sha256()
    h.update("\x00".join(sorted(removed)).encode())
    for spec in ed.added:
        h.update("\x01".join([spec.domain, spec.op_type, spec.overload,
                              *(canon(ed.resolve(t)) if t else "" for t in spec.inputs), "|",
                              *(canon(o) for o in spec.outputs)]).encode())
        for a in sorted(spec.attributes, key=lambda a: a.name):
            h.update(a.name.encode() + attribute_bytes(a))
    for name, arr in ed.initializers.items():
        h.update(canon(name).encode() + array_digest(arr))
    for old in sorted(ed.renames):
        h.update(f"{old}->{canon(ed.resolve(old))}".encode())
    return h.hexdigest()[:32]


def edit_diff(rule: Rule, view: Graph, loc: Location) -> EditDiff:
    """The :class:`EditDiff` of applying ``rule`` at ``loc`` (the check must already pass)."""
    ed = Editor(view, tag=rule.name)
    rule._rewrite(view, loc, ed)
    d = EditDiff()
    d._rename = dict(ed.renames)
    resolve = ed.resolve
    removed = set(ed.removed)
    outputs = set(view.outputs)
    specs = list(ed.added)
    spec_out = {o for s in specs for o in s.outputs if o}
    # graph outputs redirected to another tensor get an Identity bridge (as Editor.finish does)
    bridges = [(o, resolve(o)) for o in view.outputs if resolve(o) != o and o not in spec_out]
    # liveness after the edit, locally (Editor.finish does it over the whole graph by name)
    consumers = view.consumer_map
    inv: dict[str, list[str]] = {}
    for old in ed.renames:
        inv.setdefault(resolve(old), []).append(old)
    bridge_targets = {t for _, t in bridges}
    gone = set(removed)

    def kept_reader(t: str) -> bool:
        names = ([t] if resolve(t) == t else []) + inv.get(t, [])
        return any(c.name not in gone for x in names for c in consumers.get(x, ()))

    while True:
        live_spec = [False] * len(specs)
        grew = True
        while grew:
            grew = False
            spec_reads = {resolve(t) for i, s in enumerate(specs) if live_spec[i] for t in s.inputs if t}
            for i, s in enumerate(specs):
                if not live_spec[i] and any(o and (o in outputs or o in bridge_targets or o in spec_reads
                                                   or kept_reader(o)) for o in s.outputs):
                    live_spec[i] = grew = True
        spec_reads = {resolve(t) for i, s in enumerate(specs) if live_spec[i] for t in s.inputs if t}
        work = [view.producer(t) for n in gone for t in node_reads(view.node_by_name[n])]
        work += [view.producer(t) for t in ed.renames]
        died = False
        while work:
            p = work.pop()
            if p is None or p.name in gone:
                continue
            if not any(o and (o in outputs or o in bridge_targets or o in spec_reads or kept_reader(o))
                       for o in outs(p)):
                gone.add(p.name)
                died = True
                work.extend(view.producer(t) for t in node_reads(p))
        if not died:
            break
    removed = gone
    d.removed = frozenset(removed)
    # kept nodes whose inputs now name other tensors
    rewired = set()
    for old in ed.renames:
        for c in consumers.get(old, ()):
            if c.name not in removed and resolve(old) != old:
                rewired.add(c.name)
    d.rewired = frozenset(rewired)
    # standalone IR nodes of the added region, with locally inferred shapes
    values: dict[str, ir.Value] = {}

    def value(t: str):
        if not t:
            return None
        t = resolve(t)
        v = values.get(t)
        if v is None:
            arr = ed.initializers[t] if t in ed.initializers else None
            if arr is not None:
                v = ir.Value(name=t, shape=ir.Shape(arr.shape), type=ir.TensorType(ir.DataType.from_numpy(arr.dtype)))
            else:
                src = view.value(t)
                v = ir.Value(name=t, shape=None if src is None else src.shape, type=None if src is None else src.type)
                arr = view.const(t) if src is not None else None
            if arr is not None and (arr.dtype.kind in "iub" or arr.size <= 64):
                v.const_value = ir.tensor(np.asarray(arr))  # split sizes, shapes, axes: a region run needs them
            values[t] = v
        return v

    live = [s for i, s in enumerate(specs) if live_spec[i]]
    order = topological_order([[resolve(t) for t in s.inputs if t] for s in live], [list(s.outputs) for s in live])
    spec_values = []
    for s in live:
        outs_ = []
        for o in s.outputs:
            nv = ir.Value(name=o or "")
            if o:
                values[o] = nv
            outs_.append(nv)
        spec_values.append(outs_)
    # the rewired nodes' outputs first: an added or rewired node reading one must read that value,
    # not a copy of the source's under the same name (two definitions of one name in the region)
    rewired_outs: dict[str, list] = {}
    for name in sorted(rewired):
        outs_ = [ir.Value(name=o.name, shape=o.shape, type=o.type) for o in view.node_by_name[name].outputs]
        for nv in outs_:
            if nv.name:
                values[nv.name] = nv
        rewired_outs[name] = outs_
    new_nodes = []
    for i in order:
        s = live[i]
        new_nodes.append(ir.Node(s.domain, s.op_type, [value(t) for t in s.inputs], s.attributes,
                                 outputs=spec_values[i], name=s.name, overload=s.overload))
    for out, target in bridges:
        nv = ir.Value(name=out)
        new_nodes.append(ir.Node("", "Identity", [value(target)], outputs=[nv], name=f"{out}/identity"))
        values.setdefault(out + "\x00bridge", nv)
    if new_nodes:
        def lookup_const(name: str):
            return ed.initializers[name] if name in ed.initializers else view.const(name)

        m = view.ir
        infer_node_shapes(new_nodes, opset_imports=m.opset_imports, ir_version=m.ir_version,
                          const=lookup_const, functions=m.functions.values())
    rewired_nodes = []
    for name in sorted(rewired):
        n = view.node_by_name[name]
        rewired_nodes.append(ir.Node(n.domain, n.op_type, [value(v.name) if v is not None else None for v in n.inputs],
                                     [a for a in n.attributes.values() if isinstance(a, ir.Attr)],
                                     outputs=rewired_outs[name], name=n.name, overload=n.overload))
    d.nodes = new_nodes
    d.rewired_nodes = rewired_nodes
    d.values = values
    d.signature = _edit_signature(view, ed, d.removed)
    # keep what features need (shape, dtype), not the new arrays (merged / padded weights)
    d.inits = {k: _ArrayMeta(tuple(a.shape), a.dtype) for k, a in ed.initializers.items()}
    d.verdict = _boundary_check(view, d, bridges)
    d.footprint = frozenset(loc.nodes) | d.removed | d.rewired
    return d


def _same_type(a, b) -> bool:
    sa = None if a is None or a.shape is None else tuple(a.shape.dims)
    sb = None if b is None or b.shape is None else tuple(b.shape.dims)
    ta = None if a is None else a.dtype
    tb = None if b is None else b.dtype
    return sa == sb and ta == tb


def _boundary_check(view: Graph, d: EditDiff, bridges) -> str | None:
    """``None`` when each tensor leaving the changed region keeps its shape and element type."""
    for name in sorted(d.removed):
        for o in outs(view.node_by_name[name]):
            if not o:
                continue
            readers = [c for c in view.consumers(o) if c.name not in d.removed]
            if not readers and not view.is_graph_output(o):
                continue
            target = d.resolve(o)
            new = d.values.get(target)
            if new is None:
                new = view.value(target)
            if new is None:
                return f"tensor {o!r} has no producer after the rewrite"
            if new.shape is None:
                return f"the shape of {target!r} (replacing {o!r}) could not be inferred"
            if not _same_type(view.value(o), new):
                return (f"{o!r} changes from {tuple(view.value(o).shape.dims)}:{view.value(o).dtype} "
                        f"to {tuple(new.shape.dims)}:{new.dtype}")
    for out, target in bridges:
        new = d.values.get(target) or view.value(target)
        if not _same_type(view.value(out), new):
            return f"graph output {out!r} changes type/shape"
    return None
