"""Agents that search graph rewrites: PPO (X-RLflow) plus evaluation helpers and baselines.

``xflow.agents.ppo`` is a cleanrl-style single file (``python -m xflow.agents.ppo --help``);
``xflow.agents.evaluation`` has rollouts (agent, greedy, random) and IQM + bootstrap CIs.
Submodules load lazily (torch is imported only when used).
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    **{n: "xflow.agents.ppo" for n in ("Args", "TrainResult", "train", "run", "make_env")},
    **{n: "xflow.agents.evaluation" for n in ("iqm", "bootstrap_ci", "iqm_curve", "rollout",
                                               "evaluate_agent", "greedy_episode",
                                               "random_episode", "replay_models",
                                               "changed_nodes")},
    "rl_search": "xflow.agents.search",
}
"""Public name -> the submodule that defines it (imported on first access)."""

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'xflow.agents' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
