"""Step time and memory of the graph-rewrite environment (``xflow rl env-bench``).

One sample is one ``env.step(a)`` of a seeded random rollout (``a`` uniform over the legal
candidates; when an episode ends the env is reset, untimed, in the sample's ``before`` hook): it
pays for what a step does — build the chosen candidate, hash and cost it, move the candidate set
(re-checking the sites near the change), featurize incrementally, and describe every candidate by
its local difference. Timing goes through :func:`xflow.runtime.measure` (thread CPU time decides;
the step runs on one thread), with its A/A control, so a rollout of ``steps`` rounds takes about
``2 × steps`` env steps. Memory: the process's resident set (``/proc/self/statm``) at chosen step
counts, and, with ``tracemalloc=True``, a second untimed rollout of the same length reporting the
traced Python heap (current and peak) at the same counts.
"""
from __future__ import annotations

import gc
import os
import random
import resource
from typing import Any

from xflow.runtime.measure import Variant, measure

__all__ = ["env_bench", "MEMORY_CHECKPOINTS"]

#: Env steps at which memory is recorded (those beyond the run are skipped).
MEMORY_CHECKPOINTS = (1, 50, 250, 500, 1000)


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):  # pragma: no cover - not Linux
        return float("nan")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class _Rollout:
    """A seeded random rollout of ``env``: :meth:`prepare` resets when the episode is over."""

    def __init__(self, env, seed: int, checkpoints, on_checkpoint) -> None:
        self.env, self.rng = env, random.Random(seed)
        self.steps = 0
        self.checkpoints = set(checkpoints)
        self.on_checkpoint = on_checkpoint
        self.done = True
        self.candidates: list[int] = []
        self.action = 0

    def prepare(self) -> None:
        if self.done:
            self.env.reset()
            self.done = False
        n = len(self.env.candidates)
        self.action = self.rng.randrange(n) if n else self.env.stop_action

    def step(self) -> None:
        _, _, term, trunc, info = self.env.step(self.action)
        self.done = term or trunc
        self.steps += 1
        self.candidates.append(info["n_candidates"])
        if self.steps in self.checkpoints:
            self.on_checkpoint(self.steps)


def env_bench(model: str, *, steps: int = 100, seed: int = 0, warmup: int = 2, max_candidates: int = 500,
              cost_model: str = "nominal", verify: str | bool = "shape", incremental: bool = True,
              tracemalloc: bool = False, progress: bool = False) -> dict[str, Any]:
    """Time ``steps`` rounds of env steps on ``model`` and record memory (see the module docstring).

    Returns ``{"measurement": Measurement, "candidates": [...], "memory": [{"step", "rss_mb",
    "traced_mb", "traced_peak_mb"}...], "peak_rss_mb": …, "rechecked": [...]}``.
    """
    from xflow.envs.rewrite import RewriteEnv

    horizon = 10 * (steps + warmup) + 10
    env = RewriteEnv(model, max_candidates=max_candidates, horizon=horizon, cost_model=cost_model,
                     verify=verify, incremental=incremental)
    memory: dict[int, dict[str, float]] = {}

    def record(n: int) -> None:
        gc.collect()
        memory.setdefault(n, {"step": n})["rss_mb"] = _rss_mb()

    ro = _Rollout(env, seed, MEMORY_CHECKPOINTS, record)
    rechecked: list[int] = []

    def step() -> None:
        ro.step()
        rechecked.append(env._cset.last_checked)

    m = measure({"step": Variant(step, threads=1, before=ro.prepare)}, warmup=warmup, rounds=steps,
                inner=1, progress=progress, desc=f"env step {model}")
    if tracemalloc:
        import tracemalloc as tm

        env2 = RewriteEnv(model, max_candidates=max_candidates, horizon=horizon, cost_model=cost_model,
                          verify=verify, incremental=incremental)

        def traced(n: int) -> None:
            gc.collect()
            cur, peak = tm.get_traced_memory()
            row = memory.setdefault(n, {"step": n})
            row["traced_mb"], row["traced_peak_mb"] = cur / 2**20, peak / 2**20

        tm.start()
        try:
            ro2 = _Rollout(env2, seed, MEMORY_CHECKPOINTS, traced)
            while ro2.steps < ro.steps:
                ro2.prepare()
                ro2.step()
        finally:
            tm.stop()
    return {"measurement": m, "candidates": ro.candidates, "steps_total": ro.steps,
            "memory": [memory[k] for k in sorted(memory)], "peak_rss_mb": _peak_rss_mb(),
            "rechecked": rechecked, "env": env}
