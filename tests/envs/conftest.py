"""Shared fixtures of the environment tests: tiny graphs, nominal (uncalibrated) cost model."""
from __future__ import annotations

import pytest

#: Small settings that keep every episode to a few milliseconds.
SMALL = dict(max_candidates=8, horizon=4, cost_model="nominal")


@pytest.fixture
def make_env():
    from xflow.envs.rewrite import RewriteEnv

    def _make(model: str = "builder:inception_like", **kw) -> RewriteEnv:
        return RewriteEnv(model, **{**SMALL, **kw})

    return _make
