"""DyNet's scheduling rules one by one (``exec.cc``), each on a graph where dropping the rule changes the plan."""
from __future__ import annotations

import pytest
import torch

from xflow import autobatch as ab
from xflow.autobatch.bench import PRESETS
from xflow.autobatch.models import get_model
from xflow.autobatch.ops import OPS, OpSpec, register_op
from xflow.autobatch.strategies import AutoStrategy


def _ops(g, plan):
    return [(g.op[grp[0]], len(grp)) for grp in plan]


def test_depth_is_relative_to_evaluated_nodes_after_an_incremental_forward():
    """After a forward, new nodes reading evaluated nodes of different absolute depths have depth 0
    and batch together (DyNet's ``node2depth`` counts only unevaluated operands)."""
    with ab.Graph("depth") as g:
        a = ab.tanh(ab.inp(torch.randn(3)))          # absolute depth 0
        b = ab.tanh(ab.tanh(ab.tanh(ab.inp(torch.randn(3)))))  # absolute depth 2
        g.forward()
        ya, yb = ab.sigmoid(a), ab.sigmoid(b)
        g.forward()
    assert g.depth[ya.node] == g.depth[yb.node] == 0
    assert _ops(g, g.last_plan) == [("sigmoid", 2)]
    assert torch.allclose(yb.value(), torch.sigmoid(b.value()))


def test_incremental_parser_style_steps_run_one_batch_per_step():
    """Two 'sentences' extended step by step (each step reads the previous step's value): every
    forward runs exactly one batch of both."""
    W = torch.randn(4, 4)
    with ab.Graph("agenda") as g:
        hs = [ab.inp(torch.randn(4)), ab.tanh(ab.tanh(ab.inp(torch.randn(4))))]
        g.forward()
        for _ in range(3):
            hs = [ab.tanh(ab.linear(W, h)) for h in hs]
            g.forward()
            assert _ops(g, g.last_plan) == [("affine", 2), ("tanh", 2)]


def test_affine_is_deferred_on_a_tie_of_average_depth():
    """Same average depth: the simple op runs first even though the affine signature was seen first."""
    W = torch.randn(3, 3)
    with ab.Graph("agenda") as g:
        x, y = ab.inp(torch.randn(3)), ab.inp(torch.randn(3))
        a = ab.linear(W, x)   # signature seen first, depth 0
        t = ab.tanh(y)        # depth 0
        g.forward()
    assert _ops(g, g.last_plan) == [("tanh", 1), ("affine", 1)]
    assert torch.allclose(a.value(), W @ x.value()) and torch.allclose(t.value(), torch.tanh(y.value()))


def test_lower_average_depth_wins_over_the_tie_break():
    W = torch.randn(3, 3)
    with ab.Graph("agenda") as g:
        x = ab.inp(torch.randn(3))
        ab.linear(W, x)                      # affine: average depth 0
        ab.tanh(ab.tanh(ab.inp(torch.randn(3))))  # tanh: average depth 0.5
        g.forward()
    assert _ops(g, g.last_plan)[0] == ("affine", 1)


@pytest.fixture
def unbatchable_op():
    name = "test_unbatchable_neg"
    register_op(OpSpec(name, lambda s, p, a: s[0], lambda p, a, at, d: -a[0], batchable=False))
    yield name
    del OPS[name]


def test_ready_unbatchable_nodes_run_first_and_alone(unbatchable_op):
    with ab.Graph("agenda") as g:
        xs = [ab.inp(torch.randn(3)) for _ in range(3)]
        ts = [ab.tanh(x) for x in xs]                   # batchable, ready, recorded first
        us = [g.record(unbatchable_op, (x,)) for x in xs]  # unbatchable, ready
        g.forward()
    assert _ops(g, g.last_plan) == [(unbatchable_op, 1)] * 3 + [("tanh", 3)]
    ab.validate_plan(g, [t.node for t in ts] + [u.node for u in us], g.last_plan)
    assert torch.allclose(us[1].value(), -xs[1].value())


def test_dtype_and_device_are_part_of_the_signature():
    with ab.Graph("agenda") as g:
        a = ab.tanh(ab.inp(torch.randn(3, dtype=torch.float32)))
        b = ab.tanh(ab.inp(torch.randn(3, dtype=torch.float64)))
        g.forward()
    assert g.sig[a.node] != g.sig[b.node]
    assert sorted(len(grp) for grp in g.last_plan) == [1, 1]
    assert a.value().dtype == torch.float32 and b.value().dtype == torch.float64
    assert a.device == b.device == torch.device("cpu")


def _tagger_batch(name="bilstm", n=6):
    torch.manual_seed(0)
    model = get_model(name, **PRESETS["tiny"][name])
    return model, model.make_data(n, seed=3)


@pytest.mark.parametrize("name, fused_act, expected", [
    # (none, depth, agenda, agenda-level) batches on a fixed minibatch of 6: the average-depth
    # priority merges the output layers across sentence lengths (depth cannot); a planner that
    # picks any ready signature instead of the lowest average depth needs more batches.
    # fused_act=False: the taggers' MLP as tanh(affine) (DyNet's graph); True: one affine_tanh node
    ("bilstm", False, (384, 87, 47, 47)),
    ("bilstm-char", False, (1501, 149, 80, 87)),
    ("treelstm", False, (360, 35, 35, 35)),
    ("bilstm", True, (342, 76, 46, 46)),
    ("bilstm-char", True, (1459, 136, 79, 84)),
])
def test_group_counts_on_a_fixed_minibatch(monkeypatch, name, fused_act, expected):
    from xflow.autobatch.models import base

    monkeypatch.setattr(base, "fuse_activations", fused_act)
    model, batch = _tagger_batch(name)
    got = []
    for s in ("none", "depth", "agenda", "agenda-level"):
        with ab.Graph(s) as g:
            losses = model.loss_autobatch(batch)
            pending = g.pending()
            g.forward(losses)
        ab.validate_plan(g, pending, g.last_plan)
        got.append(g.stats["n_groups"])
    assert tuple(got) == expected


def test_validate_plan_rejects_a_plan_that_drops_or_reorders_nodes():
    W = torch.randn(3, 3)
    with ab.Graph("agenda") as g:
        x = ab.tanh(ab.inp(torch.randn(3)))
        y = ab.linear(W, x)
        pending = g.pending()
        plan = g.plan()
    ab.validate_plan(g, pending, plan)
    with pytest.raises(AssertionError, match="never planned"):
        ab.validate_plan(g, pending, plan[:1])
    with pytest.raises(AssertionError, match="before its operand"):
        ab.validate_plan(g, pending, plan[::-1])
    assert y.node in pending


def test_auto_decides_once_per_model_through_the_measurement_core():
    model, batch = _tagger_batch("treelstm", n=3)
    auto = AutoStrategy(rounds=2, warmup=0)
    values = []
    for _ in range(2):
        with ab.Graph(auto) as g:
            losses = model.loss_autobatch(batch)
            values.append(g.forward_batch(losses).detach())
    assert len(auto.trials) == 1 and len(auto.choices) == 1  # the second graph reuses the decision
    (trial,) = auto.trials.values()
    assert trial["choice"] in ("agenda", "depth", "agenda-level")
    assert "agenda~aa" in trial["variants"]  # measured with an A/A control, not a single timing
    assert torch.allclose(values[0], values[1])
    with torch.no_grad():
        assert torch.allclose(values[0].sum(), model.loss_eager(batch), rtol=1e-5)
