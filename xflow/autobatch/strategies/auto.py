"""``auto``: choose the strategy by timing them on the first forward of a model (DyNet's automatic choice).

DyNet (``exec.cc``, ``autobatch_flag > 99``) runs the first forward three times — with strategies
1 (agenda), 2 (depth) and 3 (agenda-level) — times each once and keeps the fastest for the rest of
the process. Here the candidates are timed through the measurement core
(:func:`xflow.runtime.measure.measure`: interleaved rounds, the deciding clock, an A/A control)
on dry runs of the first forward (plan + execute, no gradient, values discarded), and
:meth:`~xflow.runtime.measure.Measurement.best` switches away from ``agenda`` only when a
candidate is *significantly* faster — one noisy timing never decides. One decision per model:
the key is the set of (op, shared parameters) of the graph's signatures, so two models in one
process get their own choice. :attr:`AutoStrategy.trials` keeps each decision's measurement.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from xflow.runtime.measure import Variant, measure
from ..schedule import analyze, arrange

if TYPE_CHECKING:  # pragma: no cover
    from ..graph import Graph
    from ..schedule import PlanInput

__all__ = ["AutoStrategy"]


class AutoStrategy:
    """Measure ``candidates`` once per model, then plan with the winner (see module docstring).

    Args:
        candidates: strategy names to try.
        baseline: the one kept unless another is significantly faster.
        rounds, warmup: of the measurement (each round runs every candidate once).
    """

    def __init__(self, candidates: Sequence[str] = ("agenda", "depth", "agenda-level"), baseline: str = "agenda",
                 rounds: int = 5, warmup: int = 1):
        if baseline not in candidates:
            raise ValueError(f"baseline {baseline!r} must be one of the candidates {list(candidates)}")
        self.candidates = tuple(candidates)
        self.baseline = baseline
        self.rounds = rounds
        self.warmup = warmup
        self.choices: dict[frozenset, str] = {}
        self.trials: dict[frozenset, dict[str, Any]] = {}

    @staticmethod
    def key(g: "Graph") -> frozenset:
        """The model key of a graph: its (op, parameter identities) pairs."""
        return frozenset((spec.name, *map(id, params)) for spec, params in zip(g._sig_spec, g._sig_params))

    def choice_for(self, g: "Graph") -> str | None:
        """The decided strategy for ``g``'s model, or ``None`` before its first forward."""
        return self.choices.get(self.key(g))

    def __call__(self, inp: "PlanInput") -> tuple[np.ndarray, np.ndarray]:
        from . import STRATEGIES

        k = self.key(inp.graph)
        name = self.choices.get(k)
        if name is None:
            name = self._decide(inp, k)
        return STRATEGIES[name](inp)

    def _decide(self, inp: "PlanInput", k: frozenset) -> str:
        import torch

        from ..executor import run_segment
        from . import STRATEGIES

        g = inp.graph

        def trial(name: str):
            planner = STRATEGIES[name]

            def run() -> None:
                with torch.no_grad():
                    i2 = analyze(g, inp.first)
                    order, starts = planner(i2)
                    order, starts = arrange(i2, order, starts)
                    run_segment(g, i2, order, starts, commit=False)
            return run

        threads = torch.get_num_threads()
        m = measure({c: Variant(trial(c), threads=threads) for c in self.candidates}, baseline=self.baseline,
                    warmup=self.warmup, rounds=self.rounds, inner=1, desc="autobatch auto")
        best, _ = m.best()
        self.choices[k] = best
        self.trials[k] = {"choice": best, **m.summary()}
        return best
