"""Pruned layers: equality with PyG when dense, real skipping of pruned edges, exact MAC counts."""
import torch

from xflow.sparsify.layers import PrunedLinear, PrunedPropagation, UnifewsGATConv, UnifewsGCNConv, prepare_graph
from xflow.sparsify.macs import MacCounter
from xflow.sparsify.models import GCN, build_model
from xflow.sparsify.synthetic import sbm_graph


def _path_graph():
    # undirected path 0-1-2-3
    ei = torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])
    return prepare_graph(ei, 4)


def test_dense_gcn_conv_equals_pyg_gcnconv():
    from torch_geometric.nn import GCNConv

    data = sbm_graph(60, 4, num_features=5, seed=1)
    g = prepare_graph(data.edge_index, data.num_nodes)
    ours = UnifewsGCNConv(5, 3)
    ref = GCNConv(5, 3)
    with torch.no_grad():
        ref.lin.weight.copy_(ours.lin.weight.T)
        ref.bias.copy_(ours.bias + 0.1)
        ours.bias.add_(0.1)
    out, mask = ours(data.x, g)
    assert mask.all()
    assert torch.allclose(out, ref(data.x, data.edge_index), atol=1e-5)
    assert str(ours) == "UnifewsGCNConv(5, 3)"


def test_pruned_propagation_matches_dense_on_kept_subgraph_and_counts_macs():
    g = _path_graph()
    h = torch.arange(8, dtype=torch.float).view(4, 2)
    prop = PrunedPropagation(delta_a=1.0)
    c = MacCounter()
    out, mask = prop(h, g, counter=c, name="p")
    assert mask[g.self_loops].all()
    dense = torch.zeros(4, 4)
    src, dst = g.edge_index[:, mask]
    dense[dst, src] = g.edge_weight[mask]
    assert torch.allclose(out, dense @ h)
    kept = int(mask.sum())
    assert kept < g.num_edges
    row = c.ops[0]
    assert (row.kept, row.total, row.macs, row.macs_dense) == (kept, g.num_edges, 2 * kept, 2 * g.num_edges)
    assert row.always_kept == 4


def test_frozen_mask_is_reused_and_external_mask_respected():
    g = _path_graph()
    prop = PrunedPropagation(delta_a=1.0)
    h = torch.rand(4, 3)
    _, m1 = prop(h, g)
    prop.freeze()
    _, m2 = prop(torch.rand(4, 3) * 100, g)
    assert torch.equal(m1, m2)
    only_loops = g.self_loops.clone()
    prop.set_mask(only_loops)
    out, _ = prop(h, g)
    deg = torch.tensor([2.0, 3.0, 3.0, 2.0])  # degree + self-loop
    assert torch.allclose(out, h / deg[:, None])


def test_pruned_linear_mask_macs_and_row_skipping():
    lin = PrunedLinear(3, 2, delta_w=0.0, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
    mask = torch.tensor([[True, False], [False, False], [True, True]])
    lin.set_mask(mask)
    x = torch.rand(7, 3)
    c = MacCounter()
    out = lin(x, c)
    assert torch.allclose(out, x @ (lin.weight * mask))
    assert (c.ops[0].kept, c.ops[0].macs, c.ops[0].macs_dense) == (3, 7 * 3, 7 * 6)
    assert str(lin).startswith("PrunedLinear(3, 2")


def test_pruned_linear_straight_through_until_frozen():
    lin = PrunedLinear(4, 2, delta_w=5.0)
    x = torch.rand(5, 4)
    lin.train()
    lin(x).sum().backward()
    assert (lin.weight.grad != 0).all()  # pruned entries still learn before freezing
    assert not lin.mask.all()
    lin.freeze()
    lin.weight.grad = None
    lin(x).sum().backward()
    assert (lin.weight.grad[~lin.mask] == 0).all()


def test_gcn_layer_to_layer_inheritance_and_exact_macs():
    data = sbm_graph(80, 6, num_features=8, seed=2)
    g = prepare_graph(data.edge_index, data.num_nodes)
    model = GCN(8, 3, hidden=4, delta_a=0.8, delta_w=0.5).eval()
    c = MacCounter()
    model(data.x, g, c)
    m1, m2 = (p.mask for p in model.propagations())
    assert bool((m2 & ~m1).sum() == 0)  # layer 2 edges ⊆ layer 1 edges
    assert m1[g.self_loops].all() and m2[g.self_loops].all()
    w1, w2 = (lin.mask for lin in model.linears())
    n = data.num_nodes
    expected = n * int(w1.sum()) + int(m1.sum()) * 4 + n * int(w2.sum()) + int(m2.sum()) * 3
    s = c.summary()
    assert s["macs"] == expected
    assert s["macs_dense"] == n * (8 * 4 + 4 * 3) + g.num_edges * (4 + 3)
    assert 0 < s["edge_sparsity"] < 1 and 0 < s["weight_sparsity"] < 1


def test_gat_conv_prunes_with_inheritance_and_counts_attention():
    data = sbm_graph(50, 6, num_features=6, seed=3)
    g = prepare_graph(data.edge_index, data.num_nodes)
    conv = UnifewsGATConv(6, 4, heads=2, delta_a=1.0).eval()
    c = MacCounter()
    out, mask = conv(data.x, g, None, c)
    assert out.shape == (50, 8)
    assert mask[g.self_loops].all() and not mask.all()
    att = [o for o in c.ops if o.kind == "attention"][0]
    assert att.macs == 2 * 50 * 2 * 4
    prop = [o for o in c.ops if o.kind == "propagation"][0]
    assert prop.macs == int(mask.sum()) * 8
    conv2 = UnifewsGATConv(8, 3, heads=1, concat=False, delta_a=1.0).eval()
    _, mask2 = conv2(out, g, mask)
    assert bool((mask2 & ~mask).sum() == 0)


def test_build_model_all_names_forward():
    data = sbm_graph(40, 4, num_features=6, seed=4)
    g = prepare_graph(data.edge_index, data.num_nodes)
    for name in ("gcn", "gat", "sgc", "appnp", "gcn_pyg", "gat_pyg"):
        d = 0.0 if name.endswith("_pyg") else 0.5
        m = build_model(name, 6, 3, delta_a=d, delta_w=d).eval()
        m.prepare(data.x, g)
        c = MacCounter()
        assert m(data.x, g, c).shape == (40, 3)
        assert c.summary()["macs"] > 0


def test_dense_pyg_gcn_matches_ours_macs():
    data = sbm_graph(30, 4, num_features=5, seed=5)
    g = prepare_graph(data.edge_index, data.num_nodes)
    a, b = MacCounter(), MacCounter()
    build_model("gcn", 5, 3).eval()(data.x, g, a)
    build_model("gcn_pyg", 5, 3).eval()(data.x, g, b)
    assert a.summary()["macs"] == b.summary()["macs"]


def test_frozen_propagation_caches_compaction_per_graph():
    g = _path_graph()
    prop = PrunedPropagation(delta_a=1.0)
    h = torch.rand(4, 3)
    out1, m = prop(h, g)
    prop.freeze()
    out2, _ = prop(h, g)
    out3, _ = prop(h, g)  # served from the cache
    assert torch.allclose(out1, out2) and torch.allclose(out2, out3)
    g2 = prepare_graph(torch.tensor([[0, 1], [1, 0]]), 4)  # another graph with the same number of nodes
    prop.set_mask(torch.ones(g2.num_edges, dtype=torch.bool))
    out4, _ = prop(h, g2)  # Â: 0-1 edge weight 1/2, self-loops 1/2, 1/2, 1, 1
    expect = h.clone()
    expect[0] = expect[1] = (h[0] + h[1]) / 2
    assert torch.allclose(out4, expect, atol=1e-6)


def test_frozen_linear_inference_cache_tracks_weight_updates():
    lin = PrunedLinear(5, 3, delta_w=0.5)
    x = torch.rand(6, 5)
    lin.eval()
    with torch.no_grad():
        lin(x)
    lin.freeze()
    with torch.no_grad():
        a = lin(x)
        assert torch.allclose(a, x @ (lin.weight * lin.mask) + lin.bias, atol=1e-6)
        lin.weight.mul_(2.0)  # in-place update bumps the version: cache must refresh
        b = lin(x)
    assert torch.allclose(b, x @ (lin.weight * lin.mask) + lin.bias, atol=1e-6)
    assert not torch.allclose(a, b)


def test_input_norm_cache_hits_only_the_same_unchanged_tensor():
    from xflow.sparsify.layers import PrunedLinear

    lin = PrunedLinear(6, 4, delta_w=1.0)
    x = torch.randn(10, 6)
    c1, _ = lin.input_norms(x)
    assert lin.input_norms(x)[0] is c1  # cached for the constant input
    y = x.clone()
    y[:, 0] *= 5  # a different tensor (same shape): never served the cached norms
    assert torch.allclose(lin.input_norms(y)[0], y.norm(dim=0), atol=1e-5)
    x.mul_(2)  # in-place change bumps the version
    assert torch.allclose(lin.input_norms(x)[0], x.norm(dim=0), atol=1e-5)
    a = torch.randn(10, 6, requires_grad=True) * 1.0  # an activation: recomputed
    assert torch.allclose(lin.input_norms(a)[0], a.detach().norm(dim=0), atol=1e-5)
