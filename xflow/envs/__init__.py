"""Gymnasium environments over graph rewrites, their rewards, cost models and replayable states.

Importing this package registers ``xflow/GraphRewrite-v0`` (the only registration site)::

    import gymnasium as gym
    import xflow.envs  # noqa: F401
    env = gym.make("xflow/GraphRewrite-v0", model="builder:inception_like", horizon=20)

Submodules are imported lazily so the registration stays cheap.
"""
from __future__ import annotations

import gymnasium

from xflow._lazy import lazy_getattr

__all__ = [
    "ENV_ID",
    "RewriteEnv",
    "EpisodeState",
    "StateValidation",
    "Candidate",
    "make_reward",
    "make_cost_model",
    "resolve_model",
    "register_model",
    "featurize",
]

#: The id of the graph-rewrite environment.
ENV_ID = "xflow/GraphRewrite-v0"

if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point="xflow.envs.rewrite:RewriteEnv")

_EXPORTS = {
    "RewriteEnv": "xflow.envs.rewrite",
    "Candidate": "xflow.envs.rewrite",
    "EpisodeState": "xflow.envs.state",
    "StateValidation": "xflow.envs.state",
    "make_reward": "xflow.envs.rewards",
    "make_cost_model": "xflow.envs.cost_models",
    "resolve_model": "xflow.envs.models",
    "register_model": "xflow.envs.models",
    "featurize": "xflow.envs.features",
}


__getattr__ = lazy_getattr(__name__, _EXPORTS)
