"""Reward objects of the rewrite environment (after CompilerGym's ``Reward`` spaces).

A reward is an object with a ``name``, ``reset(initial_model, key)`` at the start of an episode
and ``update(prev_model, new_model, *, prev_key, new_key, step, done) -> float`` after each step.
All rewards here are *relative improvements in percent of the initial cost*, so an episode's
return is comparable across models:

* :class:`CostDelta` — dense, per step, from a cost model :math:`c`:

  .. math:: r_t = \\frac{c(G_{t-1}) - c(G_t)}{c(G_0)} \\times 100

* :class:`MeasuredDelta` — sparse: every ``every`` steps and at episode end, the measured
  latency :math:`L` (ONNX Runtime) against the last checkpoint :math:`s`:
  :math:`r_t = (L(G_s) - L(G_t)) / L(G_0) \\times 100`, else 0. The sum over an episode
  telescopes to the total measured improvement.
* :class:`CostWithMeasured` — the dense cost-model reward plus, at each measured checkpoint, the
  correction ``measured improvement − predicted improvement`` since the previous checkpoint. Dense
  shaping from the (cheap) cost model, while the episode return equals the measured improvement,
  so a cost model that is wrong on this device (see ``MEASUREMENTS.md``) cannot be exploited.

:func:`make_reward` resolves ``"cost"``, ``"measured"`` and ``"hybrid"``. Every cost model is taken
by its registry name (:data:`xflow.costs.COST_MODELS`, :func:`xflow.costs.make_cost_model`): e.g.
``cost_model="ort"`` makes the dense reward see ONNX Runtime's own optimized graph (a rewrite that
breaks one of its fusions is penalised), ``measured_model`` picks the sparse reward's model.
"""
from __future__ import annotations

from xflow.costs.base import CostModel, graph_key
from xflow.costs.measured import MeasuredCost
from xflow.costs.registry import make_cost_model
from xflow.errors import UnknownName
from xflow.graphs.ir import Graph

__all__ = ["Reward", "CostDelta", "MeasuredDelta", "CostWithMeasured", "make_reward", "REWARDS"]


class Reward:
    """Base class: a named, stateful per-step reward (see the module docstring)."""

    name: str = "reward"
    #: True when the reward runs the model (non-deterministic up to measurement noise).
    measured: bool = False

    def reset(self, model: Graph, key: str | None = None) -> None:
        """Start an episode on ``model`` (graph hash ``key``)."""

    def update(self, prev: Graph, new: Graph, *, prev_key: str | None = None,
               new_key: str | None = None, step: int = 0, done: bool = False) -> float:
        """Reward of the transition ``prev → new`` taken at ``step`` (1-based)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.name

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            return self.name == other
        return NotImplemented if not isinstance(other, Reward) else self is other

    __hash__ = object.__hash__


class CostDelta(Reward):
    """Per-step ``(c(prev) − c(new)) / c(initial) × 100`` from a cost model."""

    def __init__(self, cost_model: CostModel | str = "calibrated", *, name: str | None = None) -> None:
        self.cost_model = make_cost_model(cost_model)
        self.name = name or f"{self.cost_model.name}-delta"
        self.initial = 1.0

    def reset(self, model: Graph, key: str | None = None) -> None:
        self.initial = max(self.cost_model.cost(model, key), 1e-12)

    def update(self, prev, new, *, prev_key=None, new_key=None, step=0, done=False) -> float:
        if prev_key is not None and prev_key == new_key:
            return 0.0
        c_prev = self.cost_model.cost(prev, prev_key)
        c_new = self.cost_model.cost(new, new_key)
        return float((c_prev - c_new) / self.initial * 100.0)


class MeasuredDelta(Reward):
    """Measured ORT latency improvement every ``every`` steps and at episode end (else 0)."""

    measured = True

    def __init__(self, every: int = 10, cost_model: CostModel | str | None = None, *,
                 name: str | None = None) -> None:
        self.every = max(int(every), 0)
        self.cost_model = make_cost_model(cost_model) if cost_model is not None else MeasuredCost()
        self.name = name or f"measured-every{self.every}"
        self.initial = 1.0
        self.last = 1.0

    def _checkpoint(self, step: int, done: bool) -> bool:
        return done or (self.every > 0 and step % self.every == 0)

    def reset(self, model: Graph, key: str | None = None) -> None:
        self.initial = max(self.cost_model.cost(model, key or graph_key(model)), 1e-12)
        self.last = self.initial

    def update(self, prev, new, *, prev_key=None, new_key=None, step=0, done=False) -> float:
        if not self._checkpoint(step, done):
            return 0.0
        cur = self.cost_model.cost(new, new_key or graph_key(new))
        r = (self.last - cur) / self.initial * 100.0
        self.last = cur
        return float(r)


class CostWithMeasured(Reward):
    """Dense cost-model reward, corrected to the measured improvement at each checkpoint."""

    measured = True

    def __init__(self, cost_model: CostModel | str = "calibrated", every: int = 10,
                 measured: CostModel | str | None = None, *, name: str | None = None) -> None:
        self.dense = CostDelta(cost_model)
        self.sparse = MeasuredDelta(every, measured)
        self.name = name or f"{self.dense.cost_model.name}+measured-every{self.sparse.every}"
        self._pending = 0.0

    def reset(self, model: Graph, key: str | None = None) -> None:
        self.dense.reset(model, key)
        self.sparse.reset(model, key)
        self._pending = 0.0

    def update(self, prev, new, *, prev_key=None, new_key=None, step=0, done=False) -> float:
        r = self.dense.update(prev, new, prev_key=prev_key, new_key=new_key, step=step, done=done)
        self._pending += r
        if not self.sparse._checkpoint(step, done):
            return r
        measured = self.sparse.update(prev, new, prev_key=prev_key, new_key=new_key, step=step,
                                      done=done)
        correction = measured - self._pending
        self._pending = 0.0
        return float(r + correction)


#: Names accepted by :func:`make_reward`.
REWARDS = ("cost", "measured", "hybrid")


def make_reward(spec: "str | Reward", *, cost_model: CostModel | str = "calibrated",
                measure_every: int = 10, measured_model: CostModel | str | None = None) -> Reward:
    """Resolve ``"cost"`` / ``"measured"`` / ``"hybrid"`` (or pass a :class:`Reward` through).

    ``cost_model`` (dense part) and ``measured_model`` (sparse part; default: end-to-end ORT
    latency, ``"measured"``) are any registered cost-model name or :class:`CostModel`.
    """
    if isinstance(spec, Reward):
        return spec
    if spec == "cost":
        return CostDelta(cost_model)
    if spec == "measured":
        return MeasuredDelta(measure_every, measured_model)
    if spec == "hybrid":
        return CostWithMeasured(cost_model, measure_every, measured_model)
    raise UnknownName(f"unknown reward {spec!r}; choose one of {list(REWARDS)}")
