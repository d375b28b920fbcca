"""Gymnasium environments over graph rewrites, their rewards and replayable states.

Importing this package registers ``xflow/GraphRewrite-v2`` (the only registration site)::

    import gymnasium as gym
    import xflow.envs  # noqa: F401
    env = gym.make("xflow/GraphRewrite-v2", model="builder:inception_like", horizon=20)

Cost models come from the one cost layer (:mod:`xflow.costs`), model ids from
:mod:`xflow.graphs.model_ids`. Submodules are imported lazily so the registration stays cheap.
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

#: The id of the graph-rewrite environment (v1: onnx-ir graphs, graph-hash encoding v2).
ENV_ID = "xflow/GraphRewrite-v2"

if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point="xflow.envs.rewrite:RewriteEnv")

_EXPORTS = {
    "RewriteEnv": "xflow.envs.rewrite",
    "Candidate": "xflow.envs.rewrite",
    "EpisodeState": "xflow.envs.state",
    "StateValidation": "xflow.envs.state",
    "make_reward": "xflow.envs.rewards",
    "make_cost_model": "xflow.costs.registry",
    "resolve_model": "xflow.graphs.model_ids",
    "register_model": "xflow.graphs.model_ids",
    "featurize": "xflow.envs.features",
}


__getattr__ = lazy_getattr(__name__, _EXPORTS)
