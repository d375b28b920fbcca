"""Why is ``concat_matmul_add`` slower on NASRNN? Separating the operator change from the weights' working set.

``concat_matmul_add`` (X·W + H·U → Concat(X, H)·[W; U]) measures 5–17 % slower on NASRNN in ONNX
Runtime and in the torch backend (``costs.fidelity``, ``costs.fidelity_torch``), where every cost
model prices it as a gain of ≤ 0.1 %. NASRNN unrolls one cell over 5 steps, so each step's MatMuls
read the *same* 16 weight matrices (16 × 1 MiB). The rewrite gives one step its own new [W; U]
(2 MiB) while the other steps keep reading W and U: the weights the model streams through the
caches grow, with the same FLOPs. Two hypotheses, two predictions:

* **operator change** (Concat + one K = 1024 MatMul instead of two K = 512 MatMuls + Add): every
  rewritten site costs about the same whether or not the sites share one new matrix; duplicating a
  weight without changing any operator costs nothing.
* **working set**: duplicating W and U for one step (identical operators, +2 MiB of weights)
  costs about what the rewrite at that step costs; the rewrite at every step of one gate with one
  shared [W; U] costs about nothing (+1 MiB: the weights held are nearly those of the original),
  with a separate copy per step (+7 MiB) it costs more.
* **node order**: the Editor schedules a rewrite's new nodes after every node that does not depend
  on them, so the rewritten graph also runs in a different order. Then the original with only that
  order change (``original-displaced``) is slower too, and the rewrite with its new nodes put back
  where the replaced ones were (``rewrite-1-placed``) is not.

Variants (ONNX Runtime at level ``all`` and ``basic``, the torch backend; 1 thread, thread CPU time, one
interleaved run per backend with the original as baseline and an A/A control)::

    original       the model
    dup-1          one step's W and U of gate 0 duplicated (same operators, +2 MiB of weights)
    rewrite-1      concat_matmul_add at that step (+2 MiB)
    rewrite-all    concat_matmul_add at every step of gate 0, one new matrix per step
    rewrite-shared the same, the identical new matrices merged into one
    rewrite-1-placed   rewrite-1 with its new nodes where the replaced ones were (the original's order)
    original-displaced the original with rewrite-1's three nodes scheduled the way the Editor
                       schedules a rewrite's new nodes (operators unchanged: node order only)

Run::

    .venv/bin/python benchmarks/weight_working_set.py [--rounds 60] [--seed 0]

Each seed is one more independent run (fresh sessions, its own round order, its own inputs); a run
replaces only its own seed's rows, so runs of several seeds show how far a ratio moves between runs.

    .venv/bin/python benchmarks/weight_working_set.py --sessions 3 [--rounds 100]

times ``--sessions`` ORT sessions (level ``all``) of each of ``SESSION_VARIANTS`` in one interleaved
run, every session against the first session of the original, and writes
``results/costs/working_set_sessions.csv`` (table ``costs.working_set_sessions``): an effect that all
sessions of a variant show, and no second session of the original, is the graph's, not a session's.

writes ``results/costs/working_set.csv`` — the table ``costs.working_set`` in ``docs/rl.md``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RESULT = "costs/working_set.csv"
RESULT_SESSIONS = "costs/working_set_sessions.csv"
#: The variants of the several-sessions run (the contested ones, and the original's own spread).
SESSION_VARIANTS = ("original", "dup-1", "rewrite-1", "rewrite-1-placed", "original-displaced")
MODEL = "zoo:nasrnn"
RULE = "concat_matmul_add"


def weight_bytes(model: onnx.ModelProto) -> int:
    """Bytes of the initializers some node reads, each initializer counted once: what a runtime
    holds (neither ONNX Runtime nor the torch backend merges initializers of identical contents)."""
    used = {i for n in model.graph.node for i in n.input}
    return sum(numpy_helper.to_array(t).nbytes for t in model.graph.initializer if t.name in used)


def duplicate_weights(model: onnx.ModelProto, nodes: set[str]) -> onnx.ModelProto:
    """``model`` with each of ``nodes``' constant second input replaced by a copy of its own
    (new initializer, identical values): the operators stay, the weights held grow."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    inits = {t.name: t for t in m.graph.initializer}
    for n in m.graph.node:
        if n.name in nodes and n.input[1] in inits:
            copy = onnx.TensorProto()
            copy.CopyFrom(inits[n.input[1]])
            copy.name = f"{n.input[1]}/dup/{n.name}"
            m.graph.initializer.append(copy)
            n.input[1] = copy.name
    return m


def share_identical_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` with initializers of identical dtype, shape and values merged into the first one."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    from xflow.graphs.hashing import array_digest

    first: dict[bytes, str] = {}
    alias: dict[str, str] = {}
    for t in m.graph.initializer:
        alias[t.name] = first.setdefault(array_digest(numpy_helper.to_array(t)), t.name)
    for n in m.graph.node:
        for k, name in enumerate(n.input):
            if name in alias:
                n.input[k] = alias[name]
    keep = [t for t in m.graph.initializer if alias[t.name] == t.name]
    del m.graph.initializer[:]
    m.graph.initializer.extend(keep)
    return m


def _in_order(nodes: list, keys: list[float]) -> list:
    """``nodes`` in a topological order that, among ready nodes, takes the smallest key first: the
    graph core's stable order (:func:`xflow.graphs.edit.topological_order`, smallest list position
    first) over the nodes sorted by key."""
    from xflow.graphs.edit import topological_order

    ordered = [nodes[k] for _, k in sorted(zip(keys, range(len(nodes))))]
    return [ordered[i] for i in topological_order([list(n.input) for n in ordered], [list(n.output) for n in ordered])]


def _reordered(model: onnx.ModelProto, nodes: list) -> onnx.ModelProto:
    m = onnx.ModelProto()
    m.CopyFrom(model)
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    return m


def placed_like(model: onnx.ModelProto, reference: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` (a rewrite of ``reference``) with its nodes in ``reference``'s order: kept nodes
    keep their relative order, and a new node goes where the node it replaces was (the producer
    of the same output), or else just before its first consumer. The Editor instead schedules new
    nodes after every node that does not depend on them."""
    pos = {o: i for i, n in enumerate(reference.graph.node) for o in n.output}
    named = {n.name: i for i, n in enumerate(reference.graph.node)}
    nodes = list(model.graph.node)
    consumers: dict[str, list[int]] = {}
    for k, n in enumerate(nodes):
        for t in n.input:
            consumers.setdefault(t, []).append(k)
    keys: dict[int, float] = {}

    def key(k: int) -> float:  # memoized; a model's nodes form no cycle
        if k in keys:
            return keys[k]
        n = nodes[k]
        if n.name in named:
            v = float(named[n.name])
        elif any(o in pos for o in n.output):
            v = min(pos[o] for o in n.output if o in pos) - 0.5
        else:
            after = [key(c) for o in n.output for c in consumers.get(o, ())]
            v = (min(after) if after else float(len(nodes))) - 0.25
        keys[k] = v
        return v

    return _reordered(model, _in_order(nodes, [key(k) for k in range(len(nodes))]))


def displaced(model: onnx.ModelProto, names: set[str]) -> onnx.ModelProto:
    """``model`` with the nodes ``names`` moved to the end and the graph re-sorted as the Editor
    sorts an edit (smallest list position first among ready nodes): the same operators, the
    order a rewrite of those nodes would get."""
    nodes = [n for n in model.graph.node if n.name not in names] + [n for n in model.graph.node if n.name in names]
    return _reordered(model, _in_order(nodes, [float(k) for k in range(len(nodes))]))


def gate_sites(graph) -> list[list]:
    """The rule's locations grouped by the (W, U) pair they read, each group in graph order (one
    location per unrolled step of that gate)."""
    from xflow.graphs.ir import ins, outs
    from xflow.rewrites import get_rule

    rule = get_rule(RULE)
    order = {n.name: i for i, n in enumerate(graph.nodes)}
    producer = {o: n for n in graph.nodes for o in outs(n)}
    groups: dict[tuple[str, str], list] = {}
    for loc in rule.match(graph):
        add = graph.node(loc.nodes[0])
        key = tuple(sorted(ins(producer[x])[1] for x in ins(add)))
        groups.setdefault(key, []).append(loc)
    return [sorted(v, key=lambda loc: order[loc.nodes[0]]) for v in groups.values()]


def build_variants(graph) -> tuple[dict[str, onnx.ModelProto], dict[str, int]]:
    """The variants of the module docstring as ONNX models, and the rewritten sites of each."""
    from xflow.costs.ort_optimized import transient_proto
    from xflow.graphs.ir import ins, outs
    from xflow.rewrites import get_rule

    rule = get_rule(RULE)
    sites = max(gate_sites(graph), key=len)  # gate 0's sites: one per unrolled step the rule reaches
    mid = sites[len(sites) // 2]
    producer = {o: n for n in graph.nodes for o in outs(n)}
    add = graph.node(mid.nodes[0])
    matmuls = {producer[x].name for x in ins(add)}
    assert all(len(ins(graph.node(m))) == 2 for m in matmuls)
    original = transient_proto(graph)
    every = graph
    for loc in sites:
        every = rule.apply(every, loc)
    variants = {"original": original, "dup-1": duplicate_weights(original, matmuls),
                "rewrite-1": transient_proto(rule.apply(graph, mid)), "rewrite-all": transient_proto(every)}
    variants["rewrite-shared"] = share_identical_weights(variants["rewrite-all"])
    variants["rewrite-1-placed"] = placed_like(variants["rewrite-1"], original)
    site_nodes = {n.name for n in original.graph.node} - {n.name for n in variants["rewrite-1"].graph.node}
    variants["original-displaced"] = displaced(original, site_nodes)
    n = len(sites)
    return variants, {"original": 0, "dup-1": 0, "rewrite-1": 1, "rewrite-all": n, "rewrite-shared": n,
                      "rewrite-1-placed": 1, "original-displaced": 0}


def measure_backend(variants: dict[str, onnx.ModelProto], backend: str, *, rounds: int, seed: int):
    """One interleaved run of every variant on ``backend`` (``ort``: ONNX Runtime at level ``all``;
    ``ort-basic``: at level ``basic``, without the Gemm/activation fusions; ``torch``), baseline
    ``original``, with an A/A control."""
    from xflow.runtime.latency import measure_on_backend

    kind, level = {"ort": ("ort", "all"), "ort-basic": ("ort", "basic"), "torch": ("torch", "all")}[backend]
    return measure_on_backend(variants, kind, baseline="original", threads=1, level=level, warmup=5, rounds=rounds,
                              seed=seed)


def measure_sessions(variants: dict[str, onnx.ModelProto], sessions: int, *, rounds: int, seed: int) -> list[dict]:
    """``sessions`` ORT sessions (level ``all``, 1 thread) of each of :data:`SESSION_VARIANTS` in one
    interleaved run against ``original #0``; one row per session."""
    from xflow.runtime.latency import measure_on_backend

    models = {f"{v} #{j}": variants[v] for v in SESSION_VARIANTS for j in range(sessions)}
    m = measure_on_backend(models, "ort", baseline="original #0", threads=1, level="all", warmup=5, rounds=rounds,
                           seed=seed)
    cond = m.conditions()
    rows = []
    for label in models:
        variant, j = label.rsplit(" #", 1)
        c = m.compare(label, "original #0") if label != "original #0" else None
        rows.append({"backend": "ort", "variant": variant, "session": int(j), "model": MODEL,
                     "median_ms": m.median_ms(label), "ratio": c.ratio if c else 1.0, "lo": c.ci[0] if c else 1.0,
                     "hi": c.ci[1] if c else 1.0, "verdict": c.verdict if c else "baseline",
                     "noise_floor": m.noise_floor(), "clock": m.clock, "rounds": m.rounds,
                     "busy": bool(cond.get("busy")), "foreign_cpu": cond.get("foreign_cpu"), "threads": 1,
                     "seed": seed})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sessions", type=int, default=1,
                    help="> 1: several ORT sessions per variant instead (results/" + RESULT_SESSIONS + ")")
    ap.add_argument("--backends", nargs="+", default=["ort", "ort-basic", "torch"],
                    choices=["ort", "ort-basic", "torch"])
    args = ap.parse_args(argv)

    from xflow.costs import make_cost_model
    from xflow.graphs.ir import Graph
    from xflow.graphs.model_ids import resolve_graph
    from xflow.runtime.equivalence import compare_arrays
    from xflow.runtime.session import make_session, random_inputs
    from xflow.tables import save_result

    graph = resolve_graph(MODEL)
    variants, sites = build_variants(graph)
    feeds = random_inputs(variants["original"], seed=args.seed)
    ref = make_session(variants["original"], level="disable").run(None, feeds)
    for name, m in variants.items():  # every variant computes the original's outputs
        got = make_session(m, level="disable").run(None, feeds)
        bad = [d for d in compare_arrays(got, ref, [f"out{i}" for i in range(len(ref))]) if not d.ok]
        if bad:
            raise SystemExit(f"variant {name} changes output {bad[0].name}: {bad[0].reason}")
    if args.sessions > 1:
        rows = measure_sessions(variants, args.sessions, rounds=args.rounds, seed=args.seed)
        for r in rows:
            print(f"{r['variant']:<20} #{r['session']}  {r['median_ms']:7.3f} ms  x{r['ratio']:.3f} "  # noqa: T201
                  f"[{r['lo']:.3f}, {r['hi']:.3f}] {r['verdict']}", flush=True)
        print(f"wrote {save_result(rows, RESULT_SESSIONS, threads=1)}")  # noqa: T201
        return 0
    base_bytes = weight_bytes(variants["original"])
    cost = make_cost_model("ort")
    c0 = cost.cost(Graph.of(variants["original"]))
    rows = []
    for backend in args.backends:
        m = measure_backend(variants, backend, rounds=args.rounds, seed=args.seed)
        cond = m.conditions()
        for name, model in variants.items():
            c = m.compare(name, "original") if name != "original" else None
            rows.append({"backend": backend, "variant": name, "model": MODEL,
                         "extra_weight_mib": (weight_bytes(model) - base_bytes) / 2**20, "sites": sites[name],
                         "nodes": len(model.graph.node), "predicted_ort": cost.cost(Graph.of(model)) / c0,
                         "median_ms": m.median_ms(name), "ratio": c.ratio if c else 1.0,
                         "lo": c.ci[0] if c else 1.0, "hi": c.ci[1] if c else 1.0,
                         "verdict": c.verdict if c else "baseline", "noise_floor": m.noise_floor(),
                         "clock": m.clock, "rounds": m.rounds, "busy": bool(cond.get("busy")),
                         "foreign_cpu": cond.get("foreign_cpu"), "threads": 1, "seed": args.seed})
            r = rows[-1]
            print(f"{backend:<6} {name:<15} +{r['extra_weight_mib']:4.1f} MiB  {r['median_ms']:7.3f} ms  "  # noqa: T201
                  f"x{r['ratio']:.3f} [{r['lo']:.3f}, {r['hi']:.3f}] {r['verdict']}", flush=True)
    path = save_result(rows, RESULT, threads=1, replace_on=("backend", "seed"))  # runs of other seeds stay
    print(f"wrote {path}")  # noqa: T201 - benchmark script
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
