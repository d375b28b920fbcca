"""All one-step rewrites of a model: every (rule × location), deduplicated by graph hash, verified.

This is the action set of the X-RLflow environment and the neighbourhood of the search
baselines. Each :class:`Candidate` holds the rewritten model and its :func:`model_hash`; a
candidate whose outputs differ from the source model's (ONNX Runtime, optimizations disabled,
seeded random inputs) is dropped and logged at WARNING — that would be a rule bug.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import onnx

from xflow.rewrites._base import Location, Rule
from xflow.rewrites._graph import GraphView

__all__ = ["Candidate", "candidates", "graph_hash"]

log = logging.getLogger(__name__)


def graph_hash(model: onnx.ModelProto) -> str:
    """Stable content hash (ignores names and metadata): :func:`xflow.graphs.model_hash`."""
    from xflow.graphs.hashing import model_hash

    return model_hash(model)


@dataclass(frozen=True)
class Candidate:
    """One rewrite of a model: ``rule`` name, ``location``, the new ``model`` and its ``hash``."""

    rule: str
    location: Location
    model: onnx.ModelProto
    hash: str

    def action(self) -> dict:
        """JSON-able ``{"rule": …, "location": …}`` (replay with :func:`xflow.rewrites.apply_action`)."""
        return {"rule": self.rule, "location": self.location.to_json()}


def candidates(
    model: onnx.ModelProto,
    rules: Sequence[Rule | str] | None = None,
    max_candidates: int = 500,
    verify: bool | str = True,
    *,
    exclude_hashes: Sequence[str] = (),
) -> list[Candidate]:
    """Every distinct graph one rewrite away from ``model``.

    Args:
        model: the source model (not mutated).
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
    from xflow.rewrites import RULES, get_rule

    rule_objs = [get_rule(r) if isinstance(r, str) else r for r in (rules if rules is not None else RULES)]
    view = GraphView.of(model)
    seen = {graph_hash(model), *exclude_hashes}
    verifier = None
    out: list[Candidate] = []
    for rule in rule_objs:
        for loc in rule.match(view):
            if len(out) >= max_candidates:
                return out
            try:
                new = rule.apply(view, loc)
            except Exception as exc:  # noqa: BLE001 - a crashing rule must not kill the search
                log.warning("rule %s failed to apply at %s: %s", rule.name, loc, exc)
                continue
            h = graph_hash(new)
            if h in seen:
                continue
            seen.add(h)
            if verify:
                from xflow.rewrites.verify import Verifier, verify_local

                if verify == "full":
                    verifier = verifier or Verifier(model)
                    verdict = verifier.check(new)
                else:
                    verdict = verify_local(view.model, new)
                if not verdict.ok:
                    log.warning("dropping %s at %s: not equivalent (%s)", rule.name, loc, verdict.reason)
                    continue
            out.append(Candidate(rule.name, loc, new, h))
    return out
