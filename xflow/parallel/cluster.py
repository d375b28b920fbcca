"""Clustering algorithms: fork–join regions, linear clustering, merging to workers, node cloning.

* :func:`find_regions` splits the DAG at *cut nodes* — nodes every other node is an ancestor or a
  descendant of (e.g. the ``Concat`` closing an Inception block). Between two cuts lies a region whose
  nodes may run in parallel; cut nodes run alone.
* :func:`linear_clustering` (Kim & Browne, as in Ramiel): repeatedly take the longest remaining
  path by node cost (the critical path of what is left) as one cluster, so that each cluster is a
  chain whose internal edges need no synchronisation.
* :func:`merge_clusters` reduces the clusters to ``workers`` by load balancing (longest-processing-
  time first, refined by greedy pairwise merging on the simulated makespan).
* :func:`clone_nodes` duplicates a cheap producer into a consumer's cluster when all of its own
  inputs are already available there, removing a cross-cluster synchronisation.
"""
from __future__ import annotations

from collections.abc import Sequence

from xflow.parallel.dataflow import DataflowGraph
from xflow.parallel.schedule import Cluster, simulate_stage

__all__ = ["find_regions", "cut_nodes", "linear_clustering", "merge_clusters", "clone_nodes"]


def cut_nodes(g: DataflowGraph) -> list[int]:
    """Ids of nodes that are comparable (ancestor/descendant) with every other node."""
    n = len(g.nodes)
    anc = [0] * n
    for v in range(n):
        a = 0
        for u in g.preds[v]:
            a |= anc[u] | (1 << u)
        anc[v] = a
    desc = [0] * n
    for v in reversed(range(n)):
        d = 0
        for s in g.succs[v]:
            d |= desc[s] | (1 << s)
        desc[v] = d
    full = (1 << n) - 1
    return [v for v in range(n) if (anc[v] | desc[v] | (1 << v)) == full]


def find_regions(g: DataflowGraph) -> list[tuple[str, list[int]]]:
    """Split the graph into ``("cut", [ids])`` runs of cut nodes and ``("region", [ids])`` between."""
    cuts = set(cut_nodes(g))
    out: list[tuple[str, list[int]]] = []
    for v in range(len(g.nodes)):
        kind = "cut" if v in cuts else "region"
        if out and out[-1][0] == kind:
            out[-1][1].append(v)
        else:
            out.append((kind, [v]))
    return out


def linear_clustering(g: DataflowGraph, node_ids: Sequence[int], *, threads: int = 1) -> list[list[int]]:
    """Partition ``node_ids`` into chains, longest (costliest) path first.

    Each step finds the maximum-cost path through the not-yet-clustered nodes (edges only between
    not-yet-clustered nodes of the set) and makes it a cluster. Returns clusters in the order found
    (the first is the critical path), each sorted topologically.
    """
    left = set(node_ids)
    clusters: list[list[int]] = []
    order = sorted(node_ids)
    while left:
        best: dict[int, float] = {}
        prev: dict[int, int | None] = {}
        for v in order:
            if v not in left:
                continue
            c = g.nodes[v].cost_at(threads)
            b, p = 0.0, None
            for u in g.preds[v]:
                if u in left and best.get(u, -1.0) > b:
                    b, p = best[u], u
            best[v] = b + c
            prev[v] = p
        end = max(best, key=lambda v: (best[v], -v))
        path = []
        cur: int | None = end
        while cur is not None:
            path.append(cur)
            cur = prev[cur]
        path.reverse()
        clusters.append(path)
        left.difference_update(path)
    return clusters


def _assign(clusters: list[list[int]], groups: list[list[int]]) -> list[Cluster]:
    out = []
    for grp in groups:
        nodes = sorted(v for ci in grp for v in clusters[ci])
        out.append(Cluster(nodes=nodes))
    return out


def merge_clusters(g: DataflowGraph, clusters: list[list[int]], workers: int, *, threads: int = 1,
                   sync_us: float = 20.0, fork_us: float = 30.0) -> list[Cluster]:
    """Merge chains into at most ``workers`` clusters, minimising the simulated makespan.

    Starts from LPT (heaviest chain to the least-loaded worker); when there are few chains also
    tries greedy pairwise merging (repeatedly merge the pair whose union gives the smallest
    simulated makespan) and keeps the better. Nodes of a merged cluster run in topological order,
    which keeps the assignment deadlock-free. The most loaded cluster is returned first (it runs on
    the calling thread).
    """
    if not clusters:
        return []
    cost = [sum(g.nodes[v].cost_at(threads) for v in c) for c in clusters]
    k = min(workers, len(clusters))
    loads = [0.0] * k
    groups: list[list[int]] = [[] for _ in range(k)]
    for ci in sorted(range(len(clusters)), key=lambda i: -cost[i]):
        w = min(range(k), key=lambda i: loads[i])
        groups[w].append(ci)
        loads[w] += cost[ci]
    groups = [gr for gr in groups if gr]

    def span(gs: list[list[int]]) -> float:
        return simulate_stage(g, _assign(clusters, gs), threads=threads, sync_us=sync_us,
                              fork_us=fork_us).makespan

    best_groups, best_span = groups, span(groups)
    if len(clusters) <= 16:
        gs = [[i] for i in range(len(clusters))]
        while len(gs) > workers:
            cand = None
            for a in range(len(gs)):
                for b in range(a + 1, len(gs)):
                    trial = [x for i, x in enumerate(gs) if i not in (a, b)] + [gs[a] + gs[b]]
                    s = span(trial) if len(trial) <= workers else \
                        sum(cost[i] for i in gs[a] + gs[b])  # proxy while still too many
                    if cand is None or s < cand[0]:
                        cand = (s, trial)
            gs = cand[1]
        s = span(gs)
        if s < best_span:
            best_groups, best_span = gs, s
    out = _assign(clusters, best_groups)
    out.sort(key=lambda c: -c.cost(g, threads))
    return out


def clone_nodes(g: DataflowGraph, clusters: list[Cluster], *, max_cost_us: float = 50.0,
                threads: int = 1, sync_us: float = 20.0, fork_us: float = 30.0) -> list[Cluster]:
    """Clone cheap producers into the clusters that read them when that removes a hand-over.

    For each cross-cluster edge ``u → v`` (``u`` computed by another cluster, ``v`` in cluster B),
    the candidate is ``u`` together with its ancestors inside the stage that B does not compute
    yet; it is cloned into B when its total cost is at most ``max_cost_us``. A clone is kept only if
    the simulated makespan does not grow. Repeats to a fixed point. Returns new clusters
    (``Cluster.clones`` lists the copies).
    """
    stage_nodes = {v for c in clusters for v in c.nodes}
    cur = [Cluster(nodes=list(c.nodes), clones=list(c.clones)) for c in clusters]

    def span(cs: list[Cluster]) -> float:
        return simulate_stage(g, cs, threads=threads, sync_us=sync_us, fork_us=fork_us).makespan

    def closure(u: int, have: set[int]) -> set[int]:
        need, stack = set(), [u]
        while stack:
            x = stack.pop()
            if x in need or x in have or x not in stage_nodes:
                continue
            need.add(x)
            stack.extend(g.preds[x])
        return need

    base = span(cur)
    rejected: set[tuple[int, int]] = set()
    changed = True
    while changed:
        changed = False
        for bi in range(len(cur)):
            have = set(cur[bi].nodes)
            for v in list(cur[bi].nodes):
                for u in g.preds[v]:
                    if u not in stage_nodes or u in have or (bi, u) in rejected:
                        continue
                    need = closure(u, have)
                    if sum(g.nodes[x].cost_at(threads) for x in need) > max_cost_us:
                        rejected.add((bi, u))
                        continue
                    trial = [Cluster(nodes=list(c.nodes), clones=list(c.clones)) for c in cur]
                    trial[bi].nodes = sorted(trial[bi].nodes + sorted(need))
                    trial[bi].clones += sorted(need)
                    try:
                        s = span(trial)
                    except ValueError:
                        rejected.add((bi, u))
                        continue
                    if s <= base + 1e-9:
                        cur, base, changed = trial, s, True
                        have |= need
                    else:
                        rejected.add((bi, u))
    return cur
