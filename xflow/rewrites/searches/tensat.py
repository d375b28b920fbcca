r"""TENSAT: equality saturation over the generated rules with egglog, then extraction (Yang et al.,
MLSys 2021; uwplse/tensat ``src/main.rs``, ``src/rewrites.rs``, ``src/optimize.rs``,
``extractor/extract.py``).

1. **Encoding.** The ONNX graph becomes egglog terms of sort ``T``: ``(Leaf name)`` for graph
   inputs, initializers and constants, ``(N1 sig a)`` … ``(N4 sig a b c d)`` / ``(NL sig list)``
   for a node with signature ``sig`` (op type + non-default attributes), ``(Split2 axis first x)``
   for a two-way Split, ``(Out i x)`` for output ``i`` of a multi-output node and one ``(Root …)``
   over the graph outputs (TENSAT's ``noop`` chain). Static shapes are facts ``(rank t)``,
   ``(dim t i)``; a ``shapes`` ruleset infers them for new terms (TENSAT's ``TensorAnalysis``).
2. **Rules.** Every generated rule becomes an egglog rule whose query is the source pattern plus
   a shape guard (each variable's rank and dims unify with its symbolic shape — TENSAT's
   ``CheckApply`` refuses ill-shaped targets the same way) and whose action unions each source
   output with the target. Single-output rules form the ``single`` ruleset; rules with two
   outputs are TENSAT's **multi-pattern rules** (``converted_multi.txt``), in ruleset ``multi``,
   run only in the first ``k_multi`` iterations (TENSAT's ``--iter_multi``, default 1).
3. **Saturation** one iteration at a time until saturated or a limit is hit: ``node_limit``
   e-nodes, ``iter_limit`` iterations, or its share of the time budget (TENSAT: egg's runner with
   a node limit, ``--n_iter``, ``--n_sec``; see :func:`tensat_search` for the split).
4. **Cycles** (TENSAT ``--no_cycle``, ``remove_cycle_by_order`` after saturation): cycles
   reachable from the root are broken by blacklisting one new e-node of each
   (:func:`~xflow.rewrites.searches.tensat_egraph.break_cycles`); the input term's e-nodes, found
   by structure, are never blacklisted; extraction never picks a blacklisted node.
5. **Extraction** with the search's cost model, per e-node (the nominal roofline of that node
   at its shapes; nodes whose inputs are all constants cost 0, as TASO folds them): ``greedy``
   (egg's ``Extractor``) or ``ilp`` (TENSAT's ILP, HiGHS), see
   :mod:`~xflow.rewrites.searches.tensat_extract`; the greedy answer always exists and is kept
   when the ILP finds nothing better in its time.
6. The extracted term is rebuilt as ONNX, weight-only nodes folded, and verified against the input.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper

from xflow.errors import XflowError
from xflow.rewrites.generator import graph_api as G
from xflow.rewrites.generator.ops import OPS
from xflow.rewrites.generator.pattern import Pattern, is_var
from xflow.rewrites.generator.rule import _FLOATS, GeneratedRule, generated_rules
from xflow.rewrites.search import CostFn, SearchResult
from xflow.rewrites.searches import tensat_egraph as E
from xflow.rewrites.searches import tensat_extract as X
from xflow.rewrites.verify import Verifier

__all__ = ["tensat_search", "TensatStats", "signature", "encode", "egglog_rule"]

log = logging.getLogger(__name__)

_DEFAULTS = {
    "Conv": {"dilations": (1, 1), "group": 1, "auto_pad": "NOTSET", "strides": (1, 1), "pads": (0, 0, 0, 0)},
    "Gemm": {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0},
    "MaxPool": {"ceil_mode": 0, "dilations": (1, 1), "auto_pad": "NOTSET", "storage_order": 0,
                "strides": (1, 1), "pads": (0, 0, 0, 0)},
    "AveragePool": {"ceil_mode": 0, "count_include_pad": 0, "auto_pad": "NOTSET", "dilations": (1, 1),
                    "strides": (1, 1), "pads": (0, 0, 0, 0)},
}


def _fmt(v: Any) -> str:
    if isinstance(v, (tuple, list)):
        return ",".join(_fmt(x) for x in v)
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).replace('"', "'")


def signature(op_type: str, attrs: dict[str, Any], domain: str = "") -> str:
    """``op|k=v|…`` with attributes at their ONNX default dropped (so equal ops print equally)."""
    d = _DEFAULTS.get(op_type, {})
    parts = [op_type if not domain else f"{domain}::{op_type}"]
    for k in sorted(attrs):
        v = attrs[k]
        if isinstance(v, np.ndarray) or hasattr(v, "node"):
            parts.append(f"{k}=<{id(v)}>")  # tensors / graphs: never equal to a rule's op
            continue
        if k in d and _fmt(v) == _fmt(d[k]):
            continue
        parts.append(f"{k}={_fmt(v)}")
    return "|".join(parts)


def _spec_sig(key: str) -> str:
    spec = OPS[key]
    return signature(spec.op_type, dict(spec.attrs))


@dataclass
class TensatStats:
    """What the saturation did: e-graph size, iterations, why it stopped, times."""

    nodes: int = 0
    classes: int = 0
    iterations: int = 0
    stop_reason: str = ""
    saturation_s: float = 0.0
    extraction_s: float = 0.0
    blacklisted: int = 0
    n_rules_single: int = 0
    n_rules_multi: int = 0
    extract: str = "ilp"
    ilp_status: str = ""
    budget_s: float = 0.0
    elapsed_s: float = 0.0           # on the search's clock: saturation + extraction + rebuild + verification
    polls: int = 0                   # clock reads: a deterministic count of budget checks
    original_nodes: int = 0          # e-nodes of the input term, found again in the e-graph
    original_cost: float = 0.0       # their summed e-node costs (equals the cost of the input)
    greedy_cost: float = 0.0         # DAG cost of the greedy extraction (each picked e-node once)
    extracted_cost: float = 0.0      # DAG cost of what was extracted
    rebuilt_cost: float = float("nan")  # the cost model on the rebuilt ONNX graph
    extracted: str = ""              # greedy | ilp | original (why)
    changed: bool = False            # the result differs from the input

    def as_dict(self) -> dict[str, Any]:
        """JSON-able dict."""
        return dict(self.__dict__)


# ---------------------------------------------------------------------------------------------
# encoding the graph
# ---------------------------------------------------------------------------------------------
@dataclass
class _Enc:
    view: G.View
    lines: list[str] = field(default_factory=list)
    var_of: dict[str, str] = field(default_factory=dict)          # tensor -> egglog global
    sig_info: dict[str, tuple[str, dict, str, int]] = field(default_factory=dict)  # sig -> op, attrs, domain, n_out
    leaves: set[str] = field(default_factory=set)
    root_outputs: list[str] = field(default_factory=list)
    #: global -> (constructor, primitive args, child globals): the original term's e-nodes, found
    #: again in the saturated e-graph by structure (serialized node ids are not stable)
    struct: dict[str, tuple[str, tuple, tuple[str, ...]]] = field(default_factory=dict)


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', "'") + '"'


def encode(model: onnx.ModelProto) -> _Enc:
    """The egglog program text that builds ``model``'s term and its shape facts."""
    view = G.view_of(model)
    enc = _Enc(view)
    counter = [0]

    def glob(expr: str, op: str = "", prims: tuple = (), kids: tuple = ()) -> str:
        counter[0] += 1
        name = f"$t{counter[0]}"
        enc.lines.append(f"(let {name} {expr})")
        if op:
            enc.struct[name] = (op, tuple(prims), tuple(kids))
        return name

    def leaf(t: str) -> str:
        if t not in enc.var_of:
            enc.var_of[t] = glob(f"(Leaf {_q(t)})", "Leaf", (t,), ())
            enc.leaves.add(t)
        return enc.var_of[t]

    for t in G.graph_inputs(view) + G.initializer_names(view):
        leaf(t)
    for n in G.nodes(view):
        op, ins, outs = G.op_type(n), G.inputs(n), G.outputs(n)
        if op == "Constant" or (op == "Identity" and G.const(view, outs[0]) is not None
                                and G.is_initializer(view, ins[0])):
            leaf(outs[0])
            continue
        attrs = G.attrs(n)
        if op == "Split" and len(outs) == 2:
            sizes = G.split_sizes(view, n)
            shp = G.shape(view, ins[0])
            if sizes is not None and shp is not None:
                axis = int(attrs.get("axis", 0)) % len(shp)
                x = enc.var_of.get(ins[0]) or leaf(ins[0])
                node = glob(f"(Split2 {axis} {sizes[0]} {x})", "Split2", (axis, int(sizes[0])), (x,))
                enc.sig_info.setdefault("Split", ("Split", {}, "", 2))
                for j, o in enumerate(outs):
                    if o:
                        enc.var_of[o] = glob(f"(Out {j} {node})", "Out", (j,), (node,))
                continue
        if op in ("Concat", "Transpose", "Split") and "axis" in attrs:
            shp = G.shape(view, ins[0])
            if shp is not None:
                attrs["axis"] = int(attrs["axis"]) % len(shp)
        if op == "Split":
            sizes = G.split_sizes(view, n)
            attrs["sizes"] = tuple(sizes) if sizes else ("?",)
            ins = ins[:1]
        sig = signature(op, attrs, G.domain(n))
        enc.sig_info.setdefault(sig, (op, attrs, G.domain(n), len(outs)))
        args = [enc.var_of.get(t) or leaf(t) if t else leaf("") for t in ins]
        if 1 <= len(args) <= 4:
            expr = f"(N{len(args)} {_q(sig)} {' '.join(args)})"
            struct = (f"N{len(args)}", (sig,), tuple(args))
        else:
            struct = ("", (), ())  # NL: rules never make one, so it is never blacklisted
            lst = "(TNil)"
            for a in reversed(args):
                lst = f"(TCons {a} {lst})"
            expr = f"(NL {_q(sig)} {lst})"
        node = glob(expr, *struct)
        if len(outs) == 1:
            enc.var_of[outs[0]] = node
        else:
            for j, o in enumerate(outs):
                if o:
                    enc.var_of[o] = glob(f"(Out {j} {node})", "Out", (j,), (node,))
    enc.root_outputs = G.graph_outputs(view)
    lst = "(TNil)"
    for o in reversed(enc.root_outputs):
        lst = f"(TCons {enc.var_of.get(o) or leaf(o)} {lst})"
    enc.lines.append(f"(let $root (Root {lst}))")

    for t, g in enc.var_of.items():
        shp = G.shape(view, t) if t else None
        if shp is None or G.elem_type(view, t) not in _FLOATS:
            continue
        enc.lines.append(f"(set (rank {g}) {len(shp)})")
        enc.lines.extend(f"(set (dim {g} {i}) {d})" for i, d in enumerate(shp))
    return enc


_HEADER = """
(datatype T
  (Leaf String) (N1 String T) (N2 String T T) (N3 String T T T) (N4 String T T T T)
  (NL String T) (Split2 i64 i64 T) (Out i64 T) (Root T) (TNil) (TCons T T))
(function rank (T) i64 :merge old)
(function dim (T i64) i64 :merge old)
(ruleset shapes)
(ruleset single)
(ruleset multi)
"""


def _shape_rules() -> str:
    """The ``shapes`` ruleset: ranks/dims of terms made by rules (TENSAT's tensor analysis)."""
    r = []
    s = lambda k: _q(_spec_sig(k))  # noqa: E731
    for u in ("Relu", "Sigmoid", "Tanh", "MaxPool_3x3", "AveragePool_3x3"):
        r.append(f"(rule ((= ?e (N1 {s(u)} ?a)) (= (rank ?a) ?r)) ((set (rank ?e) ?r)) :ruleset shapes)")
        r.append(f"(rule ((= ?e (N1 {s(u)} ?a)) (= (dim ?a ?i) ?d)) ((set (dim ?e ?i) ?d)) :ruleset shapes)")
    for op in ("Add", "Mul"):
        r.append(f"(rule ((= ?e (N2 {_q(op)} ?a ?b)) (= (rank ?a) ?r) (= (rank ?b) ?r)) ((set (rank ?e) ?r)) :ruleset shapes)")
        r.append(f"(rule ((= ?e (N2 {_q(op)} ?a ?b)) (= (dim ?a ?i) ?d) (= (dim ?b ?i) ?d)) ((set (dim ?e ?i) ?d)) :ruleset shapes)")
    r.append("(rule ((= ?e (N2 \"Mul\" ?a ?b)) (= (rank ?b) 0) (= (rank ?a) ?r)) ((set (rank ?e) ?r)) :ruleset shapes)")
    r.append("(rule ((= ?e (N2 \"Mul\" ?a ?b)) (= (rank ?b) 0) (= (dim ?a ?i) ?d)) ((set (dim ?e ?i) ?d)) :ruleset shapes)")
    mm = (f"(rule ((= ?e (N2 {s('MatMul')} ?a ?b)) (= (rank ?a) 2) (= (rank ?b) 2) (= (dim ?a 0) ?m) (= (dim ?b 1) ?n))"
          f" ((set (rank ?e) 2) (set (dim ?e 0) ?m) (set (dim ?e 1) ?n)) :ruleset shapes)")
    gm = (f"(rule ((= ?e (N2 {s('Gemm_tB')} ?a ?b)) (= (rank ?a) 2) (= (rank ?b) 2) (= (dim ?a 0) ?m) (= (dim ?b 0) ?n))"
          f" ((set (rank ?e) 2) (set (dim ?e 0) ?m) (set (dim ?e 1) ?n)) :ruleset shapes)")
    tr = (f"(rule ((= ?e (N1 {s('Transpose_10')} ?a)) (= (rank ?a) 2) (= (dim ?a 0) ?m) (= (dim ?a 1) ?n))"
          f" ((set (rank ?e) 2) (set (dim ?e 0) ?n) (set (dim ?e 1) ?m)) :ruleset shapes)")
    r += [mm, gm, tr]
    for conv in ("Conv_3x3", "Conv_1x1"):
        r.append(f"(rule ((= ?e (N2 {s(conv)} ?x ?w)) (= (rank ?x) 4) (= (dim ?x 0) ?b) (= (dim ?w 0) ?d)"
                 f" (= (dim ?x 2) ?h) (= (dim ?x 3) ?v)) ((set (rank ?e) 4) (set (dim ?e 0) ?b) (set (dim ?e 1) ?d)"
                 f" (set (dim ?e 2) ?h) (set (dim ?e 3) ?v)) :ruleset shapes)")
    for ax in (0, 1):
        c = s(f"Concat_{ax}")
        r.append(f"(rule ((= ?e (N2 {c} ?a ?b)) (= (rank ?a) ?r)) ((set (rank ?e) ?r)) :ruleset shapes)")
        r.append(f"(rule ((= ?e (N2 {c} ?a ?b)) (= (dim ?a ?i) ?d) (!= ?i {ax})) ((set (dim ?e ?i) ?d)) :ruleset shapes)")
        r.append(f"(rule ((= ?e (N2 {c} ?a ?b)) (= (dim ?a {ax}) ?p) (= (dim ?b {ax}) ?q)) ((set (dim ?e {ax}) (+ ?p ?q))) :ruleset shapes)")
    r.append("(rule ((= ?e (Out ?j (Split2 ?ax ?f ?x))) (= (rank ?x) ?r)) ((set (rank ?e) ?r)) :ruleset shapes)")
    r.append("(rule ((= ?e (Out ?j (Split2 ?ax ?f ?x))) (= (dim ?x ?i) ?d) (!= ?i ?ax)) ((set (dim ?e ?i) ?d)) :ruleset shapes)")
    r.append("(rule ((= ?e (Out 0 (Split2 ?ax ?f ?x)))) ((set (dim ?e ?ax) ?f)) :ruleset shapes)")
    r.append("(rule ((= ?e (Out 1 (Split2 ?ax ?f ?x))) (= (dim ?x ?ax) ?d)) ((set (dim ?e ?ax) (- ?d ?f))) :ruleset shapes)")
    return "\n".join(r)


# ---------------------------------------------------------------------------------------------
# rules
# ---------------------------------------------------------------------------------------------
def _term(p: Pattern, ref: str, env_vars: dict[str, str], split_first: dict[int, str]) -> str:
    if is_var(ref):
        return f"?{ref}"
    i, j = (int(x) for x in ref.split(":"))
    n = p.nodes[i]
    spec = OPS[n.op]
    args = [_term(p, r, env_vars, split_first) for r in n.inputs]
    if spec.kind == "split":
        return f"(Out {j} (Split2 {spec.param[0]} {split_first[i]} {args[0]}))"
    return f"(N{len(args)} {_q(_spec_sig(n.op))} {' '.join(args)})"


def _dim_expr(d, symvar: dict[str, str]) -> str:
    if isinstance(d, int):
        return str(d)
    terms = [symvar[s] for s in d]
    out = terms[0]
    for t in terms[1:]:
        out = f"(+ {out} {t})"
    return out


def egglog_rule(name: str, src: Pattern, dst: Pattern, ruleset: str) -> str:
    """An egglog rule for ``src -> dst`` with the shape guard (see the module docstring)."""
    facts = []
    symvar: dict[str, str] = {}
    for v, shp in src.variables:
        facts.append(f"(= (rank ?{v}) {len(shp)})")
        for i, d in enumerate(shp):
            if isinstance(d, int):
                facts.append(f"(= (dim ?{v} {i}) {d})")
            else:
                (sym,) = d
                if sym in symvar:
                    facts.append(f"(= (dim ?{v} {i}) {symvar[sym]})")
                else:
                    symvar[sym] = f"?sym_{sym}"
                    facts.append(f"(= (dim ?{v} {i}) {symvar[sym]})")
    src_shapes, dst_shapes = src.shapes(), dst.shapes()
    src_split = {}
    for i, n in enumerate(src.nodes):
        spec = OPS[n.op]
        if spec.kind == "split":
            d = src_shapes[n.inputs[0]][spec.param[0]]
            src_split[i] = f"?split{i}"
            facts.append(f"(= ?split{i} {_dim_expr(d[:spec.param[1]], symvar)})")
    dst_split = {}
    for i, n in enumerate(dst.nodes):
        spec = OPS[n.op]
        if spec.kind == "split":
            d = dst_shapes[n.inputs[0]][spec.param[0]]
            dst_split[i] = _dim_expr(d[:spec.param[1]], symvar)
    outs = []
    for k, ref in enumerate(src.outputs):
        facts.insert(k, f"(= ?out{k} {_term(src, ref, {}, src_split)})")
        outs.append(f"(union ?out{k} {_term(dst, dst.outputs[k], {}, dst_split)})")
    return f"(rule ({' '.join(facts)}) ({' '.join(outs)}) :ruleset {ruleset} :name {_q(name)})"


# ---------------------------------------------------------------------------------------------
# the search
# ---------------------------------------------------------------------------------------------
def tensat_search(model: onnx.ModelProto, cost: CostFn, *, rules: Sequence | None = None,
                  node_limit: int = 50_000, iter_limit: int = 15, time_limit_s: float = 60.0,
                  k_multi: int = 1, extract: str = "ilp", ilp_time_s: float = 60.0, no_cycle: bool = True,
                  verify: bool = True, saturation_share: float = 0.5, reserve_share: float = 0.1,
                  clock: Callable[[], float] = time.perf_counter, **_: Any) -> SearchResult:
    r"""Equality saturation + extraction (see the module docstring) within ``time_limit_s`` in all.

    The budget :math:`T` is split: saturation starts no iteration after
    :math:`t_0 + s T` (``saturation_share`` :math:`s`) nor one that the last iteration's duration,
    scaled by the e-graph's growth, says would end after it; cycle filtering, costing and
    extraction must end by :math:`t_0 + (1 - r) T` (``reserve_share`` :math:`r` is left for
    rebuilding and verifying). The greedy extraction runs first; the ILP then gets
    ``min(ilp_time_s, time left)`` and replaces it only with a solution at most as costly (no ILP
    solution in time means the greedy one); a phase out of time means the input graph, which is
    always a valid extraction (anytime). Not interruptible: one egglog iteration (hence the
    prediction) and the final ORT verification of a changed graph.

    Returns a :class:`SearchResult` whose ``actions`` is empty (an e-graph has no rewrite
    sequence) and ``stats`` the TENSAT counters (:class:`TensatStats`)."""
    import egglog.bindings as eb

    if extract not in ("greedy", "ilp"):
        raise XflowError(f"unknown extraction {extract!r}; use greedy or ilp")
    bud = E.Budget(time_limit_s, clock, saturation_share, reserve_share)
    t0 = time.perf_counter()
    rules = [r for r in (rules if rules is not None else generated_rules()) if isinstance(r, GeneratedRule)]
    stats = TensatStats(extract=extract, budget_s=time_limit_s)
    enc = encode(model)
    eg = eb.EGraph()
    single, multi = [], []
    for r in rules:
        (single if len(r.src.outputs) == 1 else multi).append(
            egglog_rule(r.name, r.src, r.dst, "single" if len(r.src.outputs) == 1 else "multi"))
    stats.n_rules_single, stats.n_rules_multi = len(single), len(multi)
    # egglog's parser/type checker grows quadratically with one program's size (765 rules in one
    # program took > 9 GB here): feed it in small chunks
    for chunk in [[_HEADER], _shape_rules().splitlines(), single, multi, enc.lines]:
        for k in range(0, len(chunk), 10):
            eg.run_program(*eg.parse_program("\n".join(chunk[k:k + 10])))
    eg.run_program(*eg.parse_program("(run-schedule (saturate shapes))"))
    first_seen: dict[tuple, int] = {}
    ev = E.EGraphView(json.loads(eg.serialize([]).to_json()))
    E.note_first_seen(ev, first_seen, 0)
    stop = "saturated"
    it = 0
    last_iter_s, growth = 0.0, 1.0
    while True:
        if it >= iter_limit:
            stop = "iteration limit"
            break
        # egglog cannot stop inside an iteration: start none that would end past the saturation
        # share of the budget by the last one's duration times the e-graph's last growth
        if bud.left(bud.saturation_end) < last_iter_s * growth:
            stop = "time limit"
            break
        t_it = bud.now()
        sched = "(run single 1)" if it >= k_multi else "(run multi 1) (run single 1)"
        out = eg.run_program(*eg.parse_program(sched))
        eg.run_program(*eg.parse_program("(run-schedule (saturate shapes))"))
        it += 1
        before = ev.size()
        ev = E.EGraphView(json.loads(eg.serialize([]).to_json()))
        E.note_first_seen(ev, first_seen, it)
        last_iter_s = bud.now() - t_it
        growth = max(1.0, ev.size() / max(1, before))
        if ev.size() > node_limit:
            stop = "node limit"
            break
        if not _changed(out) and it > k_multi:
            stop = "saturated"
            break
    stats.iterations, stats.stop_reason = it, stop
    stats.nodes, stats.classes = ev.size(), len(ev.classes)
    stats.saturation_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    root = E.root_class(ev)
    original = _original_nodes(ev, enc)
    stats.original_nodes = len(original)
    choice = _extract(ev, enc, root, cost, original, first_seen, bud, stats, extract=extract,
                      ilp_time_s=ilp_time_s, no_cycle=no_cycle)
    init = float(cost(model))
    best, best_cost = model, init
    if choice is not None:
        new = _rebuild(ev, enc, root, choice)
        stats.extraction_s = time.perf_counter() - t1
        new_cost = float(cost(new))
        stats.rebuilt_cost = new_cost
        if new_cost < init:  # an extraction is only as good as its cost model: never return a costlier graph
            best, best_cost = new, new_cost
            if verify:
                v = Verifier(model).check(new)
                if not v.ok:
                    log.warning("tensat: extracted graph is not equivalent to the input (%s); keeping the input",
                                v.reason)
                    best, best_cost = model, init
                    stats.extracted = "original (not verified)"
    else:
        stats.extraction_s = time.perf_counter() - t1
    stats.changed = best is not model
    stats.elapsed_s = bud.elapsed()
    stats.polls = bud.polls
    res = SearchResult("tensat", G.view_of(best), best_cost, init, [], [init, best_cost], stats.nodes,
                       stats.iterations, time.perf_counter() - t0)
    res.stats = stats.as_dict()  # type: ignore[attr-defined]
    return res


def _extract(ev: E.EGraphView, enc: _Enc, root: str, cost: CostFn, original: set[str],
             first_seen: dict[tuple, int], bud: E.Budget, stats: TensatStats, *, extract: str,
             ilp_time_s: float, no_cycle: bool) -> dict[str, E.ENode] | None:
    """Cycle filtering, per-e-node costs, greedy then (``ilp``) the ILP, each within the
    extraction deadline; ``None`` (keep the input) when even the greedy answer is out of time."""
    end = bud.extraction_end
    blacklist: set[str] = set()
    cycles_left = True
    try:
        costs = _node_costs(ev, enc, cost, bud, end)
        stats.original_cost = sum(costs.get(i, 0.0) for i in original)
        # greedy needs no filtering (non-negative costs, strict improvement: its choice is acyclic)
        choice = X.greedy_extract(ev, costs, blacklist, bud, end)
        if no_cycle:
            picked = {n.id for n in choice.values()}
            blacklist = E.break_cycles(ev, root, original, first_seen, bud, end, keep=picked)
            cycles_left = False
            if blacklist & picked:
                choice = X.greedy_extract(ev, costs, blacklist, bud, end)
        stats.blacklisted = len(blacklist)
    except E.OutOfTime as exc:
        stats.extracted = f"original (out of time in {exc})"
        return None
    stats.extracted = "greedy"
    stats.greedy_cost = X.dag_cost(ev, root, choice, costs)
    stats.extracted_cost = stats.greedy_cost
    if extract == "ilp":
        left = min(ilp_time_s, bud.left(end))
        if left <= 0.0:
            stats.ilp_status = "skipped: no time left"
            return choice
        try:
            ilp, status = X.ilp_extract(ev, root, costs, blacklist, left, order=not no_cycle or cycles_left)
        except XflowError as exc:
            stats.ilp_status = f"no solution: {exc}"
            return choice
        stats.ilp_status = status
        if ilp is not None:
            ilp_cost = X.dag_cost(ev, root, ilp, costs)
            if ilp_cost <= stats.greedy_cost + 1e-12:
                stats.extracted, stats.extracted_cost = "ilp", ilp_cost
                return ilp
    return choice


def _changed(outputs) -> bool:
    for o in outputs:
        rep = getattr(o, "report", None)
        if rep is not None and hasattr(rep, "updated"):
            return bool(rep.updated)
    return True


def _original_nodes(ev: E.EGraphView, enc: _Enc) -> set[str]:
    """Ids of the e-nodes that make up the input term, found by structure bottom-up (TENSAT gives
    them no order, so they are never blacklisted: every cycle holds at least one new e-node)."""
    index: dict[tuple, E.ENode] = {}
    for ns in ev.classes.values():
        for n in ns:
            index[(n.op, tuple(map(str, n.prims)), tuple(n.children))] = n
    cls_of: dict[str, str] = {}
    out: set[str] = set()
    for g, (op, prims, kids) in enc.struct.items():
        if any(k not in cls_of for k in kids):
            continue
        n = index.get((op, tuple(map(str, prims)), tuple(cls_of[k] for k in kids)))
        if n is not None:
            cls_of[g] = n.cls
            out.add(n.id)
    # lists, the root and leaves are only ever made by the encoding
    out.update(n.id for ns in ev.classes.values() for n in ns if n.op in ("TCons", "TNil", "Root", "Leaf", "NL"))
    return out


def _node_costs(ev: E.EGraphView, enc: _Enc, cost: CostFn, bud: E.Budget, end: float) -> dict[str, float]:
    """Per-e-node cost: the cost model on a one-node model at the e-node's shapes; 0 for leaves,
    projections, lists, the root and nodes whose inputs are all constants (folded, as TASO does).
    Polls the budget once per sweep of the constant fixpoint and every 64 distinct costings."""
    const_cls: set[str] = set()
    for cls, ns in ev.classes.items():
        for n in ns:
            if n.op == "Leaf" and (G.is_initializer(enc.view, n.prims[0]) or G.const(enc.view, n.prims[0]) is not None):
                const_cls.add(cls)
    changed = True
    while changed:  # classes computable from constants only
        changed = False
        if bud.left(end) <= 0:
            raise E.OutOfTime("costing")
        for cls, ns in ev.classes.items():
            if cls in const_cls:
                continue
            for n in ns:
                if n.op in ("N1", "N2", "N3", "N4", "Split2", "Out") and E.tensor_children(ev, n) and \
                        all(c in const_cls for c in E.tensor_children(ev, n)):
                    const_cls.add(cls)
                    changed = True
                    break
    cache: dict[tuple, float] = {}
    out: dict[str, float] = {}
    for cls, ns in ev.classes.items():
        for n in ns:
            if n.op in ("Leaf", "Out", "TNil", "TCons", "Root"):
                out[n.id] = 0.0
                continue
            kids = E.tensor_children(ev, n)
            if kids and all(c in const_cls for c in kids):
                out[n.id] = 0.0
                continue
            shapes = tuple(ev.shape(c) for c in kids)
            out_shapes = _out_shapes(ev, cls, n)
            key = (n.op, tuple(map(str, n.prims)), shapes, out_shapes)
            if key not in cache:
                if len(cache) % 64 == 0 and bud.left(end) <= 0:
                    raise E.OutOfTime("costing")
                cache[key] = _one_node_cost(n, shapes, out_shapes, enc, cost)
            out[n.id] = cache[key]
    return out


def _out_shapes(ev: E.EGraphView, cls: str, n: E.ENode) -> tuple:
    if cls in ev.out_shapes:  # a multi-output node: its outputs are the Out classes pointing at it
        outs = ev.out_shapes[cls]
        return tuple(outs.get(i) for i in range(max(outs) + 1))
    return (ev.shape(cls),)


def _one_node_cost(n: E.ENode, in_shapes: tuple, out_shapes: tuple, enc: _Enc, cost: CostFn) -> float:
    """``cost`` of a model holding only this node (inputs as graph inputs at their shapes)."""
    if any(s is None for s in in_shapes) or any(s is None for s in out_shapes) or not out_shapes:
        return 0.0
    if n.op == "Split2":
        op_type, attrs, dom, n_out = "Split", {"axis": int(n.prims[0])}, "", 2
    else:
        op_type, attrs, dom, n_out = _sig_info(str(n.prims[0]), enc)
    f = onnx.TensorProto.FLOAT
    ins = [helper.make_tensor_value_info(f"i{k}", f, list(s)) for k, s in enumerate(in_shapes)]
    outs = [helper.make_tensor_value_info(f"o{k}", f, list(s)) for k, s in enumerate(out_shapes)]
    attrs = {k: v for k, v in attrs.items() if k != "sizes"}
    inputs = [f"i{k}" for k in range(len(in_shapes))]
    inits = []
    if op_type == "Split":
        first = int(n.prims[1]) if n.op == "Split2" else None
        sizes = [first, in_shapes[0][attrs["axis"]] - first] if first is not None else \
            [s[attrs.get("axis", 0)] for s in out_shapes]
        inits.append(numpy_helper.from_array(np.array(sizes, dtype=np.int64), "sizes"))
        inputs.append("sizes")
    node = helper.make_node(op_type, inputs, [f"o{k}" for k in range(len(out_shapes))], domain=dom or None, **attrs)
    g = helper.make_graph([node], "one", ins, outs, initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    try:
        return float(cost(m))
    except Exception:  # noqa: BLE001 - an op the cost model cannot read costs nothing extra
        return 0.0


def _sig_info(sig: str, enc: _Enc) -> tuple[str, dict, str, int]:
    if sig in enc.sig_info:
        return enc.sig_info[sig]
    for key, spec in OPS.items():
        if _spec_sig(key) == sig:
            return spec.op_type, dict(spec.attrs), "", spec.n_out
    raise XflowError(f"tensat: unknown signature {sig!r}")


def _rebuild(ev: E.EGraphView, enc: _Enc, root: str, choice: dict[str, E.ENode]) -> onnx.ModelProto:
    """The extracted term as ONNX (weight-only rule ops folded), outputs keep their names."""
    view = enc.view
    src = G.proto(view)
    nodes: list[onnx.NodeProto] = []
    inits: dict[str, onnx.TensorProto] = {}
    consts: dict[str, np.ndarray] = {}
    name_of: dict[str, str] = {}
    multi_outs: dict[str, list[str]] = {}
    leaf_nodes: list[onnx.NodeProto] = []
    counter = [0]

    def fresh(base: str) -> str:
        counter[0] += 1
        return f"tensat/{base}_{counter[0]}"

    def const_of(t: str) -> np.ndarray | None:
        if t in consts:
            return consts[t]
        return G.const(view, t)

    def build(cls: str) -> str:
        if cls in name_of:
            return name_of[cls]
        n = choice.get(cls)
        if n is None:
            raise XflowError(f"tensat: extraction picked no node for class {cls}")
        if n.op == "Leaf":
            t = n.prims[0]
            if not G.is_initializer(view, t) and t not in G.graph_inputs(view):
                # a constant made by a node (Constant, Identity of an initializer): that node is
                # kept as it was, so the extraction changes only what the rules change
                p = G.producer(view, t)
                if p is None:
                    raise XflowError(f"tensat: leaf {t!r} is neither an input nor a constant")
                p = G.node_proto(view, p)
                if all(q.name != p.name for q in leaf_nodes):
                    leaf_nodes.append(p)
            name_of[cls] = t
            return t
        if n.op == "Out":
            j = int(n.prims[0])
            outs = build_multi(n.children[0])
            name_of[cls] = outs[j]
            return outs[j]
        outs = build_multi(cls, n)
        name_of[cls] = outs[0]
        return outs[0]

    def build_multi(cls: str, n: E.ENode | None = None) -> list[str]:
        if cls in multi_outs:
            return multi_outs[cls]
        n = n or choice[cls]
        ins = [build(c) for c in E.tensor_children(ev, n)]
        if n.op == "Split2":
            op_type, attrs, dom, n_out = "Split", {"axis": int(n.prims[0])}, "", 2
            shp = ev.shape(E.tensor_children(ev, n)[0])
            sizes = [int(n.prims[1]), shp[attrs["axis"]] - int(n.prims[1])]
        else:
            op_type, attrs, dom, n_out = _sig_info(str(n.prims[0]), enc)
            sizes = list(attrs.get("sizes", ())) if op_type == "Split" else None
        attrs = {k: v for k, v in attrs.items() if k != "sizes"}
        outs = [fresh(op_type) for _ in range(n_out)]
        vals = [const_of(t) for t in ins]
        spec_key = next((k for k, s in OPS.items() if s.op_type == op_type and
                         signature(s.op_type, dict(s.attrs)) == signature(op_type, attrs)), None)
        if spec_key is not None and ins and all(v is not None for v in vals) and OPS[spec_key].kind != "split":
            res = OPS[spec_key].evaluate(vals)
            for o, r in zip(outs, res):
                consts[o] = np.asarray(r, dtype=vals[0].dtype)
                inits[o] = numpy_helper.from_array(consts[o], o)
        else:
            if op_type == "Split" and sizes:
                sname = fresh("split_sizes")
                inits[sname] = numpy_helper.from_array(np.array(sizes, dtype=np.int64), sname)
                ins = ins + [sname]
            nodes.append(helper.make_node(op_type, [t for t in ins], outs, name=fresh(op_type + "_node"),
                                          domain=dom or None, **attrs))
        multi_outs[cls] = outs
        return outs

    root_node = choice[root]
    out_classes = E.list_items(ev, root_node.children[0])
    out_names = [build(c) for c in out_classes]
    g = onnx.GraphProto()
    g.name = src.graph.name
    nodes = leaf_nodes + nodes
    # a node made here that computes a graph output writes it under the output's name (no
    # bridging Identity, which would cost what the original graph does not pay)
    made = {o for n in nodes[len(leaf_nodes):] for o in n.output}
    rename: dict[str, str] = {}
    for o_info, name in zip(src.graph.output, out_names):
        if name != o_info.name and name in made and name not in rename and out_names.count(name) == 1:
            rename[name] = o_info.name
    if rename:
        for n in nodes:
            n.input[:] = [rename.get(t, t) for t in n.input]
            n.output[:] = [rename.get(t, t) for t in n.output]
        out_names = [rename.get(t, t) for t in out_names]
    used = {t for n in nodes for t in n.input} | set(out_names)
    g.input.extend([i for i in src.graph.input if not G.is_initializer(view, i.name) or i.name in used])
    keep_src = [t for t in src.graph.initializer if t.name in used]
    g.initializer.extend(keep_src)
    g.initializer.extend([t for k, t in inits.items() if k in used])
    g.node.extend(nodes)
    for o_info, name in zip(src.graph.output, out_names):
        if name != o_info.name:
            g.node.append(helper.make_node("Identity", [name], [o_info.name], name=fresh("output")))
    g.output.extend(src.graph.output)
    m = onnx.ModelProto()
    m.CopyFrom(src)
    m.graph.CopyFrom(g)
    order = G.toposort(m.graph.node, {i.name for i in m.graph.input} | {t.name for t in m.graph.initializer})
    del m.graph.node[:]
    m.graph.node.extend(order)
    return m
