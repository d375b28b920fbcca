"""Incremental forwards (the parser's use): weight gradients of all segments are computed once, each
backward pass stands alone, and a forward never re-runs nodes an earlier forward evaluated."""
from __future__ import annotations

import pytest
import torch

from xflow import autobatch as ab
from xflow.autobatch import executor
from xflow.autobatch.bench import PRESETS
from xflow.autobatch.models import get_model

from tests.autobatch.helpers import agenda_grads


def _parser_grads(defer: bool, count: list | None = None):
    g, grads = agenda_grads("parser", defer, count)
    return g, {n: v for n, v in grads.items() if v is not None}


def test_weight_gradients_of_all_forwards_are_one_product_per_weight():
    """~20 incremental forwards, yet each weight (and bias) gets one product over all its rows —
    equal to one rank-B update per group."""
    products: list = []
    g, pooled = _parser_grads(True, products)
    _, per_group = _parser_grads(False)
    assert g.stats["n_forwards"] > 10
    assert len(products) == len(set(products)), "a weight's product was computed more than once"
    assert set(pooled) == set(per_group)
    for n in pooled:
        assert pooled[n].abs().sum() > 0, n
        assert torch.allclose(pooled[n], per_group[n], atol=1e-5, rtol=1e-4), n


def _two_forwards():
    torch.manual_seed(1)
    W = torch.randn(4, 3, requires_grad=True)
    b = torch.randn(4, requires_grad=True)
    x, y = torch.randn(3), torch.randn(3, requires_grad=True)
    g = ab.Graph("agenda")
    with g:
        a = ab.tanh(ab.affine(b, W, ab.inp(x)))
        va = a.value()                          # forward 1 reads W
        c = ab.tanh(ab.affine(b, W, ab.inp(y)))  # forward 2 reads W too, independent of forward 1
        vc = c.value()
    ga = torch.autograd.grad(torch.tanh(b + W @ x).sum(), (W, b))
    gc = torch.autograd.grad(torch.tanh(b + W @ y).sum(), (W, b))
    return W, b, y, va, vc, ga, gc


def test_two_losses_of_one_graph_backpropagated_one_after_the_other():
    W, b, _, va, vc, ga, gc = _two_forwards()
    va.sum().backward()
    assert torch.allclose(W.grad, ga[0], atol=1e-6) and torch.allclose(b.grad, ga[1], atol=1e-6)
    vc.sum().backward()  # reaches the first (consumed) forward only through the ordering token
    assert torch.allclose(W.grad, ga[0] + gc[0], atol=1e-6)
    assert torch.allclose(b.grad, ga[1] + gc[1], atol=1e-6)


def test_rows_left_over_by_an_autograd_grad_pass_are_not_added_later():
    """``autograd.grad`` towards ``y`` runs forward 2 only: its W rows wait for forward 1, which never
    runs in that pass; the next pass must not pick them up."""
    W, b, y, va, vc, ga, _ = _two_forwards()
    (gy,) = torch.autograd.grad(vc.sum(), (y,))
    assert torch.allclose(gy, W.detach().t() @ (1 - vc.detach() ** 2), atol=1e-6)
    va.sum().backward()
    assert torch.allclose(W.grad, ga[0], atol=1e-6) and torch.allclose(b.grad, ga[1], atol=1e-6)


def test_a_second_backward_through_a_segment_is_a_clear_error():
    W, b, _, va, vc, _, _ = _two_forwards()
    (va.sum() + vc.sum()).backward()
    with pytest.raises(RuntimeError):
        (va.sum() * 2).backward()


def test_gradients_between_forwards_bypass_autograd_and_are_unchanged():
    """A later forward's gradient for an earlier forward's output goes through the graph's pool: autograd
    delivers gradients only to what user code read (the final loss), and the result is the same."""
    torch.manual_seed(0)
    model = get_model("parser", **PRESETS["tiny"]["parser"])
    batch = model.make_data(4, seed=3)
    got = {}
    for route in (True, False):
        executor.route_activation_grads = route
        try:
            with ab.Graph("agenda") as g:
                losses = model.loss_autobatch(batch)
                n0 = len(g._sources)  # the final forward (the loss sums) writes the sources from here on
                loss = g.forward_batch(losses).sum()
            hooked: list[int] = []
            for s, t in enumerate(g._sources):
                if t.requires_grad and not g._src_leaf[s] and t.grad_fn is not None:
                    t.register_hook(lambda gr, s=s: hooked.append(s) if gr is not None else None)
            loss.backward()
        finally:
            executor.route_activation_grads = True
        got[route] = (hooked, {n: p.grad.to_dense() for n, p in model.named_parameters()})
        model.zero_grad(set_to_none=True)
    last = set(range(n0, len(g._sources)))
    assert got[True][0] and set(got[True][0]) <= last, "only the last forward's outputs reach autograd"
    assert len(set(got[False][0])) > 5 * len(set(got[True][0]))
    for n, gr in got[True][1].items():
        assert torch.allclose(gr, got[False][1][n], atol=1e-5, rtol=1e-4), n


def test_an_arena_gradient_left_over_by_an_autograd_grad_pass_is_not_added_later():
    """Forward 2 reads forward 1's output; ``autograd.grad`` towards forward 2's own input leaves a
    gradient for forward 1's output in the pool (forward 1 is not needed in that pass): the next
    pass must not add it."""
    torch.manual_seed(2)
    W, V = torch.randn(3, 3, requires_grad=True), torch.randn(3, 3, requires_grad=True)
    x, y = torch.randn(3), torch.randn(3, requires_grad=True)
    with ab.Graph("agenda"):
        a = ab.tanh(ab.linear(W, ab.inp(x)))
        va = a.value()
        vc = ab.tanh(ab.affine(None, W, a, V, ab.inp(y))).value()
    torch.autograd.grad(vc.sum(), (y,))
    va.sum().backward()
    (ref,) = torch.autograd.grad(torch.tanh(W @ x).sum(), (W,))
    assert V.grad is None and torch.allclose(W.grad, ref, atol=1e-6)


def test_three_pair_affine_fast_path_records_the_generic_signature():
    """The second ``affine(b, W1, x, W2, y, W3, z)`` takes the recording fast path: same signature as
    the first (they batch), operands in order (values equal the reference)."""
    torch.manual_seed(3)
    b = torch.randn(4)
    Ws = [torch.randn(4, k) for k in (2, 3, 5)]
    ins = [[torch.randn(k) for k in (2, 3, 5)] for _ in range(2)]
    with ab.Graph("agenda") as g:
        outs = [ab.affine(b, Ws[0], ab.inp(x), Ws[1], ab.inp(y), Ws[2], ab.inp(z)) for x, y, z in ins]
        g.forward()
    assert g.sig[outs[0].node] == g.sig[outs[1].node]
    assert [len(grp) for grp in g.last_plan] == [2]
    for o, (x, y, z) in zip(outs, ins):
        assert torch.allclose(o.value(), b + Ws[0] @ x + Ws[1] @ y + Ws[2] @ z, atol=1e-5)


def test_cached_fused_lstm_steps_record_the_same_graph_as_the_slow_path():
    """After its first step an LSTM step appends its two nodes straight from a per-graph cache; the
    recorded graph (signatures, operands, views) is the one the slow path records."""
    from xflow.autobatch.cells import LSTMWeights, lstm_sequence

    torch.manual_seed(4)
    lstm = torch.nn.LSTM(3, 5)
    w = LSTMWeights.from_lstm(lstm)
    xs = [torch.randn(3) for _ in range(4)]
    graphs = []
    for cached in (True, False):
        with ab.Graph("agenda") as g:
            if not cached:
                g._cells = type("NoCache", (dict,), {"get": lambda self, k: None})()
            hs = lstm_sequence(w, [ab.inp(x) for x in xs])
        graphs.append((list(g._sig), list(g._args), list(g._ptr), [h.tid for h in hs]))
        if cached:
            assert g._cells, "the steps after the first went through the cache"
    assert graphs[0] == graphs[1]


@pytest.mark.parametrize("fused_graph, pinned", [
    (False, {"agenda": (879, 230), "depth": (879, 278)}),  # tanh(affine), a loss node per step (DyNet's graph)
    (True, {"agenda": (783, 180), "depth": (783, 206)}),  # affine_tanh, the loss nodes after the last step
])
def test_parser_minibatch_batches_and_forwards_are_pinned(monkeypatch, fused_graph, pinned):
    """A fixed tiny parser minibatch: every op node runs exactly once over the 18 incremental forwards
    (no forward re-runs an evaluated node), and the agenda / depth strategies make a pinned number of
    batches (the agenda's average-depth priority and affine tie-break fold steps that ``depth`` splits)."""
    from xflow.autobatch.models import base as B
    from xflow.autobatch.models import parser as P

    monkeypatch.setattr(B, "fuse_activations", fused_graph)
    monkeypatch.setattr(P, "defer_losses", fused_graph)
    got = {}
    for strategy in ("agenda", "depth"):
        torch.manual_seed(0)
        model = get_model("parser", **PRESETS["tiny"]["parser"])
        batch = model.make_data(6, seed=5)
        with ab.Graph(strategy) as g:
            losses = model.loss_autobatch(batch)
            g.forward_batch(losses)
        ops = [n for n in range(len(g)) if g.sig[n] >= 0]
        ran = [n for plan in g.plans for grp in plan for n in grp]
        assert sorted(ran) == ops, "an op node ran twice or never"
        assert g.stats["n_executed"] == len(ops) and g.stats["n_forwards"] == 18
        for seg, plan in zip(g.segments, g.plans):  # a forward runs only nodes recorded since the last one
            assert all(seg.first <= n < seg.end for grp in plan for n in grp)
        got[strategy] = (len(g), g.stats["n_groups"])
    assert got == pinned
