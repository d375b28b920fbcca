"""Evaluating rewrite policies: rollouts (agent, greedy, random) and robust statistics over seeds.

Statistics follow Agarwal et al., "Deep RL at the Edge of the Statistical Precipice" (NeurIPS 2021):
report the interquartile mean (IQM) over runs with a percentile bootstrap confidence interval.

.. math::
    \\mathrm{IQM}(x) = \\frac{1}{|I|} \\sum_{i \\in I} x_{(i)}, \\quad
    I = \\{\\lceil 0.25 n \\rceil + 1, \\dots, \\lfloor 0.75 n \\rfloor\\}

(the mean of the middle 50 % of the sorted values; with fewer than 4 values it is the mean).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from xflow.graphs.ir import Graph, ins, outs

__all__ = [
    "iqm",
    "bootstrap_ci",
    "iqm_curve",
    "stable_from",
    "rollout",
    "evaluate_agent",
    "greedy_episode",
    "random_episode",
    "replay_models",
    "changed_nodes",
]


def iqm(values: Sequence[float] | np.ndarray) -> float:
    """Interquartile mean (25 % trimmed mean); the plain mean for fewer than 4 values."""
    x = np.sort(np.asarray(values, dtype=np.float64).ravel())
    if x.size == 0:
        return float("nan")
    if x.size < 4:
        return float(x.mean())
    from scipy.stats import trim_mean

    return float(trim_mean(x, 0.25))


def bootstrap_ci(values: Sequence[float] | np.ndarray, stat: Callable[[np.ndarray], float] = iqm,
                 *, n_boot: int = 2000, ci: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """``(stat, low, high)``: the statistic and its percentile-bootstrap ``ci`` interval.

    Resamples the runs with replacement ``n_boot`` times (seeded, so deterministic).
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    point = stat(x)
    if x.size == 1:
        return point, point, point
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(n_boot, x.size))
    boots = np.array([stat(x[i]) for i in idx])
    alpha = (1.0 - ci) / 2.0
    return point, float(np.quantile(boots, alpha)), float(np.quantile(boots, 1.0 - alpha))


def iqm_curve(curves: Sequence[tuple[np.ndarray, np.ndarray]], *, points: int = 20,
              n_boot: int = 1000, ci: float = 0.95, seed: int = 0) -> dict[str, np.ndarray]:
    """IQM and bootstrap CI across runs of a learning curve.

    Each curve ``(steps, values)`` is linearly interpolated on a common grid of ``points`` steps
    (within the range every run covers), then IQM/CI are taken across runs at each grid step.
    Returns ``{"step", "iqm", "low", "high"}`` arrays.
    """
    curves = [(np.asarray(s, float), np.asarray(v, float)) for s, v in curves if len(s)]
    if not curves:
        empty = np.array([])
        return {"step": empty, "iqm": empty, "low": empty, "high": empty}
    lo = max(s.min() for s, _ in curves)
    hi = min(s.max() for s, _ in curves)
    grid = np.linspace(lo, hi, points) if hi > lo else np.array([lo])
    table = np.stack([np.interp(grid, s, v) for s, v in curves])  # (runs, points)
    stats = np.array([bootstrap_ci(table[:, j], n_boot=n_boot, ci=ci, seed=seed)
                      for j in range(grid.size)])
    return {"step": grid, "iqm": stats[:, 0], "low": stats[:, 1], "high": stats[:, 2]}


def stable_from(outcomes: Sequence[Any], *, window: int = 5) -> int | None:
    """Index of the first update from which a policy's outcome never changes again, or ``None``.

    ``outcomes[i]`` is what the policy does after update ``i`` (e.g. the final graph hash of its
    arg-max rollout). The policy is *stable from* ``i`` when ``outcomes[i:]`` are all equal and
    hold for at least ``window`` updates (a run that ends on a fresh change is not stable yet).
    """
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    n = len(outcomes)
    if n < window:
        return None
    i = n - 1
    while i > 0 and outcomes[i - 1] == outcomes[-1]:
        i -= 1
    return i if n - i >= window else None


def rollout(env: Any, choose: Callable[[dict, dict], int], *, seed: int | None = 0,
            model: str | None = None) -> dict[str, Any]:
    """Run one episode with ``choose(obs, info) -> action``; returns a summary + the trajectory.

    The summary has ``episodic_return``, ``episodic_length``, ``initial_cost``, ``final_cost``,
    ``final_cost_ratio``, ``best_step`` / ``best_cost_ratio`` (the cheapest graph seen: an
    optimizer returns that one, so it is never worse than the input), ``costs`` (cost after each
    step, starting with the initial one),
    ``rules`` (applied rule per step) and ``state`` (replayable :class:`EpisodeState`).
    """
    env = getattr(env, "unwrapped", env)
    obs, info = env.reset(seed=seed, options={"model": model} if model else None)
    costs = [info["cost"]]
    done = False
    while not done:
        obs, _, term, trunc, info = env.step(int(choose(obs, info)))
        costs.append(info["cost"])
        done = term or trunc
    return {
        "model": env.model_id,
        "episodic_return": env.episode_reward,
        "episodic_length": env.steps,
        "initial_cost": env.initial_cost,
        "final_cost": info["cost"],
        "final_cost_ratio": info["cost"] / env.initial_cost if env.initial_cost else float("nan"),
        "best_step": int(np.argmin(costs)),
        "best_cost_ratio": min(costs) / env.initial_cost if env.initial_cost else float("nan"),
        "costs": costs,
        "rules": [r.rule for r in env.trajectory],
        "state": env.state,
    }


def evaluate_agent(agent: Any, env: Any, *, episodes: int = 1, deterministic: bool = True,
                   seed: int = 0, model: str | None = None) -> list[dict[str, Any]]:
    """Roll out ``agent`` (a :class:`~xflow.nn.GraphActorCritic`) for ``episodes`` episodes."""
    gen = torch.Generator().manual_seed(seed)

    def choose(obs: dict, info: dict) -> int:
        with torch.no_grad():
            logits, _ = agent([obs], info["action_mask"][None])
        if deterministic:
            return int(logits.argmax(-1)[0])
        probs = torch.softmax(logits[0], -1)
        return int(torch.multinomial(probs, 1, generator=gen)[0])

    return [rollout(env, choose, seed=seed + i, model=model) for i in range(episodes)]


def greedy_episode(env: Any, *, model: str | None = None, seed: int | None = 0) -> dict[str, Any]:
    """Greedy baseline: apply the candidate with the lowest cost while it beats the current graph.

    Uses the environment's own cost model, so it is the TASO-style greedy search the RL agent is
    compared with (it cannot accept a temporarily worse graph).
    """
    env_u = getattr(env, "unwrapped", env)

    def choose(obs: dict, info: dict) -> int:
        if not env_u.candidates:
            return env_u.stop_action
        costs = [env_u.cost_model.cost(c.graph, c.hash) for c in env_u.candidates]  # no weight copies
        best = int(np.argmin(costs))
        return best if costs[best] < info["cost"] - 1e-12 else env_u.stop_action

    return rollout(env_u, choose, seed=seed, model=model)


def random_episode(env: Any, *, seed: int = 0, model: str | None = None,
                   stop_prob: float = 0.0) -> dict[str, Any]:
    """Random-walk baseline: a uniformly random legal candidate each step (stop with ``stop_prob``)."""
    rng = np.random.default_rng(seed)

    def choose(obs: dict, info: dict) -> int:
        legal = np.flatnonzero(info["action_mask"][:-1])
        if not legal.size or rng.random() < stop_prob:
            return len(info["action_mask"]) - 1
        return int(rng.choice(legal))

    return rollout(env, choose, seed=seed, model=model)


def replay_models(env: Any, state: Any) -> list[Any]:
    """The graph after every step of ``state`` (index 0 = the starting graph), by replaying it."""
    env = getattr(env, "unwrapped", env)
    env.reset(options={"model": state.model_id})
    models = [env.model]
    for a in state.actions:
        _, _, term, trunc, _ = env.step(int(a))
        models.append(env.model)
        if term or trunc:
            break
    return models


def changed_nodes(prev: Any, new: Any) -> list[str]:
    """Names of the operators of ``new`` that ``prev`` does not have (the rewritten region)."""
    a, b = Graph.of(prev), Graph.of(new)
    before = {(n.name, n.op_type, tuple(ins(n)), tuple(outs(n))) for n in a.nodes}
    return [n.name for n in b.nodes if (n.name, n.op_type, tuple(ins(n)), tuple(outs(n))) not in before]
