"""The method against brute-force references written straight from its definitions, on tiny graphs:
the GCN's per-layer edge masks (nested, self-loops locked), the weight rule's kept counts, and the
decoupled per-feature push (deterministic part) and its δ = 0 limits."""
import math

import pytest
import torch

from xflow.sparsify.decoupled import propagate_dense, propagate_push, push_graph
from xflow.sparsify.layers import prepare_graph
from xflow.sparsify.models import build_model
from xflow.sparsify.synthetic import sbm_graph


def _brute_edge_mask(h, graph, cand, delta):
    """Per edge: keep iff a candidate and (self-loop or |Â_vu|·‖h_u‖ ≥ δ · mean over candidates)."""
    ei, w = graph.edge_index.tolist(), graph.edge_weight.tolist()
    norms = [abs(w[e]) * math.sqrt(sum(v * v for v in h[ei[0][e]].tolist())) for e in range(len(w))]
    c = [bool(v) for v in cand.tolist()]
    mean = sum(n for n, k in zip(norms, c) if k) / max(1, sum(c))
    return torch.tensor([c[e] and (ei[0][e] == ei[1][e] or norms[e] >= delta * mean) for e in range(len(w))])


@pytest.mark.parametrize("loops", [True, False])
def test_gcn_edge_masks_equal_a_per_edge_brute_force_in_both_layers(loops):
    data = sbm_graph(60, 5, num_features=7, seed=3)
    g = prepare_graph(data.edge_index, 60, loops)
    torch.manual_seed(0)
    m = build_model("gcn", 7, 3, delta_a=0.9, delta_w=0.0, hidden=8)
    m.eval()
    with torch.no_grad():
        out = m(data.x, g)
        c0, c1 = m.convs
        h0 = c0.lin(data.x)  # layer-1 messages: transformed features (no bias) times Â_vu
        ref0 = _brute_edge_mask(h0, g, torch.ones(g.num_edges, dtype=torch.bool), 0.9)
        x1 = torch.relu(m.norms[0](c0.prop.aggregate(h0, g, g.edge_weight, ref0) + c0.bias))
        ref1 = _brute_edge_mask(c1.lin(x1), g, ref0, 0.9)  # candidates = what layer 1 kept
    assert out.std() > 0.01
    assert torch.equal(c0.prop.mask, ref0) and torch.equal(c1.prop.mask, ref1)
    assert 0 < int(ref1.sum()) < int(ref0.sum()) < g.num_edges  # something pruned, nested
    assert bool(ref1[g.self_loops].all()) and int(g.self_loops.sum()) == (60 if loops else 0)


def test_weight_rule_kept_count_equals_brute_force():
    from xflow.sparsify.pruning import weight_prune_mask

    g = torch.Generator().manual_seed(1)
    x = torch.randn(20, 6, generator=g) * torch.tensor([3.0, 1.0, 0.2, 0.0, 1.5, 0.7])
    w = torch.randn(6, 4, generator=g)
    fro, fin = float(x.norm()), 6
    for delta in (0.3, 1.0, 2.5):
        kept = 0
        for i in range(6):
            col = float(x[:, i].norm())
            for j in range(4):
                kept += col > 0 and abs(float(w[i, j])) * col >= delta * fro / fin
        mask = weight_prune_mask(w, x, delta)
        assert int(mask.sum()) == kept and not bool(mask[3].any())  # the all-zero column loses all


def _brute_push(x, pg, delta, hops, kind, alpha):
    """Deterministic per-feature push, one node at a time (the rule of xflow.sparsify.decoupled)."""
    n, f_all = x.shape
    rho = 0.5
    deg = pg.deg.tolist()
    ptr, nbr = pg.ptr.tolist(), pg.nbr.tolist()
    a = alpha if kind == "appnp" else 0.0
    out = torch.zeros(n, f_all, dtype=torch.float64)
    pushes = 0
    for f in range(f_all):
        col = x[:, f].tolist()
        dp = delta / (1 - a) * sum(v * deg[u] ** rho for u, v in enumerate(col) if v > 0) or 1e-12 * delta / (1 - a)
        dn = delta / (1 - a) * sum(v * deg[u] ** rho for u, v in enumerate(col) if v < 0) or -1e-12 * delta / (1 - a)
        r, est = list(col), [0.0] * n
        short = [ptr[u + 1] - ptr[u] for u in range(n)]
        for _ in range(hops):
            active = [r[u] > dp or r[u] < dn for u in range(n)]
            if not any(active):
                if kind == "appnp":
                    est = [e + v for e, v in zip(est, r)]
                    r = [0.0] * n
                break
            nxt = [0.0] * n
            for u in range(n):
                if active[u]:
                    thr = r[u] / dp if r[u] > 0 else r[u] / dn
                    row = nbr[ptr[u]:ptr[u + 1]]
                    det = min(short[u], sum(1 for v in row if deg[v] ** (1 - rho) < thr))
                    for v in row[:det]:
                        nxt[v] += r[u] / deg[v] if kind == "sgc" else (1 - a) * r[u] * deg[u] ** -rho * deg[v] ** -(1 - rho)
                    pushes += det
                    short[u] = det
                    if kind == "appnp":
                        est[u] += a * r[u]
                elif kind == "appnp":
                    est[u] += r[u]
                if kind == "sgc":
                    nxt[u] += r[u]
            r = nxt
        out[:, f] = torch.tensor([e + v for e, v in zip(est, r)], dtype=torch.float64)
    return out, pushes


@pytest.mark.parametrize("kind", ["sgc", "appnp"])
@pytest.mark.parametrize("backend", ["torch", "kernel"])
def test_push_propagation_equals_per_node_brute_force(kind, backend):
    from xflow.sparsify import kernels

    if backend == "kernel" and not kernels.available():
        pytest.skip("no C compiler")
    data = sbm_graph(40, 4, num_features=3, seed=2)
    pg = push_graph(prepare_graph(data.edge_index, 40, True))
    x = data.x.float()
    delta = 0.02 if kind == "sgc" else 0.005
    ref, n_ref = _brute_push(x.double(), pg, delta, 4, kind, 0.1)
    got, n_got = propagate_push(x, pg, delta, 4, kind, 0.1, randomized=False, backend=backend)
    dense = 4 * pg.num_entries * 3
    assert 0 < n_ref < dense  # the threshold really removes pushes
    assert n_got == n_ref
    assert torch.allclose(got.double(), ref, atol=1e-4) and ref.std() > 0.01


def test_push_at_delta_zero_is_the_documented_operator():
    data = sbm_graph(30, 4, num_features=2, seed=5)
    pg = push_graph(prepare_graph(data.edge_index, 30, True))
    x = data.x.float()
    n = 30
    a = torch.zeros(n, n, dtype=torch.float64)  # a[v, u] = 1 for the entries of row u
    a[pg.nbr, pg.src] = 1.0
    d = pg.deg.double()
    sgc, _ = propagate_push(x, pg, 0.0, 3, "sgc", randomized=False)
    lazy = torch.eye(n, dtype=torch.float64) + a / d[:, None]  # (I + D^{-1} Ã): every residue kept
    assert torch.allclose(sgc.double(), torch.linalg.matrix_power(lazy, 3) @ x.double(), atol=1e-4)
    appnp, _ = propagate_push(x, pg, 0.0, 5, "appnp", 0.1, randomized=False)
    ref, _ = propagate_dense(x, pg, 5, "appnp", 0.1)
    assert torch.allclose(appnp, ref, atol=1e-4) and ref.std() > 0.01
    # the reference's dense SGC (feat_ori) is the plain random walk (D^{-1} Ã)^L, not the lazy one
    walk, macs = propagate_dense(x, pg, 3, "sgc")
    assert torch.allclose(walk.double(), torch.linalg.matrix_power(a / d[:, None], 3) @ x.double(), atol=1e-4)
    assert macs == 3 * pg.num_entries * 2


def test_more_threshold_fewer_pushes():
    data = sbm_graph(80, 6, num_features=4, seed=7)
    pg = push_graph(prepare_graph(data.edge_index, 80, True))
    counts = [propagate_push(data.x.float(), pg, d, 6, "appnp", 0.1, randomized=False)[1]
              for d in (0.0, 1e-3, 1e-2, 1e-1)]
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1]
