"""GAT encoder, heads and actor-critic: shapes, repr, masking, checkpoints."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from xflow.envs.features import EDGE_DIM, NODE_DIM
from xflow.nn import (
    MASKED_LOGIT,
    CandidatePolicyHead,
    GATEncoder,
    GraphActorCritic,
    ValueHead,
    batch_observations,
    to_data,
)


def _toy_graph(n: int = 4):
    """A 4-node chain with random features (as a GraphInstance-like object)."""
    from gymnasium.spaces import GraphInstance

    rng = np.random.default_rng(n)
    links = np.array([[i, i + 1] for i in range(n - 1)], dtype=np.int64)
    return GraphInstance(rng.random((n, NODE_DIM), dtype=np.float32),
                         rng.random((n - 1, EDGE_DIM), dtype=np.float32), links)


def test_gat_encoder_shapes_and_repr():
    enc = GATEncoder(NODE_DIM, EDGE_DIM, hidden_channels=16, out_channels=8, num_layers=2)
    assert str(enc) == f"GATEncoder({NODE_DIM}, 8, edge_dim={EDGE_DIM}, hidden=16, layers=2, heads=2)"
    d = to_data(_toy_graph())
    out = enc(d.x, d.edge_index, d.edge_attr)
    assert out.shape == (1, 8)
    b = batch_observations([{"graph": _toy_graph(4), "candidates": ()},
                            {"graph": _toy_graph(6), "candidates": ()}])[0]
    out = enc(b.x, b.edge_index, b.edge_attr, b.batch)
    assert out.shape == (2, 8)
    # batching must not mix graphs: embedding of graph 0 alone equals its row in the batch
    single = enc(d.x, d.edge_index, d.edge_attr)
    assert torch.allclose(out[0], single[0], atol=1e-5)


def test_gat_encoder_uses_edges():
    enc = GATEncoder(NODE_DIM, EDGE_DIM, 16, 8, num_layers=2).eval()
    g = to_data(_toy_graph())
    a = enc(g.x, g.edge_index, g.edge_attr)
    b = enc(g.x, g.edge_index, g.edge_attr + 5.0)
    assert not torch.allclose(a, b)


def test_heads_shapes_and_repr():
    ph, vh = CandidatePolicyHead(8, 16), ValueHead(8, 16)
    assert str(ph) == "CandidatePolicyHead(8, 1, hidden=16)" and str(vh) == "ValueHead(8, 1, hidden=16)"
    z = torch.randn(5, 8)
    assert ph(z, z).shape == (5,) and ph.stop(z).shape == (5,) and vh(z).shape == (5,)
    assert torch.allclose(ph.stop(z), ph(z, z))


def _obs(k: int) -> dict:
    return {"graph": _toy_graph(5), "candidates": tuple(_toy_graph(4 + i) for i in range(k))}


def test_actor_critic_masks_missing_candidates():
    ac = GraphActorCritic(num_actions=6, node_dim=NODE_DIM, edge_dim=EDGE_DIM, hidden_channels=16,
                          num_layers=1)
    assert str(ac).startswith("GraphActorCritic(actions=6")
    logits, values = ac([_obs(2), _obs(0)])
    assert logits.shape == (2, 6) and values.shape == (2,)
    assert (logits[0, 2:5] == MASKED_LOGIT).all() and (logits[0, [0, 1, 5]] > MASKED_LOGIT).all()
    assert (logits[1, :5] == MASKED_LOGIT).all()
    mask = np.array([[True, False, False, False, False, True]] * 2)
    logits, _ = ac([_obs(2), _obs(2)], mask)
    assert logits[0, 1] == MASKED_LOGIT
    action, logp, ent, _ = ac.get_action_and_value([_obs(2)] * 50, np.repeat(mask[:1], 50, 0))
    assert set(action.tolist()) <= {0, 5} and torch.isfinite(logp).all() and (ent >= 0).all()


def test_actor_critic_candidate_order_matters():
    ac = GraphActorCritic(4, NODE_DIM, EDGE_DIM, 16, 1)
    o = _obs(2)
    swapped = {"graph": o["graph"], "candidates": o["candidates"][::-1]}
    a, _ = ac([o])
    b, _ = ac([swapped])
    assert torch.allclose(a[0, 0], b[0, 1]) and torch.allclose(a[0, 1], b[0, 0])


def test_checkpoint_round_trip(tmp_path):
    ac = GraphActorCritic(4, NODE_DIM, EDGE_DIM, 16, 1)
    path = ac.save(tmp_path / "agent.pt", note="x")
    back, extra = GraphActorCritic.load_with_extra(path)
    assert extra == {"note": "x"}
    a, va = ac([_obs(2)])
    b, vb = back([_obs(2)])
    assert torch.allclose(a, b) and torch.allclose(va, vb)


def test_checkpoint_errors(tmp_path):
    from xflow.errors import ModelFileNotFound, ModelLoadError

    with pytest.raises(ModelFileNotFound):
        GraphActorCritic.load(tmp_path / "nope.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError):
        GraphActorCritic.load(tmp_path / "bad.pt")


def test_env_observation_feeds_the_agent():
    from xflow.envs.rewrite import RewriteEnv

    env = RewriteEnv("builder:inception_like", max_candidates=8, horizon=3, cost_model="nominal")
    obs, info = env.reset(seed=0)
    ac = GraphActorCritic(env.action_space.n, NODE_DIM, EDGE_DIM, 16, 1)
    logits, _ = ac([obs], info["action_mask"][None])
    legal = torch.as_tensor(info["action_mask"])
    assert (logits[0, legal] > MASKED_LOGIT).all() and (logits[0, ~legal] == MASKED_LOGIT).all()
