"""Propagation timing helper: hits the target sparsity and reports every variant (no timing asserts)."""
import torch

from xflow.sparsify.layers import prepare_graph
from xflow.sparsify.pruning import edge_prune_mask, message_norms
from xflow.sparsify.synthetic import sbm_graph
from xflow.sparsify.timing import delta_for_sparsity, propagation_timing, training_timing, weight_timing


def test_delta_for_sparsity_reaches_target():
    data = sbm_graph(300, 8, num_features=4, seed=0)
    g = prepare_graph(data.edge_index, 300)
    norms = message_norms(data.x, g.edge_index, g.edge_weight)
    d = delta_for_sparsity(norms, g.self_loops, 0.7)
    m = edge_prune_mask(norms, torch.ones_like(g.self_loops), g.self_loops, d)
    assert 1 - float(m[~g.self_loops].float().mean()) >= 0.7 - 0.02


def test_propagation_timing_records_every_comparison_with_interval_and_verdict():
    recs = propagation_timing({"num_nodes": 400, "avg_degree": 6, "features": 8, "rounds": 3})
    pairs = {(r["variant"], r["baseline"]) for r in recs}
    assert ("sparse_csr", "dense_csr") in pairs and ("sparse_onthefly", "dense_kernel") in pairs
    for r in recs:
        assert r["metric"] == "speedup" and r["verdict"] in ("faster", "slower", "same")
        assert r["speedup_lo"] <= r["value"] <= r["speedup_hi"] and r["clock"] == "thread"
        assert r["time_ms"] > 0 and r["baseline_ms"] > 0 and "×" in r["text"]
    assert abs(recs[0]["edge_sparsity_offdiag"] - 0.9) < 0.03


def test_weight_timing_hits_the_sparsity_with_unifews_masks():
    recs = weight_timing({"num_nodes": 300, "f_in": 64, "f_out": 16, "sparsity": 0.9, "masks": "unifews",
                          "rounds": 3})
    assert {r["variant"] for r in recs} >= {"masked_dense", "torch_csr"}
    assert abs(recs[0]["weight_sparsity"] - 0.9) < 0.02 and recs[0]["delta_w"] > 0
    # the rule's per-input threshold prunes whole rows of weak inputs: more than random masks do
    rnd = weight_timing({"num_nodes": 300, "f_in": 64, "f_out": 16, "sparsity": 0.9, "rounds": 3})
    assert recs[0]["rows_pruned"] > rnd[0]["rows_pruned"]


def test_training_timing_compares_each_delta_with_dense():
    recs = training_timing({"dataset": "sbm:300:6", "hidden": 16, "warm_epochs": 2, "rounds": 3,
                            "deltas": [(1.0, 1.0)]})
    assert [(r["variant"], r["baseline"]) for r in recs] == [("unifews_1_1", "dense")]
    assert recs[0]["edge_sparsity_offdiag"] > 0.3 and recs[0]["weight_sparsity"] > 0.3


def test_sparse_and_dense_kernels_agree_on_kept_edges():
    from xflow.sparsify.ops import csr_adjacency, propagate, spmm_csr

    data = sbm_graph(200, 6, num_features=5, seed=1)
    g = prepare_graph(data.edge_index, 200)
    mask = torch.rand(g.num_edges) < 0.5
    idx = mask.nonzero().view(-1)
    a = spmm_csr(csr_adjacency(g.edge_index, g.edge_weight, 200, mask), data.x)
    b = propagate(data.x, g.edge_index[:, idx], g.edge_weight[idx], 200, sorted_by_dst=True)
    c = propagate(data.x, g.edge_index[:, idx], g.edge_weight[idx], 200, sorted_by_dst=False)
    assert torch.allclose(a, b, atol=1e-5) and torch.allclose(b, c, atol=1e-5)


def test_panel_kernel_equals_dense_masked_matmul():
    from xflow.sparsify import kernels

    if not kernels.available():
        import pytest

        pytest.skip("no C compiler")
    g = torch.Generator().manual_seed(0)
    for n in (1, 64, 130):  # below, at and above one panel; a ragged tail
        x = torch.randn(n, 37, generator=g)
        w = torch.randn(37, 19, generator=g) * (torch.rand(37, 19, generator=g) > 0.7)
        assert float(w.abs().sum()) > 0
        wt = w.t().contiguous().to_sparse_csr()
        xp = kernels.pack_panels(x)
        assert xp.shape == ((n + 63) // 64, 37, 64) and torch.equal(xp[0, :, 0], x[0])
        y = kernels.spmm_panel(wt.crow_indices(), wt.col_indices(), wt.values(), xp, n)
        ref = x @ w
        assert y.shape == (n, 19) and ref.std() > 0.1
        assert torch.allclose(y, ref, atol=1e-5)
        yt = kernels.spmm_t(wt.crow_indices(), wt.col_indices(), wt.values(), x.t().contiguous())
        assert torch.allclose(yt.t(), ref, atol=1e-5)


def test_fused_norm_and_edge_rule_kernels_equal_the_torch_rule():
    from xflow.sparsify import kernels
    from xflow.sparsify.pruning import edge_prune_mask, message_norms

    if not kernels.available():
        import pytest

        pytest.skip("no C compiler")
    data = sbm_graph(300, 8, num_features=12, seed=4)
    g = prepare_graph(data.edge_index, 300)
    h = data.x * torch.linspace(0.1, 3, 300)[:, None]
    assert torch.allclose(kernels.row_norms(h), h.norm(dim=1), rtol=1e-5)
    assert torch.allclose(kernels.col_norms(h), h.norm(dim=0), rtol=1e-5)
    cand = torch.rand(g.num_edges, generator=torch.Generator().manual_seed(0)) < 0.8
    for delta in (0.5, 1.0, 2.0):
        ref = edge_prune_mask(message_norms(h, g.edge_index, g.edge_weight), cand, g.self_loops, delta)
        got = kernels.edge_rule(g.edge_index[0], g.edge_weight, kernels.row_norms(h), cand, g.self_loops, delta)
        assert got.dtype == torch.bool and torch.equal(got, ref) and 0 < int(ref.sum()) < int(cand.sum())
