r"""TASO's cost-based backtracking search (Jia et al., SOSP 2019, §5; ``Graph::optimize`` in
jiazhihao/TASO ``src/core/ops.cc`` and ``GraphXfer::run`` in ``src/core/substitution.cc``).

A priority queue holds graphs ordered by cost, a set holds the hashes of every graph ever queued:

.. code-block:: text

    queue ← {G₀}; seen ← {hash G₀}; best ← G₀
    while queue not empty:
        G ← pop cheapest
        if cost(G) < cost(best): best ← G          # TASO updates the best graph when it is popped
        if counter > budget: break                 # budget = number of expanded graphs
        counter += 1
        for every rule, every match in G:
            G' ← apply
            if cost(G') < α · cost(best) and |G'| < 2·|G₀| and hash G' ∉ seen:
                seen ∪= {hash G'}; push G'

No queue truncation (xflow's ``beam`` cuts the queue to ``4·beam_width``); ``α`` relaxes the bound
so slightly worse graphs stay in the queue (TASO's Python API defaults to α = 1.0 and budget
1000; the paper's experiments use α = 1.05). ``|G'| < 2·|G₀|`` is TASO's ``maxNumOps`` bound.
Differences, measured and documented in ``docs/rewrites.md``: a wall-clock ``time_budget_s`` on
top of the budget (TASO has none), candidate enumeration capped at ``max_candidates`` per graph,
and — because our rules are verified but our appliers are code — the best graph is re-verified
against the original (ORT) before it is accepted (TASO trusts its verified rules). Weight-only
subgraphs are folded when a rule is applied (TASO folds them once, after the search, in
``preprocess_weights``), so costs already exclude them.
"""
from __future__ import annotations

import heapq
import logging
import time
from typing import Sequence

import onnx

from xflow.rewrites import candidates
from xflow.rewrites._base import Rule
from xflow.rewrites.generator.graph_api import View, node_count, view_of
from xflow.rewrites.search import CostFn, SearchResult, _Ctx
from xflow.rewrites.searches.rules import default_rules

__all__ = ["taso_search"]

log = logging.getLogger(__name__)


def taso_search(model: View | onnx.ModelProto, cost: CostFn, *, rules: Sequence[Rule | str] | None = None,
                alpha: float = 1.05, budget: int = 1000, time_budget_s: float | None = None,
                max_candidates: int = 500, max_nodes_factor: float = 2.0, verify: bool = True) -> SearchResult:
    """TASO's backtracking search over ``rules`` (default: the generated rules + hand-written ones)."""
    if rules is None:
        rules = default_rules()
    ctx = _Ctx(model, cost, rules, max_candidates, verify)
    start = ctx.original
    init = ctx.cost(start)
    max_nodes = max_nodes_factor * node_count(start)
    best_cost, best_model, best_acts = init, start, []
    seen = {start.content_hash}
    queue: list = [(init, 0, start, [])]
    tie = 1
    trace = [init]
    counter = 0
    rule_seconds: dict[str, float] = {}
    while queue:
        cst, _, g, acts = heapq.heappop(queue)
        if cst < best_cost:
            if ctx.ok(g, g.content_hash):
                best_cost, best_model, best_acts = cst, g, acts
        trace.append(best_cost)
        # past the deadline the popped graph is still verified (one ORT run) so that a cheaper graph
        # found by the last expansion is not lost; then the search stops
        if counter > budget or (time_budget_s is not None and ctx.elapsed() > time_budget_s):
            break
        counter += 1
        ctx.n_expanded += 1
        for c in _expand(g, rules, max_candidates, ctx, time_budget_s, rule_seconds):
            if c.hash in seen:
                continue
            c_cost = ctx.cost_of(c)
            if c_cost < alpha * best_cost and node_count(c.graph) < max_nodes:
                seen.add(c.hash)
                heapq.heappush(queue, (c_cost, tie, c.graph, acts + [c.action()]))
                tie += 1
            if time_budget_s is not None and ctx.elapsed() > time_budget_s:
                break
    res = SearchResult("taso", best_model, best_cost, init, best_acts, trace, ctx.n_evaluated, ctx.n_expanded,
                       ctx.elapsed())
    return res


def _expand(model, rules, max_candidates: int, ctx, time_budget_s: float | None,
            rule_seconds: dict[str, float]):
    """One graph's candidates, enumerated one rule at a time on one view of the graph so that the
    time budget is checked inside an expansion too (one expansion over every generated rule takes
    about 40 s of CPU on Inception-v3 here; the slowest single rule about 6 s). A rule whose last
    enumeration (``rule_seconds``, updated here) took longer than the time left is skipped, so a slow
    rule does not overrun the deadline; cheaper rules still run."""
    view = view_of(model)
    n = 0
    seen: set[str] = set()
    for rule in rules:
        if n >= max_candidates:
            return
        if time_budget_s is not None:
            left = time_budget_s - ctx.elapsed()
            if left <= 0:
                return
            if rule_seconds.get(rule.name, 0.0) > left:  # it would end past the deadline; cheaper rules may fit
                continue
        t0 = time.perf_counter()
        found = candidates(view, [rule], max_candidates - n, verify=False, exclude_hashes=seen)
        rule_seconds[rule.name] = time.perf_counter() - t0
        for c in found:
            seen.add(c.hash)
            n += 1
            yield c
