"""Hoisted input projections (``executor.hoist_projections``): a term ``W x`` that several groups read
from one complete source is one product over the whole source; values and gradients are unchanged,
and only complete, mostly-read sources are hoisted."""
from __future__ import annotations

import pytest
import torch

from xflow import autobatch as ab
from xflow.autobatch import executor
from xflow.autobatch.bench import PRESETS
from xflow.autobatch.models import get_model


@pytest.fixture
def hoist():
    """Set ``executor.hoist_projections`` for one test and restore it after."""
    old = executor.hoist_projections
    yield lambda on: setattr(executor, "hoist_projections", on)
    executor.hoist_projections = old


def _counts(g: ab.Graph) -> tuple[int, int]:
    return sum(s.hoisted for s in g.segments), sum(s.projections for s in g.segments)


def _tagger_step(name: str, train: bool):
    torch.manual_seed(0)
    model = get_model(name, **PRESETS["tiny"][name])
    batch = model.make_data(6, seed=2)
    with torch.enable_grad() if train else torch.no_grad(), ab.Graph("agenda") as g:
        loss = g.forward_batch(model.loss_autobatch(batch)).sum()
    if train:
        loss.backward()
    grads = {n: p.grad.to_dense() for n, p in model.named_parameters() if p.grad is not None}
    return g, loss.detach(), grads


@pytest.mark.parametrize("name", ["bilstm", "bilstm-char"])
def test_tagger_inference_is_hoisted_and_unchanged(hoist, name):
    """Each LSTM direction's input projection is one product (per word and per char LSTM); the loss
    equals the per-group computation's. Fails if the hoisted product drops the bias, if a group's
    other terms (``W_hh h``) are not added, or if a group copies the wrong rows of the product."""
    hoist(False)
    g0, off, _ = _tagger_step(name, train=False)
    hoist(True)
    g1, on, _ = _tagger_step(name, train=False)
    assert _counts(g0) == (0, 0)
    hoisted, products = _counts(g1)
    assert products == (2 if name == "bilstm" else 4)  # forward and backward direction (and the char LSTM's)
    assert hoisted >= 2 * products  # every product serves several time steps
    assert abs(float(off)) > 1.0
    assert torch.allclose(on, off, rtol=1e-5, atol=1e-5)


def test_training_loss_and_gradients_are_unchanged(hoist):
    """In training the forward reads the hoisted product and the backward is the usual one."""
    hoist(False)
    _, off, g_off = _tagger_step("bilstm", train=True)
    hoist(True)
    g, on, g_on = _tagger_step("bilstm", train=True)
    assert _counts(g)[1] == 2
    assert torch.allclose(on, off, rtol=1e-5, atol=1e-5)
    assert set(g_on) == set(g_off) and len(g_on) >= 6
    for n in g_off:
        assert g_off[n].abs().sum() > 0, n
        assert torch.allclose(g_on[n], g_off[n], rtol=1e-4, atol=1e-5), n


def test_force_autograd_turns_hoisting_off_in_training(hoist, monkeypatch):
    hoist(True)
    monkeypatch.setattr(executor, "force_autograd", True)
    g, _, _ = _tagger_step("bilstm", train=True)
    assert _counts(g) == (0, 0)


def _recurrence(n_words: int, n_used: int, form: str = "x_first"):
    """One example: ``h_t = W x_t + U h_{t-1} + b`` over the first ``n_used`` of ``n_words`` lookups
    (the others feed a ``tanh``). ``form``: ``x_first`` / ``h_first`` (which term is the affine's
    first operand) or ``h_only`` (``h_t = U h_{t-1} + b`` after the first step). Returns the graph,
    the summed states and their reference value."""
    gen = torch.Generator().manual_seed(5)
    E, W, U = (torch.randn(*s, generator=gen) for s in ((n_words, 4), (4, 4), (4, 4)))
    b = torch.randn(4, generator=gen)
    with torch.no_grad(), ab.Graph("agenda") as g:
        xs = [ab.lookup(E, i) for i in range(n_words)]
        h = ab.affine(b, W, xs[0])
        outs = [h]
        for x in xs[1:n_used]:
            h = (ab.affine(b, W, x, U, h) if form == "x_first" else ab.affine(b, U, h, W, x) if form == "h_first"
                 else ab.affine(b, U, h))
            outs.append(h)
        outs += [ab.tanh(x) for x in xs[n_used:]]
        y = g.forward_batch([ab.sum_elems(o) for o in outs]).sum()
    ref = b + W @ E[0]
    total = float(ref.sum())
    for i in range(1, n_used):
        ref = (0 if form == "h_only" else W @ E[i]) + U @ ref + b
        total += float(ref.sum())
    total += float(torch.tanh(E[n_used:]).sum())
    return g, float(y), total


@pytest.mark.parametrize("form", ["x_first", "h_first"])
def test_recurrence_hoists_the_input_term_not_the_recurrent_one(hoist, form):
    """The ``W x_t`` term of every step after the first is hoisted (one product); the ``U h_{t-1}``
    term is not, whichever operand comes first: its source is still being written when each step
    runs (hoisting it would read rows not yet computed)."""
    hoist(True)
    g, y, ref = _recurrence(6, 6, form)
    assert _counts(g) == (5, 1)
    assert abs(ref) > 1.0 and y == pytest.approx(ref, rel=1e-5)


def test_a_source_still_being_written_is_not_hoisted(hoist):
    """``h_t = U h_{t-1} + b``: every step reads the arena the steps write, so nothing is hoisted
    (a product over it would read rows not yet computed)."""
    hoist(True)
    g, y, ref = _recurrence(6, 6, "h_only")
    assert _counts(g) == (0, 0)
    assert abs(ref) > 1.0 and y == pytest.approx(ref, rel=1e-5)


def test_a_source_mostly_read_by_others_is_not_hoisted(hoist):
    """Two steps read 2 of 6 rows: computing the product for all 6 would waste work — not hoisted."""
    hoist(True)
    g, y, ref = _recurrence(6, 3)
    assert _counts(g) == (0, 0)
    assert y == pytest.approx(ref, rel=1e-5)
