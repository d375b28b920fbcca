"""rl_search: the policy as a search method (SearchResult, best graph seen, verified)."""
from __future__ import annotations

import pytest

from xflow.agents.search import rl_search
from xflow.envs.features import EDGE_DIM, NODE_DIM
from xflow.graphs import load_model
from xflow.graphs.builders import build
from xflow.nn import GraphActorCritic


@pytest.fixture
def agent():
    return GraphActorCritic(17, NODE_DIM, EDGE_DIM, 16, 1)


def test_rl_search_returns_a_replayable_search_result(agent):
    from xflow.graphs import model_hash
    from xflow.rewrites import apply_actions

    model = build("inception_like")
    res = rl_search(model, agent, horizon=4, cost_model="nominal")
    assert res.method == "rl" and res.cost <= res.initial_cost  # best seen, never worse
    assert len(res.trace) >= 2 and res.trace == sorted(res.trace, reverse=True)
    start = load_model(model).model
    assert model_hash(apply_actions(start, res.actions)) == model_hash(res.model)


def test_rl_search_from_checkpoint(agent, tmp_path):
    path = agent.save(tmp_path / "agent.pt", args={"horizon": 2, "cost_model": "nominal"})
    res = rl_search(build("split_concat"), path)
    assert res.n_expanded <= 3 and res.summary()["method"] == "rl"
