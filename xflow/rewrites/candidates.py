"""All one-step rewrites of a model: every (rule × location), deduplicated by graph hash, verified.

This is the action set of the X-RLflow environment and the neighbourhood of the search
baselines. Each :class:`Candidate` holds the rewritten model and its :func:`model_hash`; a
candidate whose outputs differ from the source model's (ONNX Runtime, optimizations disabled,
seeded random inputs) is dropped and logged at WARNING — that would be a rule bug.
"""
from __future__ import annotations

import logging
from typing import Sequence

import onnx

from xflow.rewrites._base import Location, Rule
from xflow.rewrites._graph import GraphView, Rewritten

__all__ = ["Candidate", "candidates", "graph_hash"]

log = logging.getLogger(__name__)


def graph_hash(model: onnx.ModelProto) -> str:
    """Stable content hash (ignores names and metadata): :func:`xflow.graphs.model_hash`."""
    from xflow.graphs.hashing import model_hash

    return model_hash(model)


class Candidate:
    """One rewrite of a model: ``rule`` name, ``location``, the new ``model`` and its ``hash``.

    ``model`` is built on first access (copying the weights is the expensive part on big
    models) and then cached; ``structure`` is the same graph with the source's large weights as
    data-less placeholders — enough for features, shapes and analytic costs, not runnable
    (see :class:`xflow.rewrites._graph.Rewritten`).
    """

    __slots__ = ("rule", "location", "hash", "_model", "_rewritten")

    def __init__(self, rule: str, location: Location, model: onnx.ModelProto | None = None,
                 hash: str = "", *, rewritten: Rewritten | None = None):  # noqa: A002 - public field name
        if model is None and rewritten is None:
            raise ValueError("Candidate needs a model or a lazy rewrite")
        self.rule = rule
        self.location = location
        self.hash = hash
        self._model = model
        self._rewritten = rewritten

    @property
    def model(self) -> onnx.ModelProto:
        """The rewritten model (built on first access, then cached)."""
        if self._model is None:
            self._model = self._rewritten.model()
        return self._model

    @property
    def structure(self) -> onnx.ModelProto:
        """The rewritten graph; the source's large weights may be placeholders (not runnable)."""
        if self._model is not None:
            return self._model
        return self._rewritten.structure

    def action(self) -> dict:
        """JSON-able ``{"rule": …, "location": …}`` (replay with :func:`xflow.rewrites.apply_action`)."""
        return {"rule": self.rule, "location": self.location.to_json()}

    def __repr__(self) -> str:
        return f"Candidate(rule={self.rule!r}, location={self.location}, hash={self.hash!r})"


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
        Candidates in deterministic order, unique by graph hash. Their models are built lazily:
        the source's weights are hashed once and every candidate is hashed from its structure
        plus those digests (it shares the source's tensors by construction), so enumeration
        never copies or re-reads the weights.
    """
    from xflow.graphs.hashing import initializer_digests, model_hash
    from xflow.rewrites import RULES, get_rule

    rule_objs = [get_rule(r) if isinstance(r, str) else r for r in (rules if rules is not None else RULES)]
    view = GraphView.of(model)
    digests = initializer_digests(view.model)
    seen = {model_hash(view.model, known_digests=digests), *exclude_hashes}
    verifier = None
    out: list[Candidate] = []
    for rule in rule_objs:
        for loc in rule.match(view):
            if len(out) >= max_candidates:
                return out
            try:
                new = rule.apply_lazy(view, loc)
                # every source tensor in the rewrite is the source's own (Editor never edits
                # initializers in place; new ones get fresh names), so its digest is known
                h = model_hash(new.structure, known_digests={**digests, **new.new_digests()})
            except Exception as exc:  # noqa: BLE001 - a crashing rule must not kill the search
                log.warning("rule %s failed to apply at %s: %s", rule.name, loc, exc)
                continue
            if h in seen:
                continue
            seen.add(h)
            if verify:
                from xflow.rewrites.verify import Verifier, verify_local

                if verify == "full":
                    verifier = verifier or Verifier(model)
                    verdict = verifier.check(new.model())
                else:
                    verdict = verify_local(view.model, new.structure, full=new.model, view=view, tensor=new.tensor)
                if not verdict.ok:
                    log.warning("dropping %s at %s: not equivalent (%s)", rule.name, loc, verdict.reason)
                    continue
            out.append(Candidate(rule.name, loc, hash=h, rewritten=new))
    return out
