"""The rule protocol every rewrite family implements: :class:`Location`, :class:`Rule`.

A rule works in three steps, after onnxscript's rewriter (``pattern`` / ``check`` / ``rewrite``):

1. ``_sites(view)`` yields every structural site (a :class:`Location`) where the rule's pattern
   occurs, without judging whether rewriting is legal;
2. ``_check(view, loc)`` returns ``None`` when the rewrite preserves the model's outputs at that
   site, else a human-readable reason (``"convs differ in strides"``);
3. ``_rewrite(view, loc, ed)`` records the edit through an :class:`~xflow.graphs.edit.Editor`,
   which applies it to a tensor-sharing clone of the graph.

``view`` is the one IR, an :class:`xflow.graphs.Graph`. The public API built on these is
``match(model) -> list[Location]`` (sites that pass the check), ``explain(model) -> list[(Location,
reason)]`` (sites that do not), ``check(model, loc)`` and ``apply(model, loc) -> new model`` (the
input is never mutated). ``model`` may be a :class:`~xflow.graphs.Graph` (``apply`` then returns
a new ``Graph`` whose ``changes`` name the removed and added nodes) or an ``onnx.ModelProto`` (a
boundary: ``apply`` returns a ``ModelProto``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable

import onnx

from xflow.errors import XflowError
from xflow.graphs.edit import Editor
from xflow.graphs.ir import Graph

__all__ = ["Location", "Rule", "RuleNotApplicable", "UNARY_ELEMENTWISE"]

#: Elementwise unary ops f with f(concat(x, y)) == concat(f(x), f(y)) (attributes allowed).
UNARY_ELEMENTWISE = frozenset({
    "Relu", "Sigmoid", "Tanh", "LeakyRelu", "Elu", "Selu", "Celu", "Exp", "Log", "Neg", "Abs",
    "Sqrt", "Reciprocal", "Erf", "Softplus", "Softsign", "HardSigmoid", "HardSwish", "Gelu",
    "Mish", "Sin", "Cos", "Floor", "Ceil", "Round", "Sign", "ThresholdedRelu", "Identity", "Clip",
})


class RuleNotApplicable(XflowError, ValueError):
    """``apply`` was called at a location where the rule does not match (the reason says why)."""


def _freeze(value: Any) -> Any:
    """Turn lists (from JSON) into tuples recursively so a Location stays hashable."""
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


@dataclass(frozen=True, order=True)
class Location:
    """Where a rule applies: the names of the matched nodes plus rule-specific parameters.

    Hashable (usable as a dict key / set member) and JSON round-trippable via
    :meth:`to_json` / :meth:`from_json`, so an action ``(rule, location)`` can be replayed.

    Args:
        nodes (tuple[str, ...]): names of the anchor nodes, in the order the rule expects.
        params (tuple[tuple[str, Any], ...]): sorted ``(key, value)`` pairs with hashable
            values (ints, strings, tuples), e.g. ``(("kernel", (3, 3)),)``.
    """

    nodes: tuple[str, ...]
    params: tuple[tuple[str, Any], ...] = field(default=())

    @classmethod
    def of(cls, nodes: Iterable[str], **params: Any) -> "Location":
        """Build a location from node names and keyword parameters."""
        return cls(tuple(nodes), tuple(sorted((k, _freeze(v)) for k, v in params.items())))

    def param(self, key: str, default: Any = None) -> Any:
        """The value of parameter ``key`` (``default`` when absent)."""
        return dict(self.params).get(key, default)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict ``{"nodes": [...], "params": {...}}``."""
        return {"nodes": list(self.nodes), "params": {k: _thaw(v) for k, v in self.params}}

    @classmethod
    def from_json(cls, data: dict[str, Any] | str) -> "Location":
        """Inverse of :meth:`to_json` (also accepts the JSON text)."""
        if isinstance(data, str):
            data = json.loads(data)
        return cls.of(data["nodes"], **data.get("params", {}))

    def __str__(self) -> str:
        extra = "".join(f" {k}={v}" for k, v in self.params)
        return f"[{', '.join(self.nodes)}]{extra}"


class Rule:
    """Base class of a rewrite rule (one substitution, one direction).

    Subclasses set ``name`` (unique, snake case) and implement ``_sites``, ``_check`` and
    ``_rewrite``. The class docstring carries the substitution as ``A(B(x)) -> C(x)`` lines.
    """

    name: ClassVar[str] = ""

    # -- to implement -----------------------------------------------------------------------
    def _sites(self, view: Graph) -> Iterable[Location]:
        raise NotImplementedError

    def _check(self, view: Graph, loc: Location) -> str | None:
        raise NotImplementedError

    def _rewrite(self, view: Graph, loc: Location, ed: Editor) -> None:
        raise NotImplementedError

    # -- public API --------------------------------------------------------------------------
    def match(self, model: onnx.ModelProto | Graph) -> list[Location]:
        """Every location where applying the rule preserves the model's outputs."""
        view = Graph.of(model)
        out: list[Location] = []
        seen: set[Location] = set()
        for loc in self._sites(view):
            if loc in seen:
                continue
            seen.add(loc)
            if self._safe_check(view, loc) is None:
                out.append(loc)
        return out

    def explain(self, model: onnx.ModelProto | Graph) -> list[tuple[Location, str]]:
        """The structural sites that were rejected, each with the reason."""
        view = Graph.of(model)
        out = []
        for loc in dict.fromkeys(self._sites(view)):
            reason = self._safe_check(view, loc)
            if reason is not None:
                out.append((loc, reason))
        return out

    def check(self, model: onnx.ModelProto | Graph, loc: Location) -> str | None:
        """``None`` when the rule applies at ``loc``; otherwise the reason it does not."""
        return self._safe_check(Graph.of(model), loc)

    def apply(self, model: onnx.ModelProto | Graph, loc: Location) -> onnx.ModelProto | Graph:
        """The model with the rule applied at ``loc``; ``model`` itself is left unchanged.

        A :class:`~xflow.graphs.Graph` gives a ``Graph`` (sharing its tensors), a ``ModelProto``
        gives a ``ModelProto``.

        Raises:
            RuleNotApplicable: the rule does not match at ``loc`` (with the reason).
        """
        new = self._edit(Graph.of(model), loc).finish()
        return new if isinstance(model, Graph) else new.model

    def _edit(self, view: Graph, loc: Location) -> Editor:
        reason = self._safe_check(view, loc)
        if reason is not None:
            raise RuleNotApplicable(f"rule {self.name!r} does not apply at {loc}: {reason}")
        ed = Editor(view, tag=self.name)
        self._rewrite(view, loc, ed)
        return ed

    def _safe_check(self, view: Graph, loc: Location) -> str | None:
        missing = [n for n in loc.nodes if n not in view.node_by_name]
        if missing:
            return f"node(s) not in graph: {', '.join(missing)}"
        return self._check(view, loc)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
