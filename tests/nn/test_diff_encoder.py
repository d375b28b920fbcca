"""The diff encoder equals re-encoding every candidate graph (exact reuse of node embeddings)."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from xflow.envs.features import EDGE_DIM, NODE_DIM
from xflow.envs.rewrite import RewriteEnv
from xflow.nn.batching import batch_graphs
from xflow.nn.diff_encoder import encode_candidates, encode_with_layers
from xflow.nn.gat_encoder import GATEncoder


def _obs_after(model: str, steps: int):
    env = RewriteEnv(model, max_candidates=64, horizon=steps + 2, cost_model="nominal")
    obs, _ = env.reset()
    rng = random.Random(0)
    for _ in range(steps):
        obs, *_ = env.step(rng.randrange(len(env.candidates)))
    return env, obs


@pytest.mark.parametrize("model,steps", [("builder:inception_like", 1), ("zoo:squeezenet1_1", 2)])
def test_diff_encoding_equals_full_encoding(model, steps):
    torch.manual_seed(0)
    enc = GATEncoder(NODE_DIM, EDGE_DIM, 16, 8, num_layers=3).eval()
    _, obs = _obs_after(model, steps)
    cg = obs["candidates"]
    assert len(cg) >= 2
    with torch.no_grad():
        _, layers = encode_with_layers(enc, obs["graph"])
        parts = [cg.parts(i) for i in range(len(cg))]
        z_diff = encode_candidates(enc, layers, parts)
        b = batch_graphs([p[0] for p in parts])
        z_full = enc(b.x, b.edge_index, b.edge_attr, b.batch)
    assert z_full.std(0).mean() > 1e-3  # candidates embed differently: the comparison has teeth
    np.testing.assert_allclose(z_diff.numpy(), z_full.numpy(), atol=1e-5)


def test_missing_neighbourhood_breaks_equality(monkeypatch):
    """Mutant: do not grow the changed set by a hop per layer; the embeddings must then differ."""
    import xflow.nn.diff_encoder as de

    torch.manual_seed(0)
    enc = GATEncoder(NODE_DIM, EDGE_DIM, 16, 8, num_layers=2).eval()
    _, obs = _obs_after("builder:inception_like", 1)
    cg = obs["candidates"]
    parts = [cg.parts(i) for i in range(len(cg))]
    with torch.no_grad():
        _, layers = encode_with_layers(enc, obs["graph"])
        z_ok = encode_candidates(enc, layers, parts)
        monkeypatch.setattr(de, "_EXPAND", False)
        z_bad = encode_candidates(enc, layers, parts)
    assert not torch.allclose(z_ok, z_bad, atol=1e-5)


def test_actor_critic_diff_path_matches_full_path():
    from xflow.nn import GraphActorCritic

    env, obs = _obs_after("builder:inception_like", 1)
    torch.manual_seed(0)
    full = GraphActorCritic(env.action_space.n, NODE_DIM, EDGE_DIM, 16, 2).eval()
    diff = GraphActorCritic(env.action_space.n, NODE_DIM, EDGE_DIM, 16, 2, diff_encoder=True).eval()
    diff.load_state_dict(full.state_dict())
    mask = env.action_mask()[None]
    with torch.no_grad():
        lf, vf = full([obs], mask)
        ld, vd = diff([obs], mask)
    np.testing.assert_allclose(ld.numpy(), lf.numpy(), atol=1e-4)
    np.testing.assert_allclose(vd.numpy(), vf.numpy(), atol=1e-5)


@pytest.mark.parametrize("layers", [0, 2])
def test_graph_free_encoder_ignores_connectivity(layers):
    """The ablation's graph-free encoder (``num_layers=0``) sees only the bag of node features:
    rewiring the edges leaves it unchanged, while any message-passing encoder changes; the diff
    path agrees with the full path at 0 layers too."""
    torch.manual_seed(0)
    enc = GATEncoder(NODE_DIM, EDGE_DIM, 16, 8, num_layers=layers).eval()
    _, obs = _obs_after("builder:inception_like", 1)
    g = obs["graph"]
    b = batch_graphs([g])
    perm = torch.randperm(b.x.size(0))
    rewired = perm[b.edge_index]  # same nodes and edge features, different connectivity
    with torch.no_grad():
        z = enc(b.x, b.edge_index, b.edge_attr)
        z_rewired = enc(b.x, rewired, b.edge_attr)
        cg = obs["candidates"]
        _, base = encode_with_layers(enc, g)
        parts = [cg.parts(i) for i in range(len(cg))]
        bc = batch_graphs([p[0] for p in parts])
        np.testing.assert_allclose(encode_candidates(enc, base, parts).numpy(),
                                   enc(bc.x, bc.edge_index, bc.edge_attr, bc.batch).numpy(), atol=1e-5)
    assert z.abs().max() > 1e-3
    assert torch.allclose(z, z_rewired, atol=1e-6) == (layers == 0)
