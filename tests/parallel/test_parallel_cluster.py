"""Regions, linear clustering, merging, cloning, makespan and the safety valve on hand-made DAGs."""
import pytest

from xflow.parallel.cluster import clone_nodes, cut_nodes, find_regions, linear_clustering, merge_clusters
from xflow.parallel.planner import PlanConfig, make_plan
from xflow.parallel.schedule import Cluster, simulate_stage

from .helpers import dag


def inception_like():
    # s -> {a1->a2->a3 (cost 30), b1->b2 (cost 20), c1 (cost 8)} -> cat -> out
    costs = {"s": 5, "a1": 10, "a2": 10, "a3": 10, "b1": 10, "b2": 10, "c1": 8, "cat": 2, "out": 1}
    edges = [("s", "a1"), ("a1", "a2"), ("a2", "a3"), ("s", "b1"), ("b1", "b2"), ("s", "c1"),
             ("a3", "cat"), ("b2", "cat"), ("c1", "cat"), ("cat", "out")]
    return dag(edges, costs)


def names(g, ids):
    return [g.nodes[i].name for i in ids]


def test_cut_nodes_and_regions():
    g = inception_like()
    assert names(g, cut_nodes(g)) == ["s", "cat", "out"]
    regions = find_regions(g)
    assert [k for k, _ in regions] == ["cut", "region", "cut"]
    assert sorted(names(g, regions[1][1])) == ["a1", "a2", "a3", "b1", "b2", "c1"]


def test_linear_clustering_follows_critical_path():
    g = inception_like()
    chains = linear_clustering(g, range(len(g.nodes)))
    assert names(g, chains[0]) == ["s", "a1", "a2", "a3", "cat", "out"]  # the critical path
    assert [names(g, c) for c in chains[1:]] == [["b1", "b2"], ["c1"]]
    # every node in exactly one chain
    assert sorted(v for c in chains for v in c) == list(range(len(g.nodes)))


def test_merge_balances_load_to_workers():
    g = inception_like()
    region = find_regions(g)[1][1]
    chains = linear_clustering(g, region)
    assert len(chains) == 3
    merged = merge_clusters(g, chains, 2, sync_us=0, fork_us=0)
    assert len(merged) == 2
    loads = sorted(c.cost(g) for c in merged)
    assert loads == [28.0, 30.0]  # {a} vs {b, c}
    span = simulate_stage(g, merged, sync_us=0, fork_us=0).makespan
    assert span == pytest.approx(30.0)
    one = merge_clusters(g, chains, 1, sync_us=0, fork_us=0)
    assert len(one) == 1 and one[0].cost(g) == 58.0


def test_simulation_adds_sync_and_fork_costs():
    g = inception_like()
    ids = {n.name: n.id for n in g.nodes}
    # worker 1 needs a2's output: b-chain waits for it (+ sync)
    cl = [Cluster(nodes=[ids["a1"], ids["a2"], ids["a3"]]), Cluster(nodes=[ids["b1"], ids["b2"]])]
    tl = simulate_stage(g, cl, sync_us=5, fork_us=3)
    assert tl.makespan == pytest.approx(30 + 3)
    with pytest.raises(ValueError):
        g2 = dag([("a", "b"), ("c", "d"), ("a", "d"), ("c", "b")], {"a": 1, "c": 1, "b": 1, "d": 1})
        # a then d on worker 0 waits for c; c then b on worker 1 waits for a: fine. Make a cycle:
        simulate_stage(g2, [Cluster(nodes=[3, 0]), Cluster(nodes=[1, 2])])


def test_cloning_removes_cross_cluster_edge():
    # x -> p (cheap) -> {h1 (heavy) , h2 (heavy)}; p in cluster 0, h2 in cluster 1
    g = dag([("p", "h1"), ("p", "h2")], {"p": 1, "h1": 100, "h2": 100})
    cl = [Cluster(nodes=[0, 1]), Cluster(nodes=[2])]
    before = simulate_stage(g, cl, sync_us=20, fork_us=0).makespan
    out = clone_nodes(g, cl, max_cost_us=5, sync_us=20, fork_us=0)
    assert out[1].nodes == [0, 2] and out[1].clones == [0]
    assert simulate_stage(g, out, sync_us=20, fork_us=0).makespan < before
    # too expensive to clone
    out2 = clone_nodes(g, cl, max_cost_us=0.5, sync_us=20, fork_us=0)
    assert out2[1].clones == []


@pytest.mark.parametrize("clustering,kinds", [("regions", ["serial", "parallel", "serial"]),
                                               ("ramiel", ["parallel"])])
def test_plan_invariants_and_speedup(clustering, kinds):
    """Per-region fork–join stages, or Ramiel's one whole-graph stage: same makespan here."""
    g = inception_like()
    plan = make_plan(g, PlanConfig(workers=2, mode="branch", sync_us=0, fork_us=0, min_gain=0.0,
                                   clustering=clustering))
    owned = sorted(v for s in plan.stages for c in s.clusters for v in c.nodes if v not in c.clones)
    assert owned == list(range(len(g.nodes)))
    for s in plan.stages:
        for c in s.clusters:
            assert c.nodes == sorted(c.nodes)  # topological order within a cluster
    assert [s.kind for s in plan.stages] == kinds
    assert plan.predicted_us == pytest.approx(5 + 30 + 3)
    assert plan.predicted_speedup == pytest.approx(66 / 38)


def test_safety_valve_emits_serial_schedule():
    chain = dag([("a", "b"), ("b", "c")], {"a": 1, "b": 1, "c": 1})
    plan = make_plan(chain, PlanConfig(workers=2, mode="branch"))
    assert plan.fallback and len(plan.stages) == 1 and plan.stages[0].kind == "serial"
    g = inception_like()  # parallel gain exists but is below a huge threshold
    plan = make_plan(g, PlanConfig(workers=2, mode="branch", min_gain=5.0))
    assert plan.fallback and [s.kind for s in plan.stages] == ["serial"]


def test_hybrid_prefers_intra_op_threads_when_they_win():
    g = inception_like()
    for n in g.nodes:  # 2 threads make every op 3x faster: no region should fork
        n.cost[2] = n.cost[1] / 3
    plan = make_plan(g, PlanConfig(workers=2, mode="hybrid", min_gain=0.0))
    assert all(s.kind == "serial" for s in plan.stages)
    assert all(s.threads == 2 for s in plan.stages)
    for n in g.nodes:  # 2 threads do not help at all: branches win
        n.cost[2] = n.cost[1]
    plan = make_plan(g, PlanConfig(workers=2, mode="hybrid", sync_us=0, fork_us=0, min_gain=0.0))
    assert any(s.kind == "parallel" for s in plan.stages)


def test_hybrid_margin_keeps_single_thread_on_small_gains():
    g = inception_like()
    for n in g.nodes:  # 2 threads only 5 % faster: below the 10 % margin
        n.cost[2] = n.cost[1] / 1.05
    plan = make_plan(g, PlanConfig(workers=2, mode="hybrid", min_gain=0.0, fork_us=1e6))
    assert all(s.threads == 1 for s in plan.stages)


def test_linear_clustering_weighs_communication():
    """Two equal-work paths; one hands over a big tensor. With edge weights the critical path
    takes the heavy edge inside its chain; with node costs only it takes the other (node-heavier) path."""
    g = dag([("s", "a"), ("a", "t"), ("s", "b"), ("b", "t")], {"s": 1, "a": 10, "b": 10.5, "t": 1})
    g.nodes[1].out_bytes = 1e6  # a -> t carries 1 MB
    by_cost = linear_clustering(g, range(4))
    assert names(g, by_cost[0]) == ["s", "b", "t"]
    by_comm = linear_clustering(g, range(4), sync_us=5.0, comm_bytes_per_us=1e4)  # a->t costs 105 us
    assert names(g, by_comm[0]) == ["s", "a", "t"]


def test_iterative_merging_stops_at_workers_or_keeps_merging_while_it_helps():
    from xflow.parallel.cluster import merge_iterative

    g = inception_like()
    chains = linear_clustering(g, range(len(g.nodes)))
    two = merge_iterative(g, chains, 2, sync_us=0, fork_us=0)
    assert len(two) == 2 and sorted(c.cost(g) for c in two) == [28.0, 38.0]  # {b, c} vs the critical path
    assert simulate_stage(g, two, sync_us=0, fork_us=0).makespan == pytest.approx(38.0)
    assert sorted(v for c in two for v in c.nodes) == list(range(len(g.nodes)))
    # hand-overs dearer than any overlap: merging goes on below the worker count, to one cluster
    one = merge_iterative(g, chains, 2, sync_us=1000.0, fork_us=0)
    assert len(one) == 1


def test_cloning_fires_only_where_it_shortens_the_makespan():
    # x -> p -> {h1, h2}: copying cheap p next to h2 removes the hand-over
    g = dag([("p", "h1"), ("p", "h2")], {"p": 1, "h1": 100, "h2": 100})
    cl = [Cluster(nodes=[0, 1]), Cluster(nodes=[2])]
    out = clone_nodes(g, cl, sync_us=20, fork_us=0)  # no cost cap: the makespan decides
    assert out[1].clones == [0] and out[0].nodes == [0, 1]  # p still feeds h1: original stays
    # worker 1 is busy with q first: a copy of the heavy p would run after q and delay h2 more
    # than waiting for the hand-over does
    g2 = dag([("p", "h1"), ("p", "h2")], {"p": 50, "q": 100, "h1": 100, "h2": 100})
    busy = [Cluster(nodes=[0, 2]), Cluster(nodes=[1, 3])]
    assert simulate_stage(g2, busy, sync_us=20, fork_us=0).makespan == pytest.approx(200.0)
    assert clone_nodes(g2, busy, sync_us=20, fork_us=0)[1].clones == []


def test_cloning_drops_an_original_nobody_reads_any_more():
    # p feeds only h2 on the other worker: the copy makes the original dead, so it moves
    g = dag([("a", "h1"), ("p", "h2")], {"a": 5, "h1": 100, "p": 1, "h2": 100})
    cl = [Cluster(nodes=[0, 1, 2]), Cluster(nodes=[3])]
    out = clone_nodes(g, cl, sync_us=20, fork_us=0)
    assert 2 not in out[0].nodes and 2 in out[1].nodes and out[1].clones == []
