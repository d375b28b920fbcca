"""Incremental candidate generation: after a rewrite, re-match only around the changed nodes.

A :class:`CandidateSet` holds, for the current graph, every structural site of every rule
(``rule._sites``) with its outcome: the :class:`~xflow.rewrites.candidates.EditDiff` of the rewrite
there, or the reason it does not apply. :meth:`CandidateSet.advance` moves it to the graph one
rewrite later: sites whose nodes lie outside the *region* — the nodes the rewrite added, the kept
nodes that read or wrote a tensor it touched, and everything within ``hops`` edges of those
(undirected) — keep their outcome (their candidate ids are remapped to the new enumeration
order); only sites that touch the region are checked and diffed again. ``hops`` must cover how
far a rule's pattern and check look from its anchor nodes (the correctness test replays random
rollouts on zoo models and compares every step with :meth:`CandidateSet.build` from scratch).

Nothing here builds a candidate graph: a :class:`LazyCandidate` builds its graph (a tensor-sharing
clone, through the rule) only when asked — when the agent picks it, or a search costs it.
"""
from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from xflow.graphs.ir import Graph, ins, node_reads, outs
from xflow.rewrites._base import Location, Rule
from xflow.rewrites._registry import RULES, get_rule
from xflow.rewrites.candidates import EditDiff, edit_diff
from xflow.rewrites.verify import Verifier, verify_local

__all__ = ["CandidateSet", "LazyCandidate", "SiteOutcome", "region_of", "share_constants", "VERIFY_MODES"]

log = logging.getLogger(__name__)

#: ``verify`` settings of the environment: ``False`` (offer every match), ``"shape"`` (the cheap
#: check: tensors leaving the changed region keep shape and dtype), ``"local"``/``"full"`` (shape
#: check plus ONNX Runtime on the rewritten region / the whole model; slow).
VERIFY_MODES = (False, "shape", "local", "full")


@dataclass
class SiteOutcome:
    """One structural site of one rule: its diff when the rule applies, else why not."""

    rule_index: int
    loc: Location
    diff: EditDiff | None
    reason: str | None
    fingerprint: int = 0


class LazyCandidate:
    """A candidate action: ``rule`` name, ``location``, its :class:`EditDiff` (``diff``), and —
    built on first access, through the rule, from ``source`` — ``graph`` and ``hash``."""

    __slots__ = ("rule", "location", "diff", "source", "_rule", "_graph", "_hash")

    def __init__(self, rule: Rule, location: Location, diff: EditDiff, source: Graph) -> None:
        self._rule = rule
        self.rule = rule.name
        self.location = location
        self.diff = diff
        self.source = source
        self._graph: Graph | None = None
        self._hash: str | None = None

    @property
    def graph(self) -> Graph:
        """The rewritten graph (built once; shares tensors with :attr:`source`)."""
        if self._graph is None:
            self._graph = self._rule.apply(self.source, self.location)
        return self._graph

    @property
    def hash(self) -> str:
        """Graph hash of :attr:`graph`."""
        if self._hash is None:
            self._hash = self.graph.content_hash
        return self._hash

    @property
    def model(self):
        """The rewritten model as an ``onnx.ModelProto``."""
        return self.graph.model

    @property
    def changes(self):
        """Which node names the rewrite removed and added (builds the graph)."""
        return self.graph.changes

    def action(self) -> dict:
        """JSON-able ``{"rule": …, "location": …}``."""
        return {"rule": self.rule, "location": self.location.to_json()}

    def release(self) -> None:
        """Drop the built graph (memory stays bounded by the current step)."""
        self._graph = None

    def __repr__(self) -> str:
        return f"LazyCandidate(rule={self.rule!r}, location={self.location})"


def share_constants(old: Graph, new: Graph) -> int:
    """Give ``new`` the numpy views of the initializers it shares with ``old`` (same tensor
    object), so rules reading weights (``Graph.const``) on the next graph do not convert them
    from the protobuf again; returns how many were shared. (``Graph`` caches constants per
    instance; a tensor-sharing clone starts with an empty cache.)"""
    return new.share_constants(old)


def fingerprint(g: Graph, names: Iterable[str]) -> int:
    """Hash of the wiring around ``names`` in ``g``: each node's op, input and output names, the
    readers of its outputs and of its inputs (siblings), and which outputs are graph outputs. A
    site whose fingerprint did not change sees the same neighbourhood, so its outcome stands."""
    parts = []
    by_name, cons = g.node_by_name, g.consumer_map
    for n in sorted(set(names)):
        node = by_name.get(n)
        if node is None:
            return -1
        i, o = ins(node), outs(node)
        parts.append((n, node.op_type, tuple(i), tuple(o),
                      tuple(tuple(c.name for c in cons.get(t, ())) for t in o),
                      tuple(tuple(c.name for c in cons.get(t, ())) for t in i if t),
                      tuple(g.is_graph_output(t) for t in o)))
    return hash(tuple(parts))


def ancestor_bits(g: Graph) -> dict[str, int]:
    """``{node name: bitset of its ancestors (node positions) and itself}``, one topological pass."""
    idx = g.node_index
    bits: dict[str, int] = {}
    prod = g.producer
    for n in g.nodes:
        b = 1 << idx[n.name]
        for t in node_reads(n):
            p = prod(t)
            if p is not None:
                b |= bits[p.name]
        bits[n.name] = b
    return bits


#: Rules whose check looks beyond any neighbourhood: ``{rule name: (reason prefix of the global
#: failure, test(graph, ancestor bits, loc) -> True when the global condition fails)}``. Their
#: sites are re-tested on every step with the cheap index; a changed answer re-runs the rule.
def _convs_depend(g: Graph, bits: dict[str, int], loc: Location) -> bool:
    idx = g.node_index
    mask = 0
    for n in loc.nodes:
        mask |= 1 << idx[n]
    for n in loc.nodes:
        x = ins(g.node_by_name[n])[0]
        p = g.producer(x)
        if p is not None and bits[p.name] & mask:
            return True
    return False


GLOBAL_CHECKS = {"group_parallel_convs": _convs_depend}


def region_of(old: Graph, new: Graph, hops: int) -> set[str]:
    """Node names of ``new`` within ``hops`` (undirected) edges of what ``new.changes`` touched:
    the added nodes and the kept nodes reading or writing a tensor a removed node read or wrote."""
    ch = new.changes
    if ch is None:
        return set(new.node_by_name)
    touched: set[str] = set()
    for name in ch.removed:
        n = old.node_by_name.get(name)
        if n is not None:
            touched.update(node_reads(n))
            touched.update(o for o in outs(n) if o)
    seeds = {a for a in ch.added if a in new.node_by_name}
    for t in touched:
        p = new.producer(t)
        if p is not None:
            seeds.add(p.name)
        seeds.update(c.name for c in new.consumers(t))
    for a in list(seeds):
        n = new.node_by_name[a]
        for t in node_reads(n):
            seeds.update(c.name for c in new.consumers(t))
    region = set(seeds)
    frontier = deque((s, 0) for s in seeds)
    while frontier:
        name, d = frontier.popleft()
        if d >= hops:
            continue
        n = new.node_by_name[name]
        nbrs = [p.name for p in new.predecessors(n)] + [s.name for s in new.successors(n)]
        for m in nbrs:
            if m not in region:
                region.add(m)
                frontier.append((m, d + 1))
    return region


class CandidateSet:
    """Every site of every rule on one graph, kept up to date one rewrite at a time.

    Args:
        rules: rule objects or names (default: every registered rule).
        hops: how far from the changed nodes sites are re-checked (see the module docstring).
        verify: one of :data:`VERIFY_MODES`.
    """

    def __init__(self, rules: Sequence[Rule | str] | None = None, *, hops: int = 3,
                 verify: bool | str = "shape") -> None:
        if verify not in VERIFY_MODES and verify is not True:
            raise ValueError(f"verify must be one of {VERIFY_MODES}, got {verify!r}")
        self.rules: list[Rule] = [get_rule(r) if isinstance(r, str) else r
                                  for r in (rules if rules is not None else RULES)]
        self.hops = int(hops)
        self.verify = "local" if verify is True else verify
        self.graph: Graph | None = None
        self.sites: dict[tuple[int, Location], SiteOutcome] = {}
        self.order: list[tuple[int, Location]] = []
        #: sites checked and diffed by the last build/advance (the incremental work)
        self.last_checked = 0

    # -- computing outcomes ------------------------------------------------------------------
    def _outcome(self, i: int, rule: Rule, g: Graph, loc: Location) -> SiteOutcome:
        reason = rule._safe_check(g, loc)
        if reason is not None:
            return SiteOutcome(i, loc, None, reason, fingerprint(g, loc.nodes))
        try:
            d = edit_diff(rule, g, loc)
        except Exception as exc:  # noqa: BLE001 - a crashing rule must not kill the env
            log.warning("rule %s failed to apply at %s: %s", rule.name, loc, exc)
            return SiteOutcome(i, loc, None, f"apply failed: {exc}", fingerprint(g, loc.nodes))
        return SiteOutcome(i, loc, d, None, fingerprint(g, set(loc.nodes) | d.footprint))

    def _enumerate(self, g: Graph) -> Iterable[tuple[int, Rule, Location]]:
        for i, rule in enumerate(self.rules):
            for loc in dict.fromkeys(rule._sites(g)):
                yield i, rule, loc

    def build(self, graph: Graph) -> "CandidateSet":
        """Outcomes of every site of ``graph``, from scratch."""
        self.graph = graph
        self.sites, self.order = {}, []
        for i, rule, loc in self._enumerate(graph):
            self.sites[(i, loc)] = self._outcome(i, rule, graph, loc)
            self.order.append((i, loc))
        self.last_checked = len(self.order)
        return self

    def advance(self, new: Graph) -> "CandidateSet":
        """Move to ``new`` (one rewrite of the current graph, with ``new.changes``): sites outside
        the changed region keep their outcome, the others are checked again."""
        old = self.graph
        if old is None or new.changes is None:
            return self.build(new)
        share_constants(old, new)
        region = region_of(old, new, self.hops)
        gone = set(new.changes.removed)
        old_sites = self.sites
        sites: dict[tuple[int, Location], SiteOutcome] = {}
        order = []
        checked = 0
        bits = None
        for i, rule, loc in self._enumerate(new):
            key = (i, loc)
            prev = old_sites.get(key)
            stale = prev is None
            if not stale:
                nodes = set(loc.nodes) | (prev.diff.footprint if prev.diff is not None else set())
                if any(n in gone for n in nodes):
                    stale = True
                elif any(n in region for n in nodes):
                    stale = fingerprint(new, nodes) != prev.fingerprint
            if not stale and rule.name in GLOBAL_CHECKS:
                bits = bits if bits is not None else ancestor_bits(new)
                was_ok = prev.diff is not None
                fails = GLOBAL_CHECKS[rule.name](new, bits, loc)
                if was_ok == fails:
                    stale = True
            if stale:
                sites[key] = self._outcome(i, rule, new, loc)
                checked += 1
            else:
                sites[key] = prev
            order.append(key)
        self.graph, self.sites, self.order, self.last_checked = new, sites, order, checked
        return self

    # -- the action list ---------------------------------------------------------------------
    def candidates(self, max_candidates: int) -> list[LazyCandidate]:
        """The offered candidates: sites that apply (and pass the check of :attr:`verify`), in
        rule-registry then site order, first of each edit signature, at most ``max_candidates``."""
        out: list[LazyCandidate] = []
        seen: set[str] = set()
        g = self.graph
        for key in self.order:
            s = self.sites[key]
            d = s.diff
            if d is None or d.signature in seen:
                continue
            if self.verify and d.verdict is not None:
                continue
            seen.add(d.signature)
            c = LazyCandidate(self.rules[s.rule_index], s.loc, d, g)
            if self.verify in ("local", "full"):
                if d.numeric is None:  # checked once per diff: kept sites keep their verdict
                    d.numeric = _numeric_ok(g, c, self.verify)
                if not d.numeric:
                    continue
            out.append(c)
            if len(out) >= max_candidates:
                break
        return out

    def signature(self) -> list[tuple[str, Location, str, str | None]]:
        """``(rule, location, edit signature, verdict)`` of every applying site — what the
        incremental/from-scratch equality test compares."""
        out = []
        for key in self.order:
            s = self.sites[key]
            if s.diff is not None:
                out.append((self.rules[s.rule_index].name, s.loc, s.diff.signature, s.diff.verdict))
        return out


def _numeric_ok(view: Graph, c: LazyCandidate, mode: str) -> bool:
    verdict = Verifier(view.model).check(c.model) if mode == "full" else verify_local(view, c.graph)
    if not verdict.ok:
        log.warning("dropping %s at %s: not equivalent (%s)", c.rule, c.location, verdict.reason)
    c.release()
    return bool(verdict.ok)


def describe(cs: CandidateSet) -> dict[str, Any]:
    """Counts for logs and the env bench: sites, applying sites, re-checked last step."""
    applying = sum(1 for s in cs.sites.values() if s.diff is not None)
    return {"sites": len(cs.order), "applying": applying, "rechecked": cs.last_checked}
