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
                     repeats: int = 30, seed: int = 0, instances: int = 1) -> dict[str, Any]:
    """Interleaved ORT timing with a fresh seeded random variant order every round.

    :func:`xflow.runtime.measure_interleaved` alternates one fixed order and its reverse, which
    still favours position here: the end variants run twice back to back at every round boundary
    (warm caches), so on this machine an *identical* copy of a sub-ms NASRNN measured up to 5%
    faster at the end of the dict than at its start, and ~5% slower in the middle. Shuffling each
    round spreads every position over every variant. ``instances`` > 1 gives each variant several
    sessions whose samples are pooled: the same sub-ms graph also measured ~10% apart in two
    sessions of one process (memory placement), a difference no number of rounds removes.
    Returns ``{label: LatencyStats}``.
    """
    import random as _random

    from xflow.runtime import make_session, random_inputs
    from xflow.runtime.latency import summarize

    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    rng = _random.Random(seed)
    keys = [(label, j) for label in variants for j in range(max(1, instances))]
    rng.shuffle(keys)  # creation order too: the first sessions created measured slower here
    sessions, feeds = {}, {}
    for label, j in keys:
        model, settings = variants[label]
        sessions[(label, j)] = make_session(model, **settings)
        feeds[(label, j)] = random_inputs(sessions[(label, j)], seed=0)
    for key, sess in sessions.items():
        for _ in range(max(0, warmup)):
            sess.run(None, feeds[key])
    order = list(sessions)
    samples: dict[str, list[float]] = {k: [] for k in variants}
    clock = time.perf_counter
    for _ in range(repeats):
        rng.shuffle(order)
        for key in order:
            sess, feed = sessions[key], feeds[key]
            t0 = clock()
            sess.run(None, feed)
            samples[key[0]].append((clock() - t0) * 1e3)
    return {k: summarize(v) for k, v in samples.items()}


def pick_fastest(original: onnx.ModelProto, rewritten: onnx.ModelProto | Sequence[onnx.ModelProto], *,
                 intra_threads: int = 1, repeats: int = 20, level: str = "all",
                 device: str = "cpu") -> tuple[onnx.ModelProto, dict[str, Any]]:
    """Measure the original and the rewritten graph(s) interleaved in ORT; return the fastest.

    This is the "never slower" guard: a rewrite the cost model likes but the device does not is
    dropped and the original is returned. ``info`` holds ``original_ms``, ``rewritten_ms`` (the
    fastest rewritten graph), ``measured_speedup`` (original / fastest rewritten), ``kept``
    (``"original"`` or ``"rewritten"``) and ``kept_index`` (which of the rewritten graphs).
    """
    models = [rewritten] if isinstance(rewritten, onnx.ModelProto) else list(rewritten)
    settings = {"level": level, "intra_threads": intra_threads, "device": device}
    variants = {"original": (original, settings)}
    variants.update({f"r{i}": (m, settings) for i, m in enumerate(models)})
    stats = measure_balanced(variants, warmup=3, repeats=repeats)
    best_i = min(range(len(models)), key=lambda i: stats[f"r{i}"].median_ms)
    orig_ms, new_ms = stats["original"].median_ms, stats[f"r{best_i}"].median_ms
    faster = new_ms < orig_ms
    info = {"original_ms": orig_ms, "rewritten_ms": new_ms, "measured_speedup": orig_ms / new_ms,
            "kept": "rewritten" if faster else "original", "kept_index": best_i,
            "all_ms": [stats[f"r{i}"].median_ms for i in range(len(models))]}
    return (models[best_i] if faster else original), info
