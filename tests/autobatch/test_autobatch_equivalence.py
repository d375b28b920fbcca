"""Batched = unbatched: random graphs over every op, every strategy, values and gradients."""
from __future__ import annotations

import dataclasses
import random

import pytest
import torch

from xflow import autobatch as ab

STRATEGIES = ["none", "depth", "agenda"]


def _ref_node(op, vals, params, attrs, data):
    """Independent per-example reference for one node (plain torch on unbatched tensors)."""
    if op in ("affine", "affine_tanh"):
        nb = attrs[0]
        y = sum(W @ x for W, x in zip(params[nb:], vals))
        for b in params[:nb]:
            y = y + b
        return torch.tanh(y) if op == "affine_tanh" else y
    if op == "add":
        return vals[0] + vals[1]
    if op == "sub":
        return vals[0] - vals[1]
    if op == "mul":
        return vals[0] * vals[1]
    if op == "scale":
        return vals[0] * attrs[0]
    if op == "neg":
        return -vals[0]
    if op == "tanh":
        return torch.tanh(vals[0])
    if op == "sigmoid":
        return torch.sigmoid(vals[0])
    if op == "relu":
        return torch.relu(vals[0])
    if op == "concat":
        return torch.cat(vals)
    if op == "slice":
        return vals[0][attrs[0]:attrs[1]]
    if op == "pick":
        return vals[0][data]
    if op == "lookup":
        return params[0][data]
    if op == "esum":
        y = vals[0]
        for v in vals[1:]:
            y = y + v
        return y
    if op == "sum_elems":
        return vals[0].sum()
    if op == "softmax":
        return torch.softmax(vals[0], 0)
    if op == "log_softmax":
        return torch.log_softmax(vals[0], 0)
    if op == "cross_entropy":
        return -torch.log_softmax(vals[0], 0)[data]
    if op == "lstm_gates":
        pre, c = vals
        H = c.shape[0]
        i, f, g, o = pre[:H], pre[H:2 * H], pre[2 * H:3 * H], pre[3 * H:]
        c2 = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.cat([torch.sigmoid(o) * torch.tanh(c2), c2])
    if op == "treelstm_gates":
        pre, cl, cr = vals
        H = cl.shape[0]
        i, fl, fr, o, u = (pre[k * H:(k + 1) * H] for k in range(5))
        c = torch.sigmoid(i) * torch.tanh(u) + torch.sigmoid(fl) * cl + torch.sigmoid(fr) * cr
        return torch.cat([torch.sigmoid(o) * torch.tanh(c), c])
    if op == "treelstm_leaf":
        (pre,) = vals
        H = pre.shape[0] // 3
        i, o, u = pre[:H], pre[H:2 * H], pre[2 * H:]
        c = torch.sigmoid(i) * torch.tanh(u)
        return torch.cat([torch.sigmoid(o) * torch.tanh(c), c])
    raise AssertionError(f"no reference for {op}")


def reference_values(g: ab.Graph) -> list[torch.Tensor]:
    """Evaluate every node of ``g`` one at a time, from the recorded arrays."""
    vals: list[torch.Tensor] = []
    for n in range(len(g)):
        op = g.op[n]
        if op in ("input", "param"):
            vals.append(g.leaf_value(n))
        else:
            ops = [vals[a] for a in g.args[n]]
            if g.views[n] is not None:
                ops = [v if sl is None else v[sl[0]:sl[1]] for v, sl in zip(ops, g.views[n])]
            vals.append(_ref_node(op, ops, g.params[n], g.attrs[n], g.data[n]))
    return vals


def make_params(seed: int, d: int = 4, H: int = 3):
    gen = torch.Generator().manual_seed(seed)

    def p(*shape):
        return (torch.randn(*shape, generator=gen) * 0.5).requires_grad_(True)

    return {
        "W": p(d, d), "W2": p(d, d), "b": p(d), "b2": p(d),
        "E": p(11, d), "h0": p(d),
        "lstm": ab.LSTMWeights(p(4 * H, d), p(4 * H, H), p(4 * H), p(4 * H)),
        "tree": ab.TreeLSTMWeights(p(3 * H, d), p(3 * H), p(5 * H, H), p(5 * H, H), p(5 * H)),
        "Wo": p(5, d), "WoH": p(5, H), "bo": p(5),
    }


def build_random(seed: int, P: dict, n_examples: int = 4, steps: int = 12, d: int = 4, H: int = 3):
    """Per-example random programs using every op; returns (per-example scalar losses, inputs)."""
    rng = random.Random(seed)
    g = ab.current_graph()
    inputs = []
    losses = []
    for ex in range(n_examples):
        x = torch.randn(d, generator=torch.Generator().manual_seed(seed * 100 + ex), requires_grad=True)
        inputs.append(x)
        pool = [ab.inp(x), ab.lookup(P["E"], rng.randrange(11)), ab.param(P["h0"])]
        terms = []
        for _ in range(rng.randint(steps // 2, steps)):
            a, b = rng.choice(pool), rng.choice(pool)
            k = rng.randrange(14)
            if k == 0:
                y = ab.affine(P["b"], P["W"], a)
            elif k == 1:
                fn = ab.affine_tanh if ex % 2 else ab.affine  # the fused op in every other example
                y = fn((P["b"], P["b2"]), P["W"], a, P["W2"], b)
            elif k == 2:
                y = a + b
            elif k == 3:
                y = a * b - ab.linear(P["W2"], b)
            elif k == 4:
                y = ab.tanh(a) if rng.random() < 0.5 else ab.sigmoid(-a)
            elif k == 5:
                y = ab.relu(a) * 0.5 + b
            elif k == 6:
                cat = ab.concat([a, b])
                y = cat[d // 2:d // 2 + d] if rng.random() < 0.5 else ab.slice_(cat, 1, 1 + d)
            elif k == 7:
                y = ab.esum([a, b, ab.lookup(P["E"], rng.randrange(11))])
            elif k == 8:
                terms.append(a[rng.randrange(d)])
                continue
            elif k == 9:
                terms.append(ab.sum_elems(ab.softmax(a) * ab.log_softmax(b)))
                continue
            elif k == 10:
                terms.append(ab.cross_entropy(ab.affine(P["bo"], P["Wo"], a), rng.randrange(5)))
                continue
            elif k == 11:
                hs = ab.lstm_sequence(P["lstm"], [a, b, a], reverse=rng.random() < 0.5)
                terms.append(ab.cross_entropy(ab.linear(P["WoH"], hs[rng.randrange(3)]), rng.randrange(5)))
                continue
            elif k == 12:
                l1, l2 = ab.treelstm_leaf(P["tree"], a), ab.treelstm_leaf(P["tree"], b)
                h, c = ab.treelstm_node(P["tree"], l1, ab.treelstm_node(P["tree"], l2, l1))
                terms.append(ab.sum_elems(h + c))
                continue
            else:
                y = ab.scale(ab.neg(a), 0.3)
            pool.append(y)
        terms.append(ab.sum_elems(pool[-1]))
        losses.append(ab.esum(terms))
    return losses, inputs


def _grads(tensors):
    out = []
    for t in tensors:
        out.append(None if t.grad is None else t.grad.clone())
        t.grad = None
    return out


def _leaves(P):
    out = []
    for v in P.values():
        out.extend([getattr(v, f.name) for f in dataclasses.fields(v)] if dataclasses.is_dataclass(v) else [v])
    return out


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_random_graph_values_and_gradients(strategy, seed):
    P = make_params(seed)
    leaves = _leaves(P)
    # reference: node-by-node evaluation of the same recorded graph, plain torch
    with ab.Graph(strategy=strategy) as g:
        losses, inputs = build_random(seed, P)
        total = ab.esum(losses)
        ref = reference_values(g)
    ref_total = ref[total.node]
    ref_losses = torch.stack([ref[l.node] for l in losses])
    ref_total.backward()
    ref_grads = _grads(leaves + inputs)

    got_losses = g.forward_batch(losses)
    got_total = total.value()
    assert torch.allclose(got_losses, ref_losses, atol=1e-5, rtol=1e-5)
    assert torch.allclose(got_total, ref_total, atol=1e-5, rtol=1e-5)
    got_total.backward()
    got_grads = _grads(leaves + inputs)
    for t, r, gg in zip(leaves + inputs, ref_grads, got_grads):
        # an unused tensor may get no gradient on one side and an exact zero on the other
        r = torch.zeros_like(t) if r is None else r
        gg = torch.zeros_like(t) if gg is None else gg
        assert torch.allclose(r, gg, atol=1e-5, rtol=1e-4)
    planned = [grp for plan in g.plans for grp in plan]
    ab.validate_plan(g, [n for grp in planned for n in grp], planned)
    if strategy != "none":
        assert len(g.last_plan) < g.stats["n_executed"]  # it actually batched


@pytest.mark.parametrize("seed", [5, 6])
def test_strategies_agree_with_each_other(seed):
    P = make_params(seed)
    out = {}
    for s in STRATEGIES:
        with ab.Graph(strategy=s) as g:
            losses, _ = build_random(seed, P, n_examples=6)
            out[s] = g.forward_batch(losses).detach()
    assert torch.allclose(out["none"], out["depth"], atol=1e-5)
    assert torch.allclose(out["none"], out["agenda"], atol=1e-5)


def test_incremental_forward_plans_only_new_nodes():
    P = make_params(0)
    with ab.Graph() as g:
        x = ab.inp(torch.ones(4))
        y = ab.affine(P["b"], P["W"], x)
        v1 = y.value()
        z = ab.tanh(y)
        assert g.stats["n_executed"] == 1
        v2 = z.value()
        assert g.stats["n_executed"] == 2
    assert torch.allclose(v2, torch.tanh(v1))


def _per_op_builders(P, H=3):
    d = 4
    return {
        "affine": lambda x, y: ab.affine((P["b"], P["b2"]), P["W"], x, P["W2"], y),
        "affine_tanh": lambda x, y: ab.affine_tanh((P["b"], P["b2"]), P["W"], x, P["W2"], y),
        "add": lambda x, y: x + y,
        "sub": lambda x, y: x - y,
        "mul": lambda x, y: x * y,
        "scale": lambda x, y: x * 0.7,
        "neg": lambda x, y: -x,
        "tanh": lambda x, y: ab.tanh(x),
        "sigmoid": lambda x, y: ab.sigmoid(x),
        "relu": lambda x, y: ab.relu(x),
        "concat": lambda x, y: ab.concat([x, y]),
        "slice": lambda x, y: ab.slice_(x, 1, 3),
        "pick": lambda x, y: ab.pick(x, 2),
        "lookup": lambda x, y: ab.lookup(P["E"], 3) * x,
        "esum": lambda x, y: ab.esum([x, y, x]),
        "sum_elems": lambda x, y: ab.sum_elems(x),
        "softmax": lambda x, y: ab.softmax(x),
        "log_softmax": lambda x, y: ab.log_softmax(x),
        "cross_entropy": lambda x, y: ab.cross_entropy(x, 1),
        "lstm_gates": lambda x, y: ab.lstm_step(P["lstm"], x, x[0:H], y[0:H])[0],
        "treelstm_gates": lambda x, y: ab.treelstm_node(P["tree"], (x[0:H], y[0:H]), (y[1:H + 1], x[1:H + 1]))[1],
        "treelstm_leaf": lambda x, y: ab.treelstm_leaf(P["tree"], x)[0],
    }


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_op_batched_equals_unbatched(strategy):
    _check_every_op(strategy)


def test_every_op_kernel_through_autograd_equals_unbatched(monkeypatch):
    """The ops' ``kernel`` functions (the autograd fallback; the default path runs ``write`` and the
    hand-written backward) are checked too: ``force_autograd`` routes every group through them."""
    from xflow.autobatch import executor

    monkeypatch.setattr(executor, "force_autograd", True)
    _check_every_op("agenda")


def _check_every_op(strategy):
    from xflow.autobatch.ops import OPS

    P = make_params(7)
    builders = _per_op_builders(P)
    assert set(builders) == set(OPS) - {"input", "param"}  # a new op needs a case here
    leaves = _leaves(P)
    for op, build in builders.items():
        xs = [torch.randn(4, generator=torch.Generator().manual_seed(k), requires_grad=True) for k in range(6)]
        with ab.Graph(strategy=strategy) as g:
            outs = [build(ab.inp(xs[2 * i]), ab.inp(xs[2 * i + 1])) for i in range(3)]
            total = ab.esum([ab.sum_elems(o) if o.shape else o for o in outs])
            ref = reference_values(g)
        ref_v = ref[total.node]
        ref_v.backward()
        ref_grads = _grads(leaves + xs)
        got = total.value()
        assert torch.allclose(got, ref_v, atol=1e-5), op
        got.backward()
        for t, r, gg in zip(leaves + xs, ref_grads, _grads(leaves + xs)):
            r = torch.zeros_like(t) if r is None else r
            gg = torch.zeros_like(t) if gg is None else gg
            assert torch.allclose(r, gg, atol=1e-5, rtol=1e-4), op
        if strategy != "none":
            op_groups = [grp for grp in g.last_plan if g.op[grp[0]] == op]
            assert any(len(grp) == 3 for grp in op_groups), f"{op} did not batch across the 3 examples"


def test_deferred_weight_gradients_equal_per_group_accumulation():
    """One GEMM per weight over every group (the default) = one rank-B update per group."""
    from tests.autobatch.helpers import agenda_grads

    grads = [agenda_grads("bilstm", defer)[1] for defer in (True, False)]
    for n in grads[0]:
        assert grads[0][n].abs().sum() > 0, n
        assert torch.allclose(grads[0][n], grads[1][n], atol=1e-5, rtol=1e-4), n


def test_force_autograd_matches_the_hand_written_backwards_on_the_tagger(monkeypatch):
    """Differentiating every group with torch autograd (the fallback of ops without a backward) gives
    the hand-written backwards' gradients on a recurrent model, whose groups read views of arenas
    that later groups write (the operands it saves must not see those writes)."""
    from xflow.autobatch import executor
    from xflow.autobatch.bench import PRESETS
    from xflow.autobatch.models import get_model

    def grads(force: bool):
        monkeypatch.setattr(executor, "force_autograd", force)
        torch.manual_seed(0)
        model = get_model("bilstm", **PRESETS["tiny"]["bilstm"])
        with ab.Graph("agenda") as g:
            loss = g.forward_batch(model.loss_autobatch(model.make_data(6, seed=2))).sum()
        loss.backward()
        return {n: p.grad.to_dense() for n, p in model.named_parameters() if p.grad is not None}

    auto, hand = grads(True), grads(False)
    assert set(auto) == set(hand) and len(hand) >= 6
    for n in hand:
        assert hand[n].abs().sum() > 0, n
        assert torch.allclose(auto[n], hand[n], rtol=1e-4, atol=1e-5), n
