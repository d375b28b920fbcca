"""Clustering algorithms: linear clustering, cluster merging, node cloning, fork–join regions.

* :func:`linear_clustering` (Kim & Browne 1988, the clustering Ramiel builds on): repeatedly take
  the longest remaining path — node costs **plus communication (edge) weights**
  (:func:`~xflow.parallel.schedule.comm_cost`: a hand-over's synchronisation plus bytes over
  bandwidth) — through the not-yet-clustered nodes as one cluster; the edges inside a chain cost
  nothing. Run over the whole graph (Ramiel) or per region.
* :func:`merge_iterative` (Ramiel's merging, as we read it): start from the linear clusters and
  repeatedly merge the pair of clusters whose union gives the smallest simulated makespan (with
  communication weights), among the smallest cluster with every other and the pairs joined by the
  heaviest cut edges; merging continues past ``workers`` clusters while a merge still shortens
  the makespan (it removes a hand-over).
* :func:`merge_clusters` — the earlier load balancer (LPT, then greedy pairwise), kept for ablation.
* :func:`clone_nodes` duplicates a producer (with the ancestors its consumer's cluster lacks) into
  the consumer's cluster when that *shortens* the simulated makespan, removing a hand-over.
* :func:`find_regions` splits the DAG at *cut nodes* — nodes every other node is an ancestor or a
  descendant of (e.g. the ``Concat`` closing an Inception block); the hybrid planner decides per
  region between branch parallelism and intra-op threads.
"""
from __future__ import annotations

from collections.abc import Sequence

from xflow.parallel.dataflow import DataflowGraph
from xflow.parallel.schedule import Cluster, comm_cost, simulate_stage

__all__ = ["find_regions", "cut_nodes", "linear_clustering", "merge_iterative", "merge_clusters",
           "clone_nodes"]


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


def linear_clustering(g: DataflowGraph, node_ids: Sequence[int], *, threads: int = 1,
                      sync_us: float = 0.0, comm_bytes_per_us: float | None = None) -> list[list[int]]:
    """Partition ``node_ids`` into chains, longest path first (Kim & Browne linear clustering).

    Each step finds the maximum-weight path through the not-yet-clustered nodes — the sum of node
    costs at ``threads`` plus, for every edge on it, its communication weight (``sync_us`` +
    producer bytes / ``comm_bytes_per_us``; 0 by default) — and makes it a cluster: its internal
    edges are zeroed, its nodes leave the graph. Returns clusters in the order found (the first is
    the critical path), each sorted topologically.
    """
    left = set(node_ids)
    clusters: list[list[int]] = []
    order = sorted(node_ids)
    edge = {u: comm_cost(g, u, sync_us=sync_us, comm_bytes_per_us=comm_bytes_per_us) for u in order}
    while left:
        best: dict[int, float] = {}
        prev: dict[int, int | None] = {}
        for v in order:
            if v not in left:
                continue
            c = g.nodes[v].cost_at(threads)
            b, p = 0.0, None
            for u in g.preds[v]:
                if u in left and best.get(u, -1.0) + edge[u] > b:
                    b, p = best[u] + edge[u], u
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


def merge_iterative(g: DataflowGraph, clusters: list[list[int]], workers: int, *, threads: int = 1,
                    sync_us: float = 20.0, fork_us: float = 30.0, comm_bytes_per_us: float | None = None,
                    candidates: int = 8) -> list[Cluster]:
    """Merge linear clusters iteratively until at most ``workers`` remain and no merge helps.

    Each step evaluates merging the currently smallest cluster (by work) with every other cluster,
    and the ``candidates`` cluster pairs joined by the heaviest communication, by simulating the
    whole assignment (:func:`~xflow.parallel.schedule.simulate_stage` with communication weights);
    the merge with the smallest makespan is applied. While more than ``workers`` clusters remain a
    merge is forced; after that one is applied only if it shortens the makespan. A merged cluster
    runs its nodes in topological order (deadlock-free). The most loaded cluster is returned first
    (it runs on the calling thread).
    """
    if not clusters:
        return []
    groups: list[list[int]] = [sorted(c) for c in clusters]
    where = {v: i for i, c in enumerate(groups) for v in c}

    def span(gs: list[list[int]]) -> float:
        cs = [Cluster(nodes=sorted(x)) for x in gs]
        return simulate_stage(g, cs, threads=threads, sync_us=sync_us, fork_us=fork_us,
                              comm_bytes_per_us=comm_bytes_per_us).makespan

    def work(c: list[int]) -> float:
        return sum(g.nodes[v].cost_at(threads) for v in c)

    cur = span(groups)
    while len(groups) > 1:
        where = {v: i for i, c in enumerate(groups) for v in c}
        comm: dict[tuple[int, int], float] = {}
        for v in where:
            for u in g.preds[v]:
                if u in where and where[u] != where[v]:
                    a, b = sorted((where[u], where[v]))
                    comm[(a, b)] = comm.get((a, b), 0.0) + comm_cost(
                        g, u, sync_us=sync_us, comm_bytes_per_us=comm_bytes_per_us)
        small = min(range(len(groups)), key=lambda i: (work(groups[i]), i))
        pairs = {tuple(sorted((small, j))) for j in range(len(groups)) if j != small}
        pairs |= {p for p, _ in sorted(comm.items(), key=lambda kv: -kv[1])[:candidates]}
        best: tuple[float, float, tuple[int, int]] | None = None
        for a, b in sorted(pairs):
            trial = [x for i, x in enumerate(groups) if i not in (a, b)] + [groups[a] + groups[b]]
            try:
                t = span(trial)
            except ValueError:
                continue
            key = (t, -comm.get((a, b), 0.0), (a, b))
            if best is None or key < best:
                best = key
        if best is None:
            break
        t, _c, (a, b) = best
        if len(groups) <= workers and t >= cur - 1e-9:
            break
        groups = [x for i, x in enumerate(groups) if i not in (a, b)] + [sorted(groups[a] + groups[b])]
        cur = t
    out = [Cluster(nodes=sorted(x)) for x in groups]
    out.sort(key=lambda c: -c.cost(g, threads))
    return out


def _assign(clusters: list[list[int]], groups: list[list[int]]) -> list[Cluster]:
    out = []
    for grp in groups:
        nodes = sorted(v for ci in grp for v in clusters[ci])
        out.append(Cluster(nodes=nodes))
    return out


def merge_clusters(g: DataflowGraph, clusters: list[list[int]], workers: int, *, threads: int = 1,
                   sync_us: float = 20.0, fork_us: float = 30.0,
                   comm_bytes_per_us: float | None = None) -> list[Cluster]:
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
                              fork_us=fork_us, comm_bytes_per_us=comm_bytes_per_us).makespan

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


def clone_nodes(g: DataflowGraph, clusters: list[Cluster], *, max_cost_us: float | None = None,
                threads: int = 1, sync_us: float = 20.0, fork_us: float = 30.0,
                comm_bytes_per_us: float | None = None, min_gain_us: float = 1.0) -> list[Cluster]:
    """Clone producers into the clusters that read them when that shortens the simulated makespan.

    For each cross-cluster edge ``u → v`` (``u`` computed by another cluster, ``v`` in cluster B),
    the candidate is ``u`` together with its ancestors inside the stage that B does not compute
    yet (their cost at most ``max_cost_us`` when given). The clone is kept when the simulated
    makespan (with communication weights) drops by at least ``min_gain_us``: the duplicate work
    runs on a worker that would otherwise wait for the hand-over. Repeats to a fixed point.
    Returns new clusters (``Cluster.clones`` lists the copies). An original whose every consumer
    now reads a copy in its own cluster is dead: it is dropped and the copy becomes the owner
    (cloning followed by dead-code elimination, as Ramiel prunes after cloning).
    """
    stage_nodes = {v for c in clusters for v in c.nodes}
    cur = [Cluster(nodes=list(c.nodes), clones=list(c.clones)) for c in clusters]

    def span(cs: list[Cluster]) -> float:
        return simulate_stage(g, cs, threads=threads, sync_us=sync_us, fork_us=fork_us,
                              comm_bytes_per_us=comm_bytes_per_us).makespan

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
                    if max_cost_us is not None and sum(g.nodes[x].cost_at(threads) for x in need) > max_cost_us:
                        rejected.add((bi, u))
                        continue
                    trial = [Cluster(nodes=list(c.nodes), clones=list(c.clones)) for c in cur]
                    trial[bi].nodes = sorted(trial[bi].nodes + sorted(need))
                    trial[bi].clones += sorted(need)
                    _drop_dead_originals(g, trial, bi, need)
                    try:
                        s = span(trial)
                    except ValueError:
                        rejected.add((bi, u))
                        continue
                    if s <= base - min_gain_us:
                        cur, base, changed = trial, s, True
                        have |= need
                    else:
                        rejected.add((bi, u))
    return cur


def _drop_dead_originals(g: DataflowGraph, clusters: list[Cluster], bi: int, copied: set[int]) -> None:
    """In place: for each node copied into cluster ``bi``, drop the original (and make the copy the
    owner) when no node outside ``bi`` reads it any more and ``bi`` did not copy it from a live
    original elsewhere. Stage outputs are produced by whichever cluster owns the node."""
    owner_of = {}
    for ci, c in enumerate(clusters):
        for v in c.nodes:
            if v not in c.clones:
                owner_of[v] = ci
    members = [set(c.nodes) for c in clusters]
    for x in sorted(copied):
        a = owner_of.get(x)
        if a is None or a == bi:
            continue
        readers = [s for s in g.succs[x] if any(s in m for m in members)]
        # a reader in a cluster other than bi that has no copy of x still needs the original
        if all(ci == bi or x in clusters[ci].clones
               for s in readers for ci in range(len(clusters)) if s in members[ci]):
            clusters[a].nodes = [v for v in clusters[a].nodes if v != x]
            clusters[bi].clones = [v for v in clusters[bi].clones if v != x]
            members[a].discard(x)
            owner_of[x] = bi
