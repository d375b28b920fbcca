"""The one generic matcher/applier: any generated rule (data) as a :class:`~xflow.rewrites.Rule`.

:class:`GeneratedRule` reads a rule's source and target :class:`~xflow.rewrites.generator.pattern.Pattern`
and implements the rule protocol for it, so a generated rule needs no hand-written code:

* **match** (after TASO's ``GraphXfer::run`` / ``can_match``): unify the source pattern with the
  graph, starting at its first output node and walking producers; commutative ops (``Add``,
  ``Mul``) try both input orders; a pattern node not reachable that way (multi-output rules) is
  sought among the consumers of an already bound variable. Attributes must equal the spec's, and
  every attribute the spec does not fix must have its ONNX default;
* **check**: every intermediate tensor of the match is read only inside the match (TASO: "output
  tensors with external edges must be mapped"); each variable's static shape unifies with its
  symbolic shape (rank, literal dims, one value per symbol), which makes the target well typed;
  float element types; Split sizes equal their symbolic values; for multi-output rules no variable
  may depend on a matched node (the rewrite would create a cycle; TASO rejects graphs with loops);
* **rewrite**: remove the matched nodes, add the target's nodes wired to the bound tensors, fold
  target nodes whose inputs are all constants (numpy semantics; TASO's ``preprocess_weights``
  does the same after its search), and redirect the readers of each source output to the
  corresponding target output.

A :class:`~xflow.rewrites.Location` lists the matched node names in source-pattern order; checking
it re-runs the unification with those nodes fixed, so actions replay exactly.
"""
from __future__ import annotations

import json
import logging
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import onnx

from xflow.rewrites._base import Location, Rule
from xflow.rewrites.generator import graph_api as G
from xflow.rewrites.generator.generate import RULES_PATH
from xflow.rewrites.generator.graph_api import Editor, View
from xflow.rewrites.generator.ops import OPS, OpSpec, dim_value
from xflow.rewrites.generator.pattern import Pattern, is_var

__all__ = ["GeneratedRule", "generated_rules", "load_rule_set", "rules_from_doc", "ONNX_DEFAULTS"]

log = logging.getLogger(__name__)

#: ONNX defaults of the attributes a spec may leave unset (a graph node must have these values).
ONNX_DEFAULTS: dict[str, dict[str, Any]] = {
    "Conv": {"dilations": (1, 1), "group": 1, "auto_pad": "NOTSET"},
    "Gemm": {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0},
    "MaxPool": {"ceil_mode": 0, "dilations": (1, 1), "auto_pad": "NOTSET", "storage_order": 0},
    "AveragePool": {"ceil_mode": 0, "count_include_pad": 0, "auto_pad": "NOTSET", "dilations": (1, 1)},
}
_FLOATS = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16}
_MATCH_COMMUTATIVE = {"Add", "Mul", "ScalarMul"}


def _norm(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return tuple(_norm(x) for x in v)
    if isinstance(v, float) and float(v).is_integer():
        return int(v)
    return v


def _attrs_ok(spec: OpSpec, node: G.Node, view: View) -> str | None:
    got = G.attrs(node)
    want = dict(spec.attrs)
    if spec.op_type in ("Concat", "Split") and "axis" in got:
        shp = G.shape(view, G.inputs(node)[0])
        if shp is not None:
            got["axis"] = int(got["axis"]) % len(shp)
    if spec.op_type == "Split" and len(G.outputs(node)) != spec.n_out:
        return f"Split into {len(G.outputs(node))} parts, pattern has {spec.n_out}"
    if spec.op_type == "Transpose" and "perm" not in got:
        return "Transpose without perm"
    for k, v in want.items():
        if _norm(got.get(k, ONNX_DEFAULTS.get(spec.op_type, {}).get(k))) != _norm(v):
            return f"{G.op_type(node)} {k}={got.get(k)!r}, pattern needs {v!r}"
    for k, v in got.items():
        if k in want or k in ("split",):
            continue
        default = ONNX_DEFAULTS.get(spec.op_type, {})
        if k not in default or _norm(v) != _norm(default[k]):
            return f"{G.op_type(node)} has {k}={v!r}"
    return None


class _Match:
    """One unification state: pattern node index -> graph node, variable -> tensor."""

    __slots__ = ("nodes", "vars")

    def __init__(self, nodes: dict[int, G.Node] | None = None, vars: dict[str, str] | None = None):
        self.nodes = dict(nodes or {})
        self.vars = dict(vars or {})

    def copy(self) -> "_Match":
        return _Match(self.nodes, self.vars)


class GeneratedRule(Rule):
    """``src -> dst`` for one generated substitution (see the module docstring)."""

    name = ""  # per instance

    def __init__(self, name: str, src: Pattern, dst: Pattern, *, rule_class: str = "", meta: dict | None = None):
        self.name = name  # type: ignore[misc]
        self.src = src
        self.dst = dst
        self.rule_class = rule_class
        self.meta = meta or {}
        self._src_shapes = src.shapes()
        self._dst_shapes = dst.shapes()
        self.__doc__ = f"{src} -> {dst}"

    # -- unification ---------------------------------------------------------------------------
    def _unify_node(self, view: View, m: _Match, pi: int, g: G.Node,
                    fixed: dict[int, str] | None) -> Iterator[_Match]:
        spec = OPS[self.src.nodes[pi].op]
        if G.op_type(g) != spec.op_type or G.domain(g) not in ("", "ai.onnx"):
            return
        gname = G.node_name(g)
        if fixed is not None and fixed.get(pi) != gname:
            return
        if pi in m.nodes:
            if G.node_name(m.nodes[pi]) == gname:
                yield m
            return
        if any(G.node_name(n) == gname for n in m.nodes.values()):
            return
        ins = G.inputs(g)
        if spec.op_type == "Split":
            ins = ins[:1]
        if len(ins) != spec.arity:
            return
        if _attrs_ok(spec, g, view) is not None:
            return
        orders = [ins]
        if spec.key in _MATCH_COMMUTATIVE and ins[0] != ins[1]:
            orders.append([ins[1], ins[0]])
        for order in orders:
            m2 = m.copy()
            m2.nodes[pi] = g
            yield from self._unify_inputs(view, m2, self.src.nodes[pi].inputs, order, fixed)

    def _unify_inputs(self, view, m: _Match, refs, tensors, fixed) -> Iterator[_Match]:
        if not refs:
            yield m
            return
        r, t = refs[0], tensors[0]
        if is_var(r):
            if r in m.vars:
                if m.vars[r] != t:
                    return
                yield from self._unify_inputs(view, m, refs[1:], tensors[1:], fixed)
                return
            if t in m.vars.values():   # two variables bound to one tensor: a different rule
                return
            m2 = m.copy()
            m2.vars[r] = t
            yield from self._unify_inputs(view, m2, refs[1:], tensors[1:], fixed)
            return
        i, j = (int(x) for x in r.split(":"))
        p = G.producer(view, t)
        if p is None or G.outputs(p).index(t) != j:
            return
        for m2 in self._unify_node(view, m, i, p, fixed):
            yield from self._unify_inputs(view, m2, refs[1:], tensors[1:], fixed)

    def _complete(self, view: View, m: _Match, fixed) -> Iterator[_Match]:
        """Extend ``m`` until every pattern node is matched (multi-output rules)."""
        left = [i for i in range(len(self.src.nodes)) if i not in m.nodes]
        if not left:
            yield m
            return
        # a pattern node whose output is an output of the pattern, reading a bound variable
        pi = next((i for i in left if any(r in m.vars for r in self.src.nodes[i].inputs)), left[-1])
        spec = OPS[self.src.nodes[pi].op]
        bound = [m.vars[r] for r in self.src.nodes[pi].inputs if r in m.vars]
        if fixed is not None and pi in fixed:
            node = G.node_named(view, fixed[pi])
            cands = [node] if node is not None else []
        elif bound:
            cands = G.consumers(view, bound[0])
        else:
            cands = _by_op(view).get(spec.op_type, [])
        for g in cands:
            for m2 in self._unify_node(view, m, pi, g, fixed):
                yield from self._complete(view, m2, fixed)

    def _matches(self, view: View, fixed: dict[int, str] | None = None) -> Iterator[_Match]:
        first = int(self.src.outputs[0].split(":")[0])
        spec = OPS[self.src.nodes[first].op]
        if fixed is not None:
            node = G.node_named(view, fixed[first]) if first in fixed else None
            roots = [node] if node is not None else []
        else:
            roots = _by_op(view).get(spec.op_type, [])
        for g in roots:
            for m in self._unify_node(view, _Match(), first, g, fixed):
                yield from self._complete(view, m, fixed)

    # -- legality --------------------------------------------------------------------------------
    def _bindings(self, view: View, m: _Match) -> dict[str, int] | str:
        env: dict[str, int] = {}
        etypes = set()
        for v, shp in self.src.variables:
            t = m.vars[v]
            got = G.shape(view, t)
            if got is None:
                return f"{t}: static shape unknown"
            et = G.elem_type(view, t)
            if et not in _FLOATS:
                return f"{t}: element type {et} is not floating point"
            etypes.add(et)
            if len(got) != len(shp):
                return f"{t}: rank {len(got)}, pattern variable {v} has rank {len(shp)}"
            for d, g in zip(shp, got):
                if isinstance(d, int):
                    if g != d:
                        return f"{t}: dim {g} where the pattern needs {d}"
                    continue
                (sym,) = d
                if env.setdefault(sym, g) != g:
                    return f"{t}: {sym} would be both {env[sym]} and {g}"
        if len(etypes) > 1:
            return "inputs of different element types"
        return env

    def _legal(self, view: View, m: _Match) -> str | None:
        env = self._bindings(view, m)
        if isinstance(env, str):
            return env
        matched = {G.node_name(n) for n in m.nodes.values()}
        out_tensors = set()
        for k, ref in enumerate(self.src.outputs):
            i, j = (int(x) for x in ref.split(":"))
            out_tensors.add(G.outputs(m.nodes[i])[j])
        for pi, g in m.nodes.items():
            spec = OPS[self.src.nodes[pi].op]
            for t in G.outputs(g):
                if not t or t in out_tensors:
                    continue
                if G.is_graph_output(view, t):
                    return f"intermediate {t} is a graph output"
                if any(G.node_name(u) not in matched for u in G.consumers(view, t)):
                    return f"intermediate {t} is also read outside the match"
            if spec.kind == "split":
                ax, pos = spec.param
                d = self._src_shapes[self.src.nodes[pi].inputs[0]][ax]
                want = [dim_value(d[:pos], env), dim_value(d[pos:], env)]
                if G.split_sizes(view, g) != want:
                    return f"Split sizes {G.split_sizes(view, g)}, pattern needs {want}"
        if len(self.src.outputs) > 1 and _reaches(view, m.nodes.values(), set(m.vars.values())):
            return "a variable depends on a matched node (the rewrite would create a cycle)"
        return None

    # -- Rule protocol ---------------------------------------------------------------------------
    def _sites(self, view: View) -> Iterable[Location]:
        seen = set()
        for m in self._matches(view):
            loc = Location.of([G.node_name(m.nodes[i]) for i in range(len(self.src.nodes))])
            if loc not in seen:
                seen.add(loc)
                yield loc

    def _find(self, view: View, loc: Location) -> tuple[_Match | None, str | None]:
        if len(loc.nodes) != len(self.src.nodes):
            return None, f"location has {len(loc.nodes)} nodes, the pattern {len(self.src.nodes)}"
        fixed = dict(enumerate(loc.nodes))
        reason = None
        for m in self._matches(view, fixed):
            why = self._legal(view, m)
            if why is None:
                return m, None
            reason = reason or why   # the first unification tried is the pattern's own input order
        return None, reason or "the nodes do not form the source pattern"

    def _check(self, view: View, loc: Location) -> str | None:
        return self._find(view, loc)[1]

    def _rewrite(self, view: View, loc: Location, ed: Editor) -> None:
        m, why = self._find(view, loc)
        assert m is not None, why
        env = self._bindings(view, m)
        assert isinstance(env, dict)
        ed.remove(*m.nodes.values())
        names: dict[str, str] = dict(m.vars)
        consts: dict[str, np.ndarray] = {}
        for v, t in m.vars.items():
            c = G.const(view, t)
            if c is not None:
                consts[v] = c
        # a target output computed by a new node takes the name of the source output it replaces
        # (the removed node freed it), so readers and graph outputs need no bridging Identity
        keep_name: dict[str, str] = {}
        for src_ref, dst_ref in zip(self.src.outputs, self.dst.outputs):
            if not is_var(dst_ref) and dst_ref not in keep_name:
                i, j = (int(x) for x in src_ref.split(":"))
                keep_name[dst_ref] = G.outputs(m.nodes[i])[j]
        for i, n in enumerate(self.dst.nodes):
            spec = OPS[n.op]
            refs = [f"{i}:{j}" for j in range(spec.n_out)]
            if all(r in consts for r in n.inputs):
                xs = [consts[r] for r in n.inputs]
                if spec.kind == "split":
                    ax, pos = spec.param
                    vals = spec.split_eval(xs[0], dim_value(self._dst_shapes[n.inputs[0]][ax][:pos], env))
                else:
                    vals = spec.evaluate(xs)
                for r, val in zip(refs, vals):
                    consts[r] = np.asarray(val, dtype=xs[0].dtype)
                    names[r] = ed.add_initializer(f"{self.name}/const", consts[r])
                continue
            outs = [keep_name.get(r) or ed.fresh(f"{self.name}/{spec.op_type}_out") for r in refs]
            ins = [names[r] for r in n.inputs]
            if spec.kind == "split":
                ax, pos = spec.param
                d = self._dst_shapes[n.inputs[0]][ax]
                ed.split(ins[0], ax, [dim_value(d[:pos], env), dim_value(d[pos:], env)], outs)
            else:
                ed.add_node(spec.op_type, ins, outs, **spec.onnx_attrs())
            names.update(zip(refs, outs))
        for src_ref, dst_ref in zip(self.src.outputs, self.dst.outputs):
            i, j = (int(x) for x in src_ref.split(":"))
            replaced = G.outputs(m.nodes[i])[j]
            if names[dst_ref] != replaced:
                ed.replace_uses(replaced, names[dst_ref])

    def explain_text(self) -> str:
        """``src -> dst`` as terms."""
        return f"{self.src} -> {self.dst}"


def _by_op(view: View) -> dict[str, list[G.Node]]:
    cache = view.__dict__.get("_xflow_by_op")
    if cache is None:
        cache = {}
        for n in G.nodes(view):
            cache.setdefault(G.op_type(n), []).append(n)
        view.__dict__["_xflow_by_op"] = cache
    return cache


def _reaches(view: View, starts, targets: set[str]) -> bool:
    """Whether any tensor in ``targets`` is computed (transitively) from a node in ``starts``."""
    stack = [t for n in starts for t in G.outputs(n) if t]
    seen = set()
    while stack:
        t = stack.pop()
        if t in targets:
            return True
        if t in seen:
            continue
        seen.add(t)
        for u in G.consumers(view, t):
            stack.extend(o for o in G.outputs(u) if o)
    return False


def rules_from_doc(doc: dict[str, Any], *, reverse: bool = True) -> list[GeneratedRule]:
    """Rule objects of a rule-set document: each substitution forward and (unless its target is a
    bare variable) reversed as ``<name>~r``."""
    out = []
    for r in doc["rules"]:
        src, dst = Pattern.from_json(r["src"]), Pattern.from_json(r["dst"])
        meta = {"provenance": r.get("provenance", {}), "domain": r.get("domain")}
        out.append(GeneratedRule(r["name"], src, dst, rule_class=r.get("class", ""), meta=meta))
        if reverse and dst.nodes:
            out.append(GeneratedRule(r["name"] + "~r", dst, src, rule_class=r.get("class", ""), meta=meta))
    return out


@lru_cache(maxsize=4)
def load_rule_set(path: str | None = None) -> dict[str, Any]:
    """The committed rule-set document (``xflow/rewrites/generated/rules.json``)."""
    p = Path(path) if path else RULES_PATH
    return json.loads(p.read_text())


@lru_cache(maxsize=4)
def _cached_rules(path: str | None) -> tuple[GeneratedRule, ...]:
    return tuple(rules_from_doc(load_rule_set(path)))


def generated_rules(path: str | None = None) -> list[GeneratedRule]:
    """Every verified generated rule (both directions) as rule objects, cached per file."""
    return list(_cached_rules(path))
