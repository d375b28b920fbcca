"""The gdmnl/Unifews reference mode: graph without self-loops, clamped and cumulative weight masks,
per-epoch edge masks, evaluation node lock, and ``profile="reference"`` in ``run``."""
import pytest
import torch

from xflow.errors import UnknownName
from xflow.sparsify.experiment import run
from xflow.sparsify.layers import PrunedLinear, PrunedPropagation, prepare_graph
from xflow.sparsify.macs import MacCounter
from xflow.sparsify.models import GCN
from xflow.sparsify.pruning import weight_prune_mask
from xflow.sparsify.synthetic import sbm_graph
from xflow.sparsify.train import train_model


def _path():
    return torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])


def test_graph_without_self_loops_is_d_half_a_d_half():
    g = prepare_graph(_path(), 4, self_loops=False)
    assert g.num_edges == 6 and not bool(g.self_loops.any())
    deg = torch.tensor([1.0, 2.0, 2.0, 1.0])
    src, dst = g.edge_index
    assert torch.allclose(g.edge_weight, (deg[src] * deg[dst]).rsqrt())


def test_without_self_loops_every_edge_is_prunable():
    g = prepare_graph(_path(), 4, self_loops=False)
    prop = PrunedPropagation(delta_a=100.0)  # threshold above every message
    out, mask = prop(torch.ones(4, 2), g)
    assert not bool(mask.any()) and torch.equal(out, torch.zeros(4, 2))


def test_weight_rule_clamp_keeps_near_max_entries():
    x = torch.tensor([[1.0, 0.0], [1.0, 0.0]])  # column 1 is all zero -> threshold infinite
    w = torch.tensor([[0.2, 0.1], [0.5, 0.3]])
    assert not bool(weight_prune_mask(w, x, 1.0)[1].any())
    clamped = weight_prune_mask(w, x, 1.0, clamp=True)
    assert clamped[1].tolist() == [True, False]  # 0.5 is the global max: kept under the 0.999·max cap


def test_cumulative_weight_mask_only_shrinks():
    lin = PrunedLinear(3, 2, delta_w=1.0)
    lin.cumulative = True
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


def test_lock_nodes_keeps_edges_into_locked_nodes_but_next_layer_inherits_kept_mask():
    g = prepare_graph(_path(), 4, self_loops=False)
    prop = PrunedPropagation(delta_a=100.0)
    prop(torch.ones(4, 2), g)
    prop.freeze()
    lock = torch.tensor([False, True, False, False])
    prop.lock_nodes = lock
    c = MacCounter()
    out, mask = prop(torch.ones(4, 2), g, counter=c)
    assert not bool(mask.any())  # what the next layer inherits
    assert out[1].abs().sum() > 0 and out[0].abs().sum() == 0  # node 1 still aggregates its neighbours
    assert c.summary()["edge_sparsity"] == pytest.approx(1 - 2 / 6)  # locked edges are counted as used


def test_reference_schedule_recomputes_edges_and_reports_best_epoch_counts():
    data = sbm_graph(200, 6, num_features=16, seed=0)
    g = prepare_graph(data.edge_index, data.num_nodes, self_loops=False)
    torch.manual_seed(0)
    model = GCN(16, int(data.y.max()) + 1, hidden=32, delta_a=0.5, delta_w=0.5, batch_norm=True,
                input_dropout=False)
    m = train_model(model, data, g, epochs=6, lr=0.01, weight_decay=0.0, schedule="reference")
    assert 1 <= m["best_epoch"] <= 6
    assert 0 < m["edge_sparsity"] < 1 and 0 < m["weight_sparsity"] < 1
    assert m["prunable_sparsity"] == pytest.approx(m["total_sparsity"])  # no self-loops
    with pytest.raises(UnknownName):
        train_model(model, data, g, epochs=1, schedule="nope")


def test_run_reference_profile_on_synthetic():
    base = {"dataset": "sbm:300:6", "model": "gcn", "profile": "reference", "epochs": 4, "hidden": 32,
            "threads": 1}
    recs = run({**base, "delta_a": 0.5, "delta_w": 1.0})
    m = {r["metric"]: r["value"] for r in recs}
    assert recs[0]["profile"] == "reference" and recs[0]["self_loops"] is False
    assert recs[0]["schedule"] == "reference" and recs[0]["hidden"] == 32
    assert m["weight_sparsity"] > 0.3 and m["mac_reduction"] > 1.0
    locked = {r["metric"]: r["value"] for r in run({**base, "delta_a": 0.5, "delta_w": 1.0,
                                                     "lock_eval_nodes": True})}
    assert 0.0 <= locked["test_acc"] <= 1.0
    with pytest.raises(UnknownName):
        run({**base, "profile": "paper"})
    with pytest.raises(UnknownName):
        run({"dataset": "sbm:300:6", "model": "gat_pyg", "hidden": 8, "batch_norm": True})


def test_sgc_reference_profile_has_mlp_head():
    m = {r["metric"]: r["value"] for r in run({"dataset": "sbm:300:6", "model": "sgc", "profile": "reference",
                                                "hidden": 16, "epochs": 3, "delta_w": 1.0, "threads": 1})}
    # two pruned linears: 16·F_in + 16·C weight entries are counted
    assert m["weight_sparsity"] > 0 and 0.0 <= m["test_acc"] <= 1.0


def test_cli_reference_profile(capsys):
    import json

    from xflow.cli import main

    rc = main(["sparsify", "run", "--dataset", "sbm:200:6", "--profile", "reference", "--hidden", "16",
               "--epochs", "3", "--delta-w", "1", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["config"]["profile"] == "reference" and out["summary"][0]["weight_sparsity_mean"] > 0


def test_propagation_timing_without_self_loops_reaches_target():
    from xflow.sparsify.timing import propagation_timing

    recs = propagation_timing({"num_nodes": 500, "features": 8, "repeats": 1, "self_loops": False})
    assert recs[0]["self_loops"] is False
    assert abs(recs[0]["edge_sparsity"] - 0.9) < 0.05  # no self-loops: all entries prunable
