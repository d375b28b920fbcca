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

import logging
from typing import Sequence

import onnx

from xflow.graphs.edit import Changes
from xflow.graphs.ir import Graph
from xflow.rewrites._base import Location, Rule
from xflow.rewrites._registry import RULES, get_rule
from xflow.rewrites.verify import Verifier, verify_local

__all__ = ["Candidate", "candidates", "graph_hash"]

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
