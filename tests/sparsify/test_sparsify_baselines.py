"""Baselines: exact sparsity, self-loops kept, seeded, DSpar degree preference, UGS runs."""
import torch

from xflow.sparsify.baselines import (apply_baseline, dspar_edge_mask, random_edge_mask, random_weight_masks,
                                      train_ugs)
from xflow.sparsify.layers import prepare_graph
from xflow.sparsify.macs import MacCounter
from xflow.sparsify.models import build_model
from xflow.sparsify.synthetic import sbm_graph


def _graph(n=200, seed=0):
    data = sbm_graph(n, 8, num_features=6, num_classes=3, seed=seed)
    return data, prepare_graph(data.edge_index, data.num_nodes)


def test_random_and_dspar_hit_target_sparsity_and_keep_self_loops():
    _, g = _graph()
    for fn in (random_edge_mask, dspar_edge_mask):
        m = fn(g, 0.5, seed=0)
        assert m[g.self_loops].all()
        assert abs((1 - m.float().mean()) - 0.5) < 1.0 / g.num_edges + 1e-6
        assert torch.equal(m, fn(g, 0.5, seed=0)) and not torch.equal(m, fn(g, 0.5, seed=1))


def test_dspar_prefers_edges_between_low_degree_nodes():
    # star (hub 0 linked to 1..30) plus a matching among 31..60 (degree-1 pairs)
    src = list(range(1, 31)) + list(range(31, 61, 2))
    dst = [0] * 30 + list(range(32, 62, 2))
    ei = torch.tensor([src + dst, dst + src])
    g = prepare_graph(ei, 62)
    kept_pairs = torch.zeros(2)
    for seed in range(20):
        m = dspar_edge_mask(g, 0.3, seed=seed)  # keeps 44 of 90 non-loop edges
        s, d = g.edge_index
        star = (s == 0) | (d == 0)
        kept_pairs += torch.tensor([m[star].float().mean(), m[~star & ~g.self_loops].float().mean()])
    assert kept_pairs[1] > kept_pairs[0]


def test_random_weight_masks_exact_fraction():
    model = build_model("gcn", 10, 3, hidden=8)
    masks = random_weight_masks(model, 0.75, seed=0)
    for lin, m in zip(model.linears(), masks):
        assert int((~m).sum()) == round(0.75 * lin.weight.numel())


def test_apply_baseline_masks_are_used_in_every_layer():
    data, g = _graph()
    model = build_model("gcn", 6, 3, hidden=8).eval()
    apply_baseline("random", model, g, 0.5, 0.5, seed=0)
    c = MacCounter()
    model(data.x, g, c)
    s = c.summary()
    assert abs(s["edge_sparsity"] - 0.5) < 0.01 and abs(s["weight_sparsity"] - 0.5) < 0.05


def test_ugs_reaches_targets():
    data, g = _graph(120, 1)
    torch.manual_seed(0)
    model = build_model("gcn", 6, 3, hidden=8)
    out = train_ugs(model, data, g, edge_sparsity=0.3, weight_sparsity=0.5, epochs=6, round_epochs=3)
    assert abs(out["edge_sparsity"] - 0.3) < 0.02
    assert abs(out["weight_sparsity"] - 0.5) < 0.05
    assert out["ugs_rounds"] >= 2 and 0.0 <= out["test_acc"] <= 1.0
