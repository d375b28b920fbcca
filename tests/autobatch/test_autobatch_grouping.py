"""Grouping decisions of each strategy on small hand-made graphs."""
from __future__ import annotations

import pytest
import torch

from xflow import autobatch as ab
from xflow.errors import UnknownName


def _two_chains(strategy):
    """Chain A: x→tanh→tanh→tanh→affine(W); chain B: y→tanh→affine(W)."""
    W = torch.randn(3, 3)
    b = torch.randn(3)
    with ab.Graph(strategy=strategy) as g:
        a = ab.inp(torch.randn(3))
        for _ in range(3):
            a = ab.tanh(a)
        out_a = ab.affine(b, W, a)
        c = ab.tanh(ab.inp(torch.randn(3)))
        out_b = ab.affine(b, W, c)
        g.forward()
    return g, out_a, out_b


def _ops(g, plan):
    return [(g.op[grp[0]], len(grp)) for grp in plan]


def test_none_runs_one_node_per_group():
    g, _, _ = _two_chains("none")
    assert [len(grp) for grp in g.last_plan] == [1] * 6


def test_depth_groups_by_level_and_cannot_merge_affines_of_different_depth():
    g, out_a, out_b = _two_chains("depth")
    assert _ops(g, g.last_plan) == [("tanh", 2), ("tanh", 1), ("affine", 1), ("tanh", 1), ("affine", 1)]


def test_agenda_runs_low_average_depth_first_and_merges_the_affines():
    g, out_a, out_b = _two_chains("agenda")
    assert _ops(g, g.last_plan) == [("tanh", 2), ("tanh", 1), ("tanh", 1), ("affine", 2)]
    groups = g.groups_of()
    assert groups[out_a.node] == groups[out_b.node]


def test_signature_includes_parameter_identity_and_shapes():
    W1, W2 = torch.randn(3, 3), torch.randn(3, 3)
    W3 = torch.randn(3, 4)
    with ab.Graph("agenda") as g:
        x, y, z = ab.inp(torch.randn(3)), ab.inp(torch.randn(3)), ab.inp(torch.randn(4))
        e1, e2 = ab.linear(W1, x), ab.linear(W1, y)  # same weight: one batch
        e3 = ab.linear(W2, x)  # another weight of the same shape: separate
        e4 = ab.linear(W3, z)  # another shape: separate
        g.forward()
    assert g.sig[e1.node] == g.sig[e2.node]
    assert len({g.sig[e1.node], g.sig[e3.node], g.sig[e4.node]}) == 3
    assert sorted(len(grp) for grp in g.last_plan) == [1, 1, 2]


def test_slices_with_different_bounds_do_not_batch_but_picks_with_different_indices_do():
    with ab.Graph("depth") as g:
        x = ab.inp(torch.arange(6.0))
        s1, s2, s3 = ab.slice_(x, 0, 3), ab.slice_(x, 3, 6), ab.slice_(x, 0, 3)
        p1, p2 = ab.pick(x, 1), ab.pick(x, 4)
        t1, t2 = ab.tanh(x[0:3]), ab.tanh(x[3:6])  # views: no node, but part of the consumer's signature
        g.forward()
    assert g.sig[s1.node] == g.sig[s3.node] != g.sig[s2.node]
    assert g.sig[t1.node] != g.sig[t2.node]
    assert torch.allclose(t2.value(), torch.tanh(torch.tensor([3.0, 4.0, 5.0])))
    assert g.sig[p1.node] == g.sig[p2.node]
    assert g.groups_of()[p1.node] == g.groups_of()[p2.node]
    assert p2.value().item() == 4.0 and s2.value().tolist() == [3.0, 4.0, 5.0]


def test_agenda_batches_lstm_steps_across_sentences_of_different_lengths():
    H, d = 4, 3
    w = ab.LSTMWeights(torch.randn(4 * H, d), torch.randn(4 * H, H), torch.randn(4 * H), torch.randn(4 * H))
    lengths = [2, 5, 3]
    with ab.Graph("agenda") as g:
        for n in lengths:
            ab.lstm_sequence(w, [ab.inp(torch.randn(d)) for _ in range(n)])
        g.forward()
    affines = [len(grp) for grp in g.last_plan if g.op[grp[0]] == "affine"]
    # step t runs for every sentence longer than t: 3, 3, 2, 1, 1
    assert affines == [3, 3, 2, 1, 1]


def test_planned_groups_are_valid_for_every_strategy():
    for s in ab.STRATEGIES:
        g, _, _ = _two_chains(s)
        ab.validate_plan(g, [n for grp in g.last_plan for n in grp], g.last_plan)


def test_unknown_strategy_is_a_typed_error():
    with pytest.raises(UnknownName, match="agenda"):
        ab.Graph(strategy="fastest")


def test_gather_uses_views_when_rows_are_contiguous():
    W = torch.randn(3, 3)
    with ab.Graph("agenda") as g:
        xs = [ab.inp(torch.randn(3)) for _ in range(4)]
        ys = [ab.linear(W, x) for x in xs]
        g.forward()
        stacked = g.forward_batch(ys)
    arena, row = g.storage_of(ys[0].node)
    assert row == 0 and stacked.data_ptr() == arena.data_ptr()  # a slice of the arena, not a copy


def test_recurrent_operands_are_views_of_the_previous_step():
    """Rows are arranged longest-remaining-first, so the still-running sentences are a prefix of the
    previous step's rows: every recurrent h and c operand is a zero-copy view (DyNet's contiguity check)."""
    H, d = 4, 3
    w = ab.LSTMWeights(torch.randn(4 * H, d), torch.randn(4 * H, H), torch.randn(4 * H), torch.randn(4 * H))
    with ab.Graph("agenda") as g:
        for n in [2, 5, 3, 4]:
            ab.lstm_sequence(w, [ab.inp(torch.randn(d)) for _ in range(n)])
        g.forward()
    seg = g.segments[-1]
    steps = [(g.op[grp[0]], kinds) for grp, kinds in zip(g.last_plan, seg.group_gathers)]
    affines = [k for op, k in steps if op == "affine"]
    gates = [k for op, k in steps if op == "lstm_gates"]
    assert len(affines) == len(gates) == 5
    assert all(k[1] == "expand" for k in (affines[0], gates[0]))  # the shared zero state
    assert all(k[1] == "view" for k in affines[1:] + gates[1:])  # h and c of step t-1: views
    assert all(k[0] == "view" for k in gates)  # the preactivation: the affine batch itself


@pytest.mark.parametrize("engine", ["numba", "python"])
def test_free_groups_are_ordered_by_their_first_reader(engine, monkeypatch):
    """The embedding lookups (a batch with no produced operand, nobody's primary operand) are laid out
    in the order the LSTM steps read them, so every step's input rows are one zero-copy view; without
    the pass (``schedule.reader_order = False``) some are ``index_select`` copies. Values unchanged."""
    from xflow.autobatch import _jit, schedule

    before = _jit.engine()
    _jit.set_engine(engine)
    torch.manual_seed(0)
    H, d = 4, 3
    w = ab.LSTMWeights(torch.randn(4 * H, d), torch.randn(4 * H, H), torch.randn(4 * H), torch.randn(4 * H))
    E = torch.randn(20, d)
    words = [[1, 2], [3, 4, 5, 6, 7], [8, 9, 10], [11, 12, 13, 14]]

    def run(on: bool):
        monkeypatch.setattr(schedule, "reader_order", on)
        with ab.Graph("agenda") as g:
            outs = [ab.lstm_sequence(w, [ab.lookup(E, i) for i in s]) for s in words]
            g.forward()
        seg = g.segments[-1]
        steps = [(g.op[grp[0]], kinds) for grp, kinds in zip(g.last_plan, seg.group_gathers)]
        x_kinds = [k[0] for op, k in steps if op == "affine"]
        values = torch.stack([h.value() for hs in outs for h in hs])
        return x_kinds, seg.rows_copied, values

    try:
        on, rows_on, v_on = run(True)
        off, rows_off, v_off = run(False)
    finally:
        _jit.set_engine(before)
    assert len(on) == len(off) == 5
    assert all(k == "view" for k in on)
    assert any(k != "view" for k in off)
    assert rows_on < rows_off
    assert v_on.abs().min() > 0 and torch.equal(v_on, v_off)


def test_reader_order_keeps_a_batch_that_a_reader_is_ordered_by():
    """Lookups read by two batches: first by an affine ordered by its larger operand (recorded in
    the opposite order), then by a ``tanh`` ordered by the lookups themselves (its only operand). The
    lookups are the ``tanh``'s primary operand, so the pass must leave them alone: reordering them for
    the affine would turn the ``tanh``'s view into a copy."""
    torch.manual_seed(0)
    E = torch.randn(10, 3)
    W_y, W_x, b = torch.randn(2, 8), torch.randn(2, 3), torch.randn(2)
    with ab.Graph("agenda") as g:
        xs = [ab.lookup(E, i) for i in range(4)]
        ys = [ab.tanh(ab.inp(torch.randn(8))) for _ in range(4)][::-1]  # recorded in reverse order
        first = [ab.affine(b, W_y, y, W_x, x) for x, y in zip(xs, ys)]  # x's first reader
        second = [ab.tanh(x) for x in xs]
        g.forward()
    seg = g.segments[-1]
    tanh_of_x = [k for grp, k in zip(g.last_plan, seg.group_gathers) if second[0].node in grp]
    assert tanh_of_x == [("view",)]
    assert all(v.value().abs().min() > 0 for v in first + second)


def test_reader_order_never_costs_a_view_on_the_benchmark_models():
    """The pass only reorders groups whose order no reader depends on: on every model (tiny sizes)
    it copies no more rows than without it and keeps every view the first pass made possible."""
    from xflow.autobatch import schedule
    from xflow.autobatch.bench import PRESETS, _graph_stats
    from xflow.autobatch.models import get_model

    fewer = []
    for name in ("bilstm", "bilstm-char", "treelstm", "parser"):
        torch.manual_seed(0)
        model = get_model(name, **PRESETS["tiny"][name])
        batch = model.make_data(8, seed=3)
        stats = {}
        for on in (False, True):
            schedule.reader_order = on
            try:
                stats[on] = _graph_stats(model, batch, "agenda", "train")
            finally:
                schedule.reader_order = True
        assert stats[True]["n_groups"] == stats[False]["n_groups"]
        assert stats[True]["rows_copied"] <= stats[False]["rows_copied"], name
        assert stats[True].get("gathers_view", 0) >= stats[False].get("gathers_view", 0), name
        if stats[True]["rows_copied"] < stats[False]["rows_copied"]:
            fewer.append(name)
    # the parser's lookups; at the taggers' tiny sizes emb == hidden, so x is the affine's primary
    # operand (ties go to the first) and its order already follows the lookups
    assert "parser" in fewer


def test_gathers_copy_once_per_operand_without_stacking():
    """A scattered operand is one ``index_select`` of its source, never a ``stack`` of rows."""
    from torch.overrides import TorchFunctionMode

    class Count(TorchFunctionMode):
        def __init__(self):
            super().__init__()
            self.calls = {}

        def __torch_function__(self, func, types, args=(), kwargs=None):
            name = getattr(func, "__name__", str(func))
            self.calls[name] = self.calls.get(name, 0) + 1
            return func(*args, **(kwargs or {}))

    from xflow.autobatch.bench import PRESETS
    from xflow.autobatch.models import get_model

    torch.manual_seed(0)
    model = get_model("bilstm", **PRESETS["tiny"]["bilstm"])
    batch = model.make_data(6, seed=3)
    with ab.Graph("agenda") as g:
        losses = model.loss_autobatch(batch)
        with torch.no_grad(), Count() as c:
            g.forward()
    kinds = g.segments[-1].gathers
    assert kinds["index"] > 0 and kinds["view"] > 0
    assert c.calls.get("stack", 0) == 0
    assert kinds["index"] <= c.calls.get("index_select", 0) <= kinds["index"] + 8 * kinds["multi"]
    assert len(losses) == 6
