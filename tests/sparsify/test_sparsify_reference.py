"""The gdmnl/Unifews reference profile: its graphs (self-loops weighted 1/(d+1), always locked; Cora's
largest component; CiteSeer's raw self-loops), its stratified split, its evaluation lock, its weight
schedule, and ``profile="reference"`` in ``run``."""
import pytest
import torch

from xflow.errors import UnknownName
from xflow.sparsify import datasets
from xflow.sparsify.experiment import REFERENCE_GRAPHS, load_graph, resolve, run
from xflow.sparsify.layers import PrunedLinear, PrunedPropagation, prepare_graph
from xflow.sparsify.macs import MacCounter
from xflow.sparsify.models import GCN
from xflow.sparsify.pruning import weight_prune_mask
from xflow.sparsify.synthetic import sbm_graph
from xflow.sparsify.train import train_model

needs_cora = pytest.mark.skipif(datasets.find_planetoid_raw("cora") is None, reason="Cora raw files not available")
needs_citeseer = pytest.mark.skipif(datasets.find_planetoid_raw("citeseer") is None,
                                    reason="CiteSeer raw files not available")


def _path():
    return torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])


def test_self_loops_are_weighted_one_over_degree_plus_one():
    g = prepare_graph(_path(), 4, self_loops=True)
    deg = torch.tensor([2.0, 3.0, 3.0, 2.0])  # degree + the self-loop (the reference's explicit diagonal)
    src, dst = g.edge_index
    assert int(g.self_loops.sum()) == 4 and g.num_edges == 10
    assert torch.allclose(g.edge_weight, (deg[src] * deg[dst]).rsqrt())
    assert torch.allclose(g.edge_weight[g.self_loops], 1.0 / deg)


def test_self_loops_on_a_node_subset_and_none():
    g = prepare_graph(_path(), 4, self_loops=torch.tensor([False, True, False, False]))
    assert g.edge_index[:, g.self_loops].tolist() == [[1], [1]]
    deg = torch.tensor([1.0, 3.0, 2.0, 1.0])
    src, dst = g.edge_index
    assert torch.allclose(g.edge_weight, (deg[src] * deg[dst]).rsqrt())
    none = prepare_graph(_path(), 4, self_loops=False)
    assert not bool(none.self_loops.any()) and none.num_edges == 6


def test_self_loops_are_locked_at_any_threshold():
    g = prepare_graph(_path(), 4, self_loops=True)
    prop = PrunedPropagation(delta_a=1e6)  # threshold above every message
    h = torch.arange(1.0, 9.0).view(4, 2)
    out, mask = prop(h, g)
    assert torch.equal(mask, g.self_loops)  # every off-diagonal edge went, every self-loop stayed
    deg = torch.tensor([2.0, 3.0, 3.0, 2.0])
    assert torch.allclose(out, h / deg[:, None])  # a node keeps its own signal, weighted 1/(d+1)


def test_reference_graphs_per_dataset():
    assert REFERENCE_GRAPHS["cora"] == {"largest_component": True, "self_loops": True}
    assert REFERENCE_GRAPHS["citeseer"]["self_loops"] == "raw"
    r = resolve({"dataset": "cora", "profile": "reference", "split": "random"})
    assert (r["self_loops"], r["largest_component"], r["stratify"], r["normalize_features"]) == ("True", True, True, False)
    x = resolve({"dataset": "cora"})
    assert (x["self_loops"], x["largest_component"], x["stratify"], x["normalize_features"]) == ("True", False, False, True)
    assert resolve({"dataset": "cora", "profile": "reference", "self_loops": False})["self_loops"] == "False"
    with pytest.raises(UnknownName):
        resolve({"dataset": "cora", "self_loops": "some"})


@needs_cora
def test_reference_cora_is_the_largest_component_with_its_diagonal():
    data, g = load_graph("cora", "random", 0, True, largest_component=True, stratify=True, normalize_features=False)
    # the reference's data/cora/adj.npz: 2,485 nodes, 12,623 entries (10,138 + the 2,485 diagonal)
    assert data.num_nodes == 2485 and g.num_edges == 12623 and int(g.self_loops.sum()) == 2485
    assert torch.bincount(data.y).tolist() == [344, 214, 406, 726, 379, 285, 131]
    assert set(torch.unique(data.x).tolist()) == {0.0, 1.0}  # raw bag of words
    n_tr, n_va = int(data.train_mask.sum()), int(data.val_mask.sum())
    assert (n_tr, n_va, int(data.test_mask.sum())) == (1242, 621, 622)
    for m, share in ((data.train_mask, 0.5), (data.val_mask, 0.25)):  # stratified: class shares kept
        per_class = torch.bincount(data.y[m], minlength=7).float()
        assert torch.all((per_class - share * torch.bincount(data.y).float()).abs() <= 1.0)


@needs_citeseer
def test_reference_citeseer_keeps_the_raw_self_loops():
    data, g = load_graph("citeseer", "random", 0, "raw", stratify=True, normalize_features=False)
    # Table II of the paper: 3,327 nodes, 9,228 entries = 9,104 + the 124 raw self-loops
    assert data.num_nodes == 3327 and g.num_edges == 9228 and int(g.self_loops.sum()) == 124


def test_stratified_split_partitions_and_balances():
    data = sbm_graph(403, 4, num_classes=5, seed=0)
    s = datasets.stratified_split(data, seed=3)
    total = s.train_mask.int() + s.val_mask.int() + s.test_mask.int()
    assert bool((total == 1).all()) and int(s.train_mask.sum()) == 201 and int(s.val_mask.sum()) == 100
    counts = torch.bincount(data.y, minlength=5).float()
    assert torch.all((torch.bincount(data.y[s.train_mask], minlength=5) - counts / 2).abs() <= 1.0)
    assert torch.equal(s.train_mask, datasets.stratified_split(data, seed=3).train_mask)
    assert not torch.equal(s.train_mask, datasets.stratified_split(data, seed=4).train_mask)


def test_weight_rule_clamp_keeps_near_max_entries():
    x = torch.tensor([[1.0, 0.0], [1.0, 0.0]])  # column 1 is all zero -> threshold infinite
    w = torch.tensor([[0.2, 0.1], [0.5, 0.3]])
    assert not bool(weight_prune_mask(w, x, 1.0)[1].any())
    clamped = weight_prune_mask(w, x, 1.0, clamp=True)
    assert clamped[1].tolist() == [True, False]  # 0.5 is the global max: kept under the 0.999·max cap


def test_cumulative_weight_mask_only_shrinks_and_caps_over_survivors():
    lin = PrunedLinear(3, 2, delta_w=1.0)
    lin.cumulative, lin.clamp = True, True
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 0.1], [1.0, 1.0], [1.0, 1.0]]))
    x = torch.ones(4, 3)
    lin(x)
    first = lin.mask.clone()
    assert not bool(first[0, 1])
    with torch.no_grad():
        lin.weight[0, 1] = 5.0  # would pass the rule again, but the mask is cumulative
    lin(x)
    assert not bool(lin.mask[0, 1]) and bool((lin.mask <= first).all())
    # the cap uses max|W| over the surviving entries (the reference zeroes pruned weights): with
    # the stale 5.0 counted the cap would be 4.995 and nothing else would change either way here,
    # so check the cap directly on a case where it matters
    lin2 = PrunedLinear(2, 2, delta_w=100.0)
    lin2.cumulative, lin2.clamp = True, True
    with torch.no_grad():
        lin2.weight.copy_(torch.tensor([[9.0, 1.0], [2.0, 0.5]]))
    lin2.mask.copy_(torch.tensor([[False, True], [True, True]]))  # 9.0 was pruned before
    lin2(torch.ones(3, 2))
    assert lin2.mask.tolist() == [[False, False], [True, False]]  # 2.0 ≥ 0.999·2.0 survives; with 9.0 it would not
    lin.cumulative = False
    lin(x)
    assert bool(lin.mask[0, 1])  # non-cumulative recomputation lets it regrow


def test_no_straight_through_gives_pruned_entries_no_gradient():
    lin = PrunedLinear(2, 1, delta_w=1.0, bias=False)
    lin.straight_through = False
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0], [0.01]]))
    lin(torch.ones(3, 2)).sum().backward()
    assert lin.weight.grad[1, 0] == 0 and lin.weight.grad[0, 0] != 0


def test_lock_restores_edges_into_locked_nodes_only_and_counts_the_kept_mask():
    g = prepare_graph(_path(), 4, self_loops=True)
    prop = PrunedPropagation(delta_a=1e6)
    h = torch.arange(1.0, 9.0).view(4, 2)
    prop(h, g)
    prop.freeze()
    prop.lock_nodes = torch.tensor([False, True, False, False])
    c = MacCounter()
    out, mask = prop(h, g, counter=c)
    assert torch.equal(mask, g.self_loops)  # what the next layer inherits: the pruned set
    a = torch.zeros(4, 4)
    src, dst = g.edge_index
    a[dst, src] = g.edge_weight
    dense = a @ h
    assert torch.allclose(out[1], dense[1])  # node 1 aggregates its whole neighbourhood
    deg = torch.tensor([2.0, 3.0, 3.0, 2.0])
    for v in (0, 2, 3):
        assert torch.allclose(out[v], h[v] / deg[v])  # the others only their self-loop
    assert c.summary()["edge_sparsity_offdiag"] == 1.0  # locked edges are not counted (reference cal_flops)


def test_two_layer_lock_uses_only_edges_the_first_layer_kept():
    g = prepare_graph(_path(), 4, self_loops=True)
    model = GCN(2, 2, hidden=3, delta_a=1e6, batch_norm=False).eval()
    x = torch.rand(4, 2)
    with torch.no_grad():
        model(x, g)
    model.freeze()
    model.lock_nodes(torch.tensor([False, True, False, False]))
    with torch.no_grad():
        locked = model(x, g)
    p1, p2 = model.propagations()
    assert torch.equal(p1.mask, g.self_loops) and torch.equal(p2.mask, g.self_loops)
    # layer 2 candidates = layer 1's kept mask (self-loops): node 1's layer-2 output sees no neighbour
    c1, c2 = model.convs
    with torch.no_grad():
        a = torch.zeros(4, 4)
        src, dst = g.edge_index
        a[dst, src] = g.edge_weight
        h1_1 = a[1] @ (x @ (c1.lin.weight * c1.lin.mask)) + c1.bias
        z = torch.relu(h1_1) @ (c2.lin.weight * c2.lin.mask)
        expect = a[1, 1] * z + c2.bias
    assert torch.allclose(locked[1], expect, atol=1e-5)


def test_reference_schedule_reports_best_epoch_and_checkpoint_accuracy():
    data = sbm_graph(300, 6, num_features=16, num_classes=4, seed=0)
    g = prepare_graph(data.edge_index, data.num_nodes, self_loops=True)
    torch.manual_seed(0)
    model = GCN(16, 4, hidden=32, delta_a=0.5, delta_w=0.5, batch_norm=True, input_dropout=False, bn_momentum=0.9)
    m = train_model(model, data, g, epochs=30, lr=0.01, weight_decay=0.0, schedule="reference")
    assert 1 <= m["best_epoch"] <= 30
    assert m["test_acc"] > 0.6 and m["test_acc_ckpt"] > 0.6  # 4 planted classes: chance is 0.25
    assert 0.05 < m["edge_sparsity_offdiag"] < 1 and 0.05 < m["weight_sparsity"] < 1
    assert m["prunable_sparsity"] > m["total_sparsity"]  # self-loops are never prunable
    assert model.norms[0].momentum == 0.9
    with pytest.raises(UnknownName):
        train_model(model, data, g, epochs=1, schedule="nope")


def test_run_reference_profile_on_synthetic_and_lock_changes_only_evaluation():
    base = {"dataset": "sbm:300:6", "model": "gcn", "profile": "reference", "epochs": 20, "hidden": 32,
            "threads": 1, "delta_a": 1.5, "delta_w": 1.0, "lr": 0.01}
    recs = run(base)
    m = {r["metric"]: r["value"] for r in recs}
    assert recs[0]["profile"] == "reference" and recs[0]["self_loops"] == "True"
    assert recs[0]["schedule"] == "reference" and recs[0]["hidden"] == 32 and recs[0]["bn_momentum"] == 0.9
    assert m["weight_sparsity"] > 0.3 and m["mac_reduction"] > 1.0 and m["edge_sparsity_offdiag"] > 0.5
    locked = {r["metric"]: r["value"] for r in run({**base, "lock_eval_nodes": True})}
    # locked evaluation restores every edge into the evaluated nodes in layer 1: accuracy must not
    # fall apart the way the unlocked run may, and the counted sparsity stays the pruned one
    assert locked["edge_sparsity_offdiag"] > 0.5
    assert locked["test_acc"] >= m["test_acc"] - 0.05
    with pytest.raises(UnknownName):
        run({**base, "profile": "paper"})
    with pytest.raises(UnknownName):
        run({"dataset": "sbm:300:6", "model": "gat_pyg", "hidden": 8, "batch_norm": True})


def test_reference_gat_is_gatv2_with_total_hidden_width():
    from xflow.sparsify.layers import UnifewsGATv2Conv
    from xflow.sparsify.models import build_model

    r = resolve({"model": "gat", "profile": "reference"})
    m = build_model("gat", 10, 3, **r["hp"])
    assert isinstance(m.conv1, UnifewsGATv2Conv) and m.conv1.heads == 8 and m.conv1.out_channels == 64
    assert m.conv2.heads == 1 and not m.conv2.concat and m.norm.momentum == 0.9


def test_cli_reference_profile_with_lock_comparison(capsys):
    import json

    from xflow.cli import main

    rc = main(["sparsify", "run", "--dataset", "sbm:200:6", "--profile", "reference", "--hidden", "16",
               "--epochs", "3", "--delta-a", "1", "--delta-w", "1", "--lock-eval-nodes", "--compare-lock",
               "--compare-dense", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    keys = {(row["method"], row["lock_eval_nodes"]) for row in out["summary"]}
    assert keys == {("unifews", True), ("unifews", False), ("dense", True)}
    t = out["timing"]["inference_speedup"]
    assert t["verdict"] in ("faster", "slower", "same") and t["ci"][0] <= t["ratio"] <= t["ci"][1]


def test_cli_lock_reports_the_unlocked_run_beside_it_and_accuracy_vs_dense(capsys):
    import json

    from xflow.cli import main

    args = ["sparsify", "run", "--dataset", "sbm:200:6", "--profile", "reference", "--hidden", "16", "--epochs", "3",
            "--delta-a", "1", "--delta-w", "1", "--lock-eval-nodes", "--compare-dense", "--seeds", "2", "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert {(r["method"], r["lock_eval_nodes"]) for r in out["summary"]} == {
        ("unifews", True), ("unifews", False), ("dense", True)}
    vs = {v["lock_eval_nodes"]: v for v in out["vs_dense"]}
    assert set(vs) == {True, False}
    for v in vs.values():
        assert v["seeds"] == 2
        assert abs(v["acc_delta_points"] - 100 * (v["test_acc"] - v["dense_test_acc"])) < 1e-6
        assert v["edge_sparsity_offdiag"] > 0.3 and v["weight_sparsity"] > 0.3
    assert main(args[:-1] + ["--no-compare-lock", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {r["lock_eval_nodes"] for r in out["summary"] if r["method"] == "unifews"} == {True}
