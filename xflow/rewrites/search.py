r"""Search baselines over rewrite sequences: greedy, TASO-style backtracking beam, random walks.

All three explore the graphs reachable by :func:`~xflow.rewrites.candidates` and minimise a
cost function ``cost(model) -> float`` (e.g. :class:`~xflow.rewrites.cost.AnalyticCost` or
:class:`~xflow.rewrites.cost.MeasuredCost`):

* **greedy** — apply the cheapest candidate while it lowers the cost (stuck at the first
  local optimum: it cannot take a temporarily worse step, e.g. enlarge-then-merge);
* **beam** — TASO's backtracking search: a priority queue ordered by cost; a candidate is kept
  when ``cost < α · best`` (relaxation ``α`` = 1.05 accepts slightly worse graphs), the queue
  is cut to ``beam_width · 4`` entries, stop after ``budget`` expansions or ``time_budget_s``;
* **random** — ``n_walks`` random walks of ``walk_length`` steps, keeping the best graph seen.

Every search returns a :class:`SearchResult` with the best graph, the applied actions (replay
with :func:`xflow.rewrites.apply_actions`) and a cost trace. The best graph is verified against
the original (ORT, optimizations off, random inputs); a graph that fails is never returned.
"""
from __future__ import annotations

import heapq
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import onnx

from xflow.errors import UnknownName
from xflow.rewrites._base import Rule
from xflow.rewrites.candidates import Candidate, candidates, graph_hash

__all__ = ["measure_balanced", "SearchResult", "greedy_search", "beam_search", "random_search", "search", "METHODS",
           "pick_fastest", "trajectory_models"]

log = logging.getLogger(__name__)

CostFn = Callable[[onnx.ModelProto], float]


@dataclass
class SearchResult:
    """Outcome of a search: the best ``model`` and its ``cost``, the ``actions`` leading to it."""

    method: str
    model: onnx.ModelProto
    cost: float
    initial_cost: float
    actions: list[dict[str, Any]] = field(default_factory=list)
    trace: list[float] = field(default_factory=list)   # best cost after each expansion/step
    n_evaluated: int = 0                                # candidate graphs costed
    n_expanded: int = 0                                 # graphs whose candidates were enumerated
    time_s: float = 0.0

    @property
    def predicted_speedup(self) -> float:
        """``initial_cost / cost`` (> 1 means the cost model predicts a faster graph)."""
        return self.initial_cost / self.cost if self.cost > 0 else float("inf")

    def summary(self) -> dict[str, Any]:
        """JSON-able summary (no model)."""
        return {"method": self.method, "initial_cost": self.initial_cost, "cost": self.cost,
                "predicted_speedup": self.predicted_speedup, "n_actions": len(self.actions),
                "rules": [a["rule"] for a in self.actions], "n_evaluated": self.n_evaluated,
                "n_expanded": self.n_expanded, "time_s": self.time_s}


class _Ctx:
    """Shared bookkeeping: cached costs, lazy verification against the original."""

    def __init__(self, model: onnx.ModelProto, cost: CostFn, rules, max_candidates: int, verify: bool):
        self.original = model
        self.cost_fn = cost
        self.rules = rules
        self.max_candidates = max_candidates
        self.verify = verify
        self._costs: dict[str, float] = {}
        self._verified: dict[str, bool] = {}
        self._verifier = None
        self.n_evaluated = 0
        self.n_expanded = 0
        self.t0 = time.perf_counter()

    def cost(self, model: onnx.ModelProto, h: str | None = None) -> float:
        h = h or graph_hash(model)
        if h not in self._costs:
            self._costs[h] = float(self.cost_fn(model))
            self.n_evaluated += 1
        return self._costs[h]

    def cost_of(self, c) -> float:
        """Cost of a :class:`~xflow.rewrites.candidates.Candidate`; cost functions that declare
        ``accepts_structure = True`` (shapes only, e.g. :class:`~xflow.rewrites.cost.AnalyticCost`)
        get its weight-free structure, so unpromising candidates never copy the weights."""
        if getattr(self.cost_fn, "accepts_structure", False):
            h = c.hash
            if h not in self._costs:
                self._costs[h] = float(self.cost_fn(c.structure))
                self.n_evaluated += 1
            return self._costs[h]
        return self.cost(c.model, c.hash)

    def expand(self, model: onnx.ModelProto):
        self.n_expanded += 1
        return candidates(model, self.rules, self.max_candidates, verify=False)

    def ok(self, model: onnx.ModelProto, h: str) -> bool:
        """Is ``model`` equivalent to the original? (cached; always True when verify is off)"""
        if not self.verify:
            return True
        if h not in self._verified:
            if self._verifier is None:
                from xflow.rewrites.verify import Verifier

                self._verifier = Verifier(self.original)
            v = self._verifier.check(model)
            if not v.ok:
                log.warning("search: dropping a graph that is not equivalent to the original (%s)", v.reason)
            self._verified[h] = v.ok
        return self._verified[h]

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0


def greedy_search(model: onnx.ModelProto, cost: CostFn, *, rules: Sequence[Rule | str] | None = None,
                  budget: int = 50, time_budget_s: float | None = None, max_candidates: int = 500,
                  verify: bool = True) -> SearchResult:
    """Apply the cheapest candidate while it lowers the cost, at most ``budget`` steps."""
    ctx = _Ctx(model, cost, rules, max_candidates, verify)
    cur, cur_cost = model, ctx.cost(model)
    init = cur_cost
    actions, trace = [], [cur_cost]
    for _ in range(budget):
        if time_budget_s is not None and ctx.elapsed() > time_budget_s:
            break
        ranked = sorted(((ctx.cost_of(c), i, c) for i, c in enumerate(ctx.expand(cur))),
                        key=lambda t: (t[0], t[1]))
        step = next(((cst, c) for cst, _, c in ranked if cst < cur_cost and ctx.ok(c.model, c.hash)), None)
        if step is None:
            break
        cur_cost, c = step
        cur = c.model
        actions.append(c.action())
        trace.append(cur_cost)
    return SearchResult("greedy", cur, cur_cost, init, actions, trace, ctx.n_evaluated, ctx.n_expanded,
                        ctx.elapsed())


def beam_search(model: onnx.ModelProto, cost: CostFn, *, rules: Sequence[Rule | str] | None = None,
                alpha: float = 1.05, beam_width: int = 4, budget: int = 30, time_budget_s: float | None = None,
                max_candidates: int = 500, verify: bool = True) -> SearchResult:
    """TASO-style backtracking search with relaxation ``alpha`` (see module docstring)."""
    ctx = _Ctx(model, cost, rules, max_candidates, verify)
    init = ctx.cost(model)
    best = (init, model, [])
    start_hash = graph_hash(model)
    seen = {start_hash}
    queue: list[tuple[float, int, onnx.ModelProto, list]] = [(init, 0, model, [])]
    tie = 1
    trace = [init]
    while queue and ctx.n_expanded < budget:
        if time_budget_s is not None and ctx.elapsed() > time_budget_s:
            break
        _, _, g, acts = heapq.heappop(queue)
        g = g.model if isinstance(g, Candidate) else g  # queued candidates are built when expanded
        for c in ctx.expand(g):
            if c.hash in seen:
                continue
            seen.add(c.hash)
            cst = ctx.cost_of(c)
            new_acts = acts + [c.action()]
            if cst < best[0] and ctx.ok(c.model, c.hash):
                best = (cst, c.model, new_acts)
            if cst < alpha * best[0]:
                heapq.heappush(queue, (cst, tie, c, new_acts))
                tie += 1
        if len(queue) > 4 * beam_width:
            queue = heapq.nsmallest(4 * beam_width, queue)
            heapq.heapify(queue)
        trace.append(best[0])
    return SearchResult("beam", best[1], best[0], init, best[2], trace, ctx.n_evaluated, ctx.n_expanded,
                        ctx.elapsed())


def random_search(model: onnx.ModelProto, cost: CostFn, *, rules: Sequence[Rule | str] | None = None,
                  n_walks: int = 4, walk_length: int = 10, budget: int | None = None, seed: int = 0,
                  time_budget_s: float | None = None, max_candidates: int = 500,
                  verify: bool = True) -> SearchResult:
    """Random walks (uniform over candidates), keeping the cheapest verified graph seen.

    ``budget`` (if given) caps the total number of steps over all walks.
    """
    rng = random.Random(seed)
    ctx = _Ctx(model, cost, rules, max_candidates, verify)
    init = ctx.cost(model)
    best = (init, model, [])
    trace = [init]
    steps = 0
    for _ in range(n_walks):
        g, acts = model, []
        for _ in range(walk_length):
            if (budget is not None and steps >= budget) or \
                    (time_budget_s is not None and ctx.elapsed() > time_budget_s):
                break
            cands = ctx.expand(g)
            if not cands:
                break
            c = cands[rng.randrange(len(cands))]
            steps += 1
            cst = ctx.cost_of(c)
            g, acts = c.model, acts + [c.action()]
            if cst < best[0] and ctx.ok(g, c.hash):
                best = (cst, g, acts)
            trace.append(best[0])
    return SearchResult("random", best[1], best[0], init, best[2], trace, ctx.n_evaluated, ctx.n_expanded,
                        ctx.elapsed())


METHODS: dict[str, Callable[..., SearchResult]] = {
    "greedy": greedy_search, "beam": beam_search, "random": random_search,
}


def search(model: onnx.ModelProto, method: str = "greedy", cost: CostFn | None = None, **kwargs: Any) -> SearchResult:
    """Run search ``method`` (``greedy`` | ``beam`` | ``random``) with ``cost`` (default analytic CPU)."""
    if method not in METHODS:
        raise UnknownName(f"unknown search method {method!r}; use one of {', '.join(METHODS)}")
    if cost is None:
        from xflow.rewrites.cost import AnalyticCost

        cost = AnalyticCost()
    return METHODS[method](model, cost, **kwargs)


def trajectory_models(original: onnx.ModelProto, actions: Sequence[dict[str, Any]], *,
                      max_points: int = 6) -> list[tuple[int, onnx.ModelProto]]:
    """``(n_actions, model)`` for up to ``max_points`` prefixes of ``actions`` (evenly spaced,
    always including the full sequence), replayed from ``original``."""
    from xflow.rewrites import apply_action

    n = len(actions)
    if n == 0:
        return []
    keep = sorted({round(n * (i + 1) / max_points) for i in range(max_points)} - {0} | {n})
    out, model = [], original
    for i, a in enumerate(actions, start=1):
        model = apply_action(model, a)
        if i in keep:
            out.append((i, model))
    return out


def measure_balanced(variants: dict[str, tuple[onnx.ModelProto, dict[str, Any]]], *, warmup: int = 3,
                     repeats: int = 30, seed: int = 0, baseline: str | None = None, aa: bool = True,
                     max_seconds: float | None = None):
    """Time ORT variants ``{label: (model, settings)}`` with the measurement core; returns the
    :class:`~xflow.runtime.measure.Measurement` (compare with ``.compare`` / ``.best``).

    Thin wrapper of :func:`xflow.runtime.latency.measure_models`: sessions built in a shuffled order,
    rounds in a fresh seeded random order (a fixed order and its reverse favoured the end positions
    by up to 5 % on sub-ms NASRNN here), and an A/A control that is a *second session* of the baseline
    (two sessions of one sub-ms graph measured ~10 % apart here: the A/A floor absorbs that).
    """
    from xflow.runtime.latency import measure_models

    return measure_models(variants, baseline=baseline, aa=aa, warmup=warmup, rounds=repeats, seed=seed,
                          max_seconds=max_seconds)


def pick_fastest(original: onnx.ModelProto, rewritten: onnx.ModelProto | Sequence[onnx.ModelProto], *,
                 intra_threads: int = 1, repeats: int = 20, level: str = "all",
                 device: str = "cpu", min_effect: float = 0.0, alpha: float = 0.05,
                 seed: int = 0) -> tuple[onnx.ModelProto, dict[str, Any]]:
    """The "never slower" guard: keep a rewritten graph only when it is *significantly* faster.

    The original, every rewritten graph and an A/A control (a second session of the original) are
    timed in one interleaved run (:func:`measure_balanced`). A candidate is kept only with verdict
    ``faster`` against the original — interval below 1 at level ``1 - alpha / k`` for ``k``
    candidates (Bonferroni) and effect beyond the A/A noise floor and ``min_effect`` — and among
    those the lowest ratio wins; otherwise the original is returned.

    ``info``: ``original_ms``, ``rewritten_ms`` and ``measured_speedup`` / ``speedup_ci`` /
    ``verdict`` of the kept candidate (or, when the original is kept, of the best-looking one),
    ``noise_floor``, ``kept`` (``"original"`` or ``"rewritten"``), ``kept_index``, ``candidates``
    (every candidate's comparison) and the run ``conditions``.
    """
    if repeats < 2:
        raise ValueError(f"pick_fastest: repeats must be >= 2 (an interval needs two rounds), got {repeats}")
    models = [rewritten] if isinstance(rewritten, onnx.ModelProto) else list(rewritten)
    if not models:
        raise ValueError("pick_fastest: no rewritten graphs to compare")
    settings = {"level": level, "intra_threads": intra_threads, "device": device}
    variants = {"original": (original, settings)}
    variants.update({f"r{i}": (m, settings) for i, m in enumerate(models)})
    m = measure_balanced(variants, warmup=3, repeats=repeats, seed=seed, baseline="original")
    names = [f"r{i}" for i in range(len(models))]
    adj = alpha / len(names)
    cmps = {n: m.compare(n, min_effect=min_effect, alpha=adj) for n in names}
    winner, _ = m.best(names, min_effect=min_effect, alpha=alpha)
    shown = cmps[winner] if winner in cmps else min(cmps.values(), key=lambda c: c.ratio)
    idx = int(shown.a[1:])
    info = {"original_ms": m.median_ms("original"), "rewritten_ms": m.median_ms(shown.a),
            "measured_speedup": shown.speedup, "speedup_ci": list(shown.speedup_ci),
            "verdict": shown.verdict, "noise_floor": m.noise_floor(), "clock": m.clock,
            "kept": "rewritten" if winner in cmps else "original", "kept_index": idx,
            "candidates": [cmps[n].as_dict() for n in names], "conditions": m.conditions()}
    return (models[idx] if winner in cmps else original), info
