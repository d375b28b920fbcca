"""Agents that search graph rewrites: PPO (X-RLflow) plus evaluation helpers and baselines.

``xflow.agents.ppo`` is a cleanrl-style single file (``python -m xflow.agents.ppo --help``);
``xflow.agents.evaluation`` has rollouts (agent, greedy, random) and IQM + bootstrap CIs.
Submodules load lazily (torch is imported only when used).
"""
from __future__ import annotations

from xflow._lazy import lazy_getattr

_EXPORTS = {
    **{n: "xflow.agents.ppo" for n in ("Args", "PROFILES", "profile_args", "TrainResult", "train", "run", "make_env")},
    **{n: "xflow.agents.evaluation" for n in ("iqm", "bootstrap_ci", "iqm_curve", "rollout",
                                               "evaluate_agent", "greedy_episode",
                                               "random_episode", "replay_models",
                                               "changed_nodes")},
    "rl_search": "xflow.agents.search",
}
"""Public name -> the submodule that defines it (imported on first access)."""

__all__ = list(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
