"""Candidate substitutions from fingerprint buckets, and TASO's pruning of redundant ones.

A bucket of graphs with one fingerprint gives candidate pairs ``(representative, graph)`` — TASO
pairs each new graph with the bucket's first one; here the representative is the bucket's smallest
graph (fewest nodes, then term order), so the result does not depend on the DFS order.

Pruning, after TASO's ``pass_checks`` and ``same_via_subst`` (SOSP'19 §3.3):

* **common subgraph** — both graphs contain the same op on the same *variables*: the pair is
  implied by the smaller pair with that op's output as a new variable;
* **common supergraph** — both outputs are the same op and differ in at most one input: implied
  by the pair of those inputs;
* **input renaming** — a pair equal to another one after renaming variables of equal shape
  (and up to swapping sides: every rule is used in both directions) is a duplicate;
* the two sides must read the same variables (a side that ignores a variable cannot be inverted).
"""
from __future__ import annotations

from dataclasses import dataclass

from xflow.rewrites.generator.enumerate import Enumerated
from xflow.rewrites.generator.pattern import Pattern, is_var

__all__ = ["Candidate", "candidate_pairs", "common_subgraph", "common_supergraph", "canonical_key"]


@dataclass(frozen=True)
class Candidate:
    """A candidate substitution ``src ≡ dst`` (outputs aligned by position) from one domain."""

    domain: str
    src: Pattern
    dst: Pattern
    origin: str          # "fingerprint" or "collapse"


def common_subgraph(a: Pattern, b: Pattern) -> bool:
    """Both graphs apply the same op to the same variables (TASO ``find_same_subgraph``)."""
    ops_a = {(n.op, n.inputs) for n in a.nodes if all(is_var(r) for r in n.inputs)}
    return any((n.op, n.inputs) in ops_a for n in b.nodes if all(is_var(r) for r in n.inputs))


def common_supergraph(a: Pattern, b: Pattern) -> bool:
    """Single outputs made by the same op with at most one differing input (TASO
    ``find_same_supergraph``: an input counts as equal only when it is the same variable)."""
    if len(a.outputs) != 1 or len(b.outputs) != 1 or is_var(a.outputs[0]) or is_var(b.outputs[0]):
        return False
    na = a.nodes[int(a.outputs[0].split(":")[0])]
    nb = b.nodes[int(b.outputs[0].split(":")[0])]
    if na.op != nb.op or a.outputs[0].split(":")[1] != b.outputs[0].split(":")[1]:
        return False
    diff = sum(1 for x, y in zip(na.inputs, nb.inputs) if not (x == y and is_var(x)))
    return diff <= 1


def _first_use(p: Pattern) -> list[str]:
    order: list[str] = []

    def walk(ref: str) -> None:
        if is_var(ref):
            if ref not in order:
                order.append(ref)
            return
        for r in p.nodes[int(ref.split(":")[0])].inputs:
            walk(r)

    for r in p.outputs:
        walk(r)
    return order


def _canonical(src: Pattern, dst: Pattern) -> str:
    """Both sides printed with variables renamed ``a0, a1, …`` in order of first use in ``src``
    and symbols renamed ``s0, s1, …`` in order of first appearance in their shapes."""
    order = _first_use(src) + [v for v in _first_use(dst) if v not in _first_use(src)]
    shapes = src.var_shapes | dst.var_shapes
    vmap = {v: f"a{i}" for i, v in enumerate(order)}
    smap: dict[str, str] = {}
    sig = []
    for v in order:
        dims = []
        for d in shapes[v]:
            if isinstance(d, int):
                dims.append(str(d))
            else:
                for sym in d:
                    smap.setdefault(sym, f"s{len(smap)}")
                dims.append("+".join(smap[sym] for sym in d))
        sig.append(f"{vmap[v]}:({','.join(dims)})")
    return f"{src.rename(vmap)} == {dst.rename(vmap)} ; {' '.join(sig)}"


def canonical_key(src: Pattern, dst: Pattern) -> str:
    """The pair's canonical form up to renaming variables and symbols (same rule on other
    variables of another shape class) and swapping sides (every rule is used both ways)."""
    return min(_canonical(src, dst), _canonical(dst, src))


def _size(p: Pattern) -> tuple:
    return (len(p.nodes), str(p))


def candidate_pairs(enum: Enumerated) -> tuple[list[Candidate], dict[str, int]]:
    """Pruned candidate pairs of one enumeration and counts of what each pruning removed."""
    stats = {"buckets": 0, "pairs": 0, "common_subgraph": 0, "common_supergraph": 0,
             "variables_differ": 0, "renaming_duplicate": 0, "kept": 0}
    out: list[Candidate] = []
    seen: set[str] = set()

    def consider(src: Pattern, dst: Pattern, origin: str) -> None:
        stats["pairs"] += 1
        if src.used_variables() != dst.used_variables():
            stats["variables_differ"] += 1
            return
        if origin == "fingerprint":
            if common_subgraph(src, dst):
                stats["common_subgraph"] += 1
                return
            if common_supergraph(src, dst):
                stats["common_supergraph"] += 1
                return
        key = canonical_key(src, dst)
        if key in seen:
            stats["renaming_duplicate"] += 1
            return
        seen.add(key)
        out.append(Candidate(enum.domain.name, src, dst, origin))

    for graphs in enum.buckets.values():
        if len(graphs) < 2:
            continue
        uniq = {str(g): g for g in graphs}
        if len(uniq) < 2:
            continue
        stats["buckets"] += 1
        ordered = sorted(uniq.values(), key=_size)
        rep = ordered[0]
        for g in ordered[1:]:
            consider(rep, g, "fingerprint")
    for pat, var in enum.collapses:
        target = Pattern(tuple((v, s) for v, s in pat.variables if v == var), (), (var,))
        consider(pat, target.restrict([v for v, _ in pat.variables if v == var]), "collapse")
    stats["kept"] = len(out)
    return out, stats
