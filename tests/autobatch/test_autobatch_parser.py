"""The transition parser: the dynamic oracle recovers gold trees, parses are trees, forwards are incremental."""
from __future__ import annotations

import torch

from xflow import autobatch as ab
from xflow.autobatch.bench import PRESETS
from xflow.autobatch.models import get_model
from xflow.autobatch.models.parser import LEFT, RIGHT, SHIFT, Transitions, make_parses


class _Null:
    """A backend that records nothing (for the transition system alone)."""

    stack0 = act0 = pad = None

    def push(self, below, x):
        return None

    def compose(self, h, d):
        return None

    def act_step(self, st, a):
        return None


def _oracle_parse(ex):
    c = Transitions(ex.heads, [None] * len(ex), None)
    while not c.done:
        costs, legal = c.costs(), c.legal()
        a = min((a for a in (SHIFT, LEFT, RIGHT) if legal[a]), key=lambda a: costs[a])
        assert costs[a] == 0, "a projective tree always has a zero-cost action"
        c.apply(a, _Null())
    return c


def test_following_the_dynamic_oracle_rebuilds_every_gold_tree():
    for ex in make_parses(60, vocab=50, seed=4, max_len=30):
        c = _oracle_parse(ex)
        root = c.stack[0][0]
        got = list(c.heads)
        got[root] = -1
        assert got == ex.heads
        assert len(c.actions) == 2 * len(ex) - 1


def test_costs_count_the_gold_arcs_an_action_loses():
    # gold: 0 <- 1 -> 2, root 1; after SHIFT 0, SHIFT 1: RIGHT would attach 1 under 0 (loses 1's root arc
    # and its dependent 2 still in the buffer); LEFT would attach 1 to 2 (same two losses)
    c = Transitions([1, -1, 1], [None] * 3, None)
    c.apply(SHIFT, _Null())
    assert c.costs()[LEFT] == 0 and c.costs()[SHIFT] == 1  # 0's head is 1: attach now, or lose it
    c.apply(SHIFT, _Null())
    _, left, right = c.costs()
    assert (left, right) == (2, 2)


def test_model_parses_are_trees_and_forwards_are_incremental():
    torch.manual_seed(0)
    model = get_model("parser", **PRESETS["tiny"]["parser"])
    batch = model.make_data(5, seed=3)
    with ab.Graph("agenda") as g:
        losses = model.loss_autobatch(batch)
        loss = g.forward_batch(losses).sum()
    longest = max(len(s) for s in batch)
    assert g.stats["n_forwards"] == 2 * longest  # one forward per lockstep step, plus the loss
    assert float(loss.detach()) > 1.0
    for heads, s in zip(model.parse(batch), batch):
        roots = [i for i, h in enumerate(heads) if h == -2]
        assert len(roots) == 1 and all(0 <= h < len(s) for i, h in enumerate(heads) if i != roots[0])


def _parser_loss_and_grads(model, batch, fuse: bool, defer: bool):
    from xflow.autobatch.models import base as B
    from xflow.autobatch.models import parser as P

    saved = B.fuse_activations, P.defer_losses
    B.fuse_activations, P.defer_losses = fuse, defer
    try:
        model.zero_grad(set_to_none=True)
        with ab.Graph("agenda") as g:
            loss = g.forward_batch(model.loss_autobatch(batch)).sum()
        loss.backward()
    finally:
        B.fuse_activations, P.defer_losses = saved
    grads = {n: (p.grad.to_dense() if p.grad.is_sparse else p.grad).clone()
             for n, p in model.named_parameters() if p.grad is not None}
    return float(loss.detach()), grads, g


def test_fused_activations_and_deferred_losses_change_the_batches_not_the_function():
    """``affine_tanh`` for tanh(affine) and the loss terms recorded after the last transition give the
    eager loss and gradients; the loss terms then run as one batch in the final forward, and the fused
    graph has no tanh nodes left (a switch that did nothing would fail here)."""
    torch.manual_seed(0)
    model = get_model("parser", **PRESETS["tiny"]["parser"])
    batch = model.make_data(6, seed=5)
    model.zero_grad(set_to_none=True)
    ref = model.loss_eager(batch)
    ref.backward()
    ref_grads = {n: (p.grad.to_dense() if p.grad.is_sparse else p.grad).clone()
                 for n, p in model.named_parameters() if p.grad is not None}
    graphs = {}
    for fuse in (False, True):
        for defer in (False, True):
            loss, grads, g = _parser_loss_and_grads(model, batch, fuse, defer)
            graphs[fuse, defer] = g
            assert abs(loss - float(ref.detach())) < 1e-4 * abs(float(ref.detach()))
            assert set(grads) == set(ref_grads)
            for n, r in ref_grads.items():
                assert r.abs().sum() > 0, n
                assert torch.allclose(grads[n], r, atol=1e-5, rtol=1e-4), n
    n_terms = sum(2 * len(s) - 1 for s in batch)
    ce_groups = lambda g: [grp for plan in g.plans for grp in plan if g.op[grp[0]] == "cross_entropy"]
    assert [len(grp) for grp in ce_groups(graphs[True, True])] == [n_terms]  # one batch, in the last forward
    assert len(ce_groups(graphs[True, False])) == 2 * max(len(s) for s in batch) - 1  # one per step
    ops = lambda g: {g.op[n] for plan in g.plans for grp in plan for n in grp}
    assert "tanh" in ops(graphs[False, True]) and "affine_tanh" not in ops(graphs[False, True])
    assert "tanh" not in ops(graphs[True, True]) and "affine_tanh" in ops(graphs[True, True])
