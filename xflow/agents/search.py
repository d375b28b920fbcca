"""The trained PPO policy as a search method, returning :class:`xflow.rewrites.search.SearchResult`.

``rl_search(model, checkpoint)`` rolls the policy out greedily (arg-max) in the rewrite
environment and keeps the cheapest graph seen along the trajectory (by the environment's cost
model), as X-RLflow does; the result is verified against the input (ONNX Runtime, optimizations
off, random inputs) and the input is returned if verification fails. Its ``actions`` replay with
:func:`xflow.rewrites.apply_actions`, so it plugs into the same reporting and the "never slower"
guard (:func:`xflow.rewrites.search.pick_fastest`) as greedy / beam / random search.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from xflow.envs.rewrite import RewriteEnv
from xflow.graphs.ir import Graph
from xflow.nn import GraphActorCritic
from xflow.rewrites.search import SearchResult
from xflow.rewrites.verify import is_equivalent

__all__ = ["rl_search"]

log = logging.getLogger(__name__)


def rl_search(model: onnx.ModelProto | Graph, checkpoint: "str | Path | Any", *,
              horizon: int | None = None, cost_model: Any = None, verify: bool = True,
              sample: bool = False, seed: int = 0) -> Any:
    """Optimize ``model`` with a trained :class:`~xflow.nn.GraphActorCritic`.

    Args:
        model: the input graph (not mutated).
        checkpoint: ``agent.pt`` path (from ``xflow rl train``) or an agent instance.
        horizon: episode length (default: the checkpoint's training horizon, else 20).
        cost_model: cost model ranking the graphs seen (default: the checkpoint's, else
            ``"calibrated"``, the roofline calibrated on this device).
        verify: check the returned graph's outputs against ``model`` (falls back to ``model``).
        sample: sample actions instead of taking the arg-max.
        seed: seed of the sampling.

    Returns:
        :class:`xflow.rewrites.search.SearchResult` with ``method="rl"``; its ``actions`` replay
        from ``xflow.graphs.load_model(model)`` (the environment's folded starting graph).
    """
    if isinstance(checkpoint, (str, Path)):
        agent, extra = GraphActorCritic.load_with_extra(checkpoint)
    else:
        agent, extra = checkpoint, {}
    saved = extra.get("args", {})
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    env = RewriteEnv(model, max_candidates=agent.num_actions - 1,
                     horizon=horizon or int(saved.get("horizon", 20)),
                     cost_model=cost_model or saved.get("cost_model", "calibrated"))
    gen = torch.Generator().manual_seed(seed)
    obs, info = env.reset(seed=seed)
    init_cost = info["cost"]
    best = (init_cost, env.model, 0)
    trace, actions, n_eval = [init_cost], [], len(env.candidates)
    done = False
    while not done:
        with torch.no_grad():
            logits, _ = agent([obs], info["action_mask"][None])
        if sample:
            a = int(torch.multinomial(torch.softmax(logits[0], -1), 1, generator=gen)[0])
        else:
            a = int(logits.argmax(-1)[0])
        if a != env.stop_action and a < len(env.candidates):
            cand = env.candidates[a]
            actions.append({"rule": str(cand.rule), "location": cand.location.to_json()
                            if hasattr(cand.location, "to_json") else str(cand.location)})
        obs, _, term, trunc, info = env.step(a)
        done = term or trunc
        n_eval += len(env.candidates)
        if info["cost"] < best[0] - 1e-12:
            best = (info["cost"], env.model, len(actions))
        trace.append(min(trace[-1], info["cost"]))
    cost, best_model, n_actions = best
    if verify and n_actions:
        verdict = is_equivalent(model, best_model)
        if not verdict.ok:  # pragma: no cover - would be a rule bug
            log.warning("rl_search: best graph not equivalent (%s); returning the input",
                        verdict.reason)
            cost, best_model, n_actions = init_cost, env.initial_model, 0
    return SearchResult("rl", best_model, float(cost), float(init_cost), actions[:n_actions],
                        [float(x) for x in np.asarray(trace)], n_eval, env.steps + 1,
                        time.perf_counter() - t0)
