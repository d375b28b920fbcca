r"""TASO's enumeration: every graph of up to ``n`` operators, fingerprinted, grouped into candidates.

After TASO's ``src/generator/generator.cc`` (``dfs``): a depth-first search adds one operator at a
time to a graph over a fixed set of input variables (a :class:`Domain`: symbolic shapes such as
``x1: (m, k)``, ``w1: (k, n)``), computing each new tensor incrementally. Every graph is
fingerprinted by its **outputs** (produced tensors no node of the graph reads): their symbolic
shapes and their values, in the integers mod :data:`~xflow.rewrites.generator.ops.PRIME`, on
seeded random inputs at several symbol instantiations (``m=2, k=3, …`` and ``m=3, k=2, …``).
Graphs with equal fingerprints compute the same function with high probability and become
candidate substitutions.

TASO's pruning during the search, kept here:

* a graph in which two tensors (variables included) have equal values is not extended — it computes
  something twice (TASO: "should not have duplicated tensors");
* two nodes with the same op on the same inputs ("duplicated operators");
* commutative ops take their inputs in one order only; variables of equal shape are used in index
  order (``x2`` only after ``x1``; TASO's ``variable_ordering``, applied to graphs instead of pairs).

One addition: when a new tensor equals a *variable* (``Transpose(Transpose(x)) == x``), TASO drops
it silently; here the graph is also recorded as a candidate "collapse" rule whose target is the
variable itself (TENSAT's rule set has such rules: ``split_0(concat(x, y)) => x``).
"""
from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from xflow.rewrites.generator.ops import OPS, PRIME, dim_value, shape_value
from xflow.rewrites.generator.pattern import PNode, Pattern

__all__ = ["Domain", "DOMAINS", "Enumerated", "enumerate_graphs", "fingerprint_key"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Domain:
    """Variables (name, symbolic shape), op specs and symbol instantiations of one enumeration."""

    name: str
    variables: tuple[tuple[str, tuple], ...]
    ops: tuple[str, ...]
    envs: tuple[tuple[tuple[str, int], ...], ...]
    #: variables that are weights: never the data input of Conv or pooling (TASO skips conv on "w*")
    weights: tuple[str, ...] = ()

    def env_dicts(self) -> list[dict[str, int]]:
        """The symbol instantiations as dicts."""
        return [dict(e) for e in self.envs]


M, K, N, P = ("m",), ("k",), ("n",), ("p",)
B, C, D, H, W = ("b",), ("c",), ("d",), ("h",), ("w",)

#: The enumeration domains: matrices (MatMul, Gemm, elementwise, Transpose, Concat/Split) and
#: images (Conv, pooling, elementwise, Concat/Split). Symbol values differ per instantiation so that
#: shape coincidences do not fake equalities.
DOMAINS: dict[str, Domain] = {
    "matrix": Domain(
        "matrix",
        (("x1", (M, K)), ("x2", (M, K)), ("w1", (K, N)), ("w2", (K, N)), ("w3", (N, P)), ("s", ())),
        ("MatMul", "Gemm_tB", "Add", "Mul", "ScalarMul", "Relu", "Tanh", "Transpose_10",
         "Concat_0", "Concat_1", "Split_0_1", "Split_1_1"),
        ((("m", 2), ("k", 3), ("n", 4), ("p", 5)), (("m", 3), ("k", 5), ("n", 2), ("p", 4))),
    ),
    "image": Domain(
        "image",
        (("i1", (B, C, H, W)), ("i2", (B, C, H, W)), ("k1", (D, C, 3, 3)), ("k2", (D, C, 3, 3)),
         ("v1", (D, C, 1, 1)), ("v2", (D, C, 1, 1)), ("s", ())),
        ("Conv_3x3", "Conv_1x1", "Add", "Mul", "ScalarMul", "Relu", "MaxPool_3x3", "AveragePool_3x3",
         "Concat_0", "Concat_1", "Split_0_1", "Split_1_1"),
        ((("b", 1), ("c", 2), ("d", 3), ("h", 4), ("w", 3)), (("b", 2), ("c", 3), ("d", 2), ("h", 3), ("w", 4))),
        weights=("k1", "k2", "v1", "v2"),
    ),
}


def _hash(arr: np.ndarray) -> int:
    return hash((arr.shape, arr.tobytes()))


def fingerprint_key(shape, hashes: tuple[int, ...]) -> tuple:
    """Fingerprint of one output: its symbolic shape and value hashes (one per instantiation)."""
    return (repr(shape), hashes)


@dataclass
class Enumerated:
    """Result of :func:`enumerate_graphs`: graphs by fingerprint, collapse candidates, statistics."""

    domain: Domain
    buckets: dict[tuple, list[Pattern]] = field(default_factory=dict)
    collapses: list[tuple[Pattern, str]] = field(default_factory=list)  # (graph, variable it equals)
    n_graphs: int = 0
    time_s: float = 0.0


@dataclass
class _T:
    ref: str
    shape: tuple
    vals: tuple[np.ndarray, ...]      # per instantiation
    key: tuple[int, ...]              # value hashes per instantiation


def enumerate_graphs(domain: Domain, max_ops: int = 3, *, seed: int = 0,
                     max_graphs: int | None = None, progress: bool = False) -> Enumerated:
    """Every graph of ``1..max_ops`` operators over ``domain`` (see the module docstring)."""
    envs = domain.env_dicts()
    rng = np.random.default_rng(seed)
    var_tensors = []
    for name, shape in domain.variables:
        vals = tuple(rng.integers(0, PRIME, size=shape_value(shape, e), dtype=np.int64) for e in envs)
        var_tensors.append(_T(name, shape, vals, tuple(_hash(v) for v in vals)))
    var_names = [v for v, _ in domain.variables]
    classes: dict[str, list[str]] = {}
    for name, shape in domain.variables:
        classes.setdefault(repr(shape), []).append(name)
    prev_in_class = {}
    for names in classes.values():
        for a, b in zip(names, names[1:]):
            prev_in_class[b] = a
    specs = [OPS[k] for k in domain.ops]
    res = Enumerated(domain)
    t0 = time.perf_counter()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(desc=f"enumerate {domain.name}", unit="graph")

    tensors: list[_T] = list(var_tensors)
    keyset: dict[tuple, str] = {t.key: t.ref for t in var_tensors}
    nodes: list[PNode] = []
    used: set[str] = set()
    consumed: dict[str, int] = {}

    def record() -> None:
        outs = [t for t in tensors[len(var_tensors):] if consumed.get(t.ref, 0) == 0]
        if not outs or len(outs) > 2:
            return
        fp = tuple(sorted(fingerprint_key(t.shape, t.key) for t in outs))
        order = sorted(outs, key=lambda t: fingerprint_key(t.shape, t.key))
        pat = Pattern(tuple((v, s) for v, s in domain.variables if v in used), tuple(nodes),
                      tuple(t.ref for t in order))
        res.buckets.setdefault(fp, []).append(pat)

    def var_ok(refs) -> bool:
        seen = set(used)
        for r in refs:
            if r in var_names and r not in seen:
                p = prev_in_class.get(r)
                if p is not None and p not in seen:
                    return False
                seen.add(r)
        return True

    def combos(spec) -> Iterator[tuple[int, ...]]:
        n = len(tensors)
        if spec.arity == 1:
            for i in range(n):
                yield (i,)
        elif spec.commutative:
            yield from itertools.combinations(range(n), 2)
        else:
            for i in range(n):
                for j in range(n):
                    if i != j:
                        yield (i, j)

    def dfs(depth: int) -> None:
        if nodes:
            res.n_graphs += 1
            if bar is not None and res.n_graphs % 1000 == 0:
                bar.update(1000)
            record()
        if depth >= max_ops or (max_graphs is not None and res.n_graphs >= max_graphs):
            return
        for spec in specs:
            for idx in combos(spec):
                ins = [tensors[i] for i in idx]
                refs = tuple(t.ref for t in ins)
                if any(n.op == spec.key and n.inputs == refs for n in nodes):
                    continue
                if not var_ok(refs):
                    continue
                if spec.kind in ("conv", "pool") and refs[0] in domain.weights:
                    continue
                out_shapes = spec.shapes([t.shape for t in ins])
                if out_shapes is None:
                    continue
                # concrete outputs for every instantiation
                per_env = []
                for e_i, env in enumerate(envs):
                    xs = [t.vals[e_i] for t in ins]
                    if spec.kind == "split":
                        ax, pos = spec.param
                        first = dim_value(ins[0].shape[ax][:pos], env)
                        per_env.append(spec.split_eval(xs[0], first))
                    else:
                        per_env.append(spec.fingerprint(xs))
                new = []
                k = len(nodes)
                for j, shp in enumerate(out_shapes):
                    vals = tuple(np.ascontiguousarray(per_env[e][j]) for e in range(len(envs)))
                    new.append(_T(f"{k}:{j}", shp, vals, tuple(_hash(v) for v in vals)))
                dup = next((t for t in new if t.key in keyset), None)
                if dup is not None:
                    other = keyset[dup.key]
                    produced = tensors[len(var_tensors):]
                    single = all(consumed.get(t.ref, 0) + refs.count(t.ref) > 0 for t in produced)
                    if other in var_names and len(new) == 1 and single:
                        # a collapse: this 1-node extension computes a variable
                        pat = Pattern(tuple((v, s) for v, s in domain.variables if v in used | set(refs)),
                                      tuple(nodes) + (PNode(spec.key, refs),), (f"{k}:0",))
                        res.collapses.append((pat, other))
                    continue
                if len(new) == 2 and new[0].key == new[1].key:
                    continue
                # push
                nodes.append(PNode(spec.key, refs))
                added_used = [r for r in refs if r in var_names and r not in used]
                used.update(added_used)
                for r in refs:
                    consumed[r] = consumed.get(r, 0) + 1
                for t in new:
                    tensors.append(t)
                    keyset[t.key] = t.ref
                dfs(depth + 1)
                for t in new:
                    tensors.pop()
                    del keyset[t.key]
                for r in refs:
                    consumed[r] -= 1
                used.difference_update(added_used)
                nodes.pop()

    dfs(0)
    if bar is not None:
        bar.close()
    res.time_s = time.perf_counter() - t0
    log.info("enumerated %d graphs over %s (≤ %d ops) in %.1f s: %d fingerprints", res.n_graphs,
             domain.name, max_ops, res.time_s, len(res.buckets))
    return res
