"""Every model computes the same loss and gradients eager, hand-batched and autobatched."""
from __future__ import annotations

import pytest
import torch

from xflow import autobatch as ab
from xflow.autobatch.bench import PRESETS
from xflow.autobatch.models import MODELS, get_model
from xflow.errors import UnknownName


def _grads(model):
    out = {}
    for n, p in model.named_parameters():
        g = p.grad
        out[n] = torch.zeros_like(p) if g is None else (g.to_dense() if g.is_sparse else g.clone())
    model.zero_grad(set_to_none=True)
    return out


@pytest.mark.parametrize("name, sparse", [(m, True) for m in sorted(MODELS)] + [("bilstm", False)])
def test_model_losses_and_gradients_agree(name, sparse):
    torch.manual_seed(0)
    model = get_model(name, **PRESETS["tiny"][name], sparse_emb=sparse)
    batch = model.make_data(4, seed=3)
    results = {}
    loss = model.loss_eager(batch)
    loss.backward()
    results["eager"] = (loss.item(), _grads(model))
    loss = model.loss_handbatched(batch)
    loss.backward()
    results["hand"] = (loss.item(), _grads(model))
    for s in ab.STRATEGIES:
        with ab.Graph(s) as g:
            losses = model.loss_autobatch(batch)
            loss = g.forward_batch(losses).sum()
        loss.backward()
        results[s] = (loss.item(), _grads(model))
    ref_loss, ref_grads = results["eager"]
    for impl, (l, grads) in results.items():
        assert l == pytest.approx(ref_loss, rel=1e-5), impl
        for n, gr in grads.items():
            assert torch.allclose(gr, ref_grads[n], atol=1e-5, rtol=1e-4), (impl, n)


@pytest.mark.parametrize("sparse", [True, False])
def test_embedding_gradient_is_sparse_exactly_when_asked(sparse):
    torch.manual_seed(0)
    model = get_model("bilstm", **PRESETS["tiny"]["bilstm"], sparse_emb=sparse)
    batch = model.make_data(3, seed=3)
    with ab.Graph("agenda") as g:
        loss = g.forward_batch(model.loss_autobatch(batch)).sum()
    loss.backward()
    grad = model.E.grad
    assert grad is not None and grad.is_sparse == sparse
    used = sorted({w for s in batch for w in s.words})
    dense = grad.to_dense()
    unused = sorted(set(range(dense.shape[0])) - set(used))
    assert dense[used].abs().sum(1).min() > 0 and dense[unused].abs().sum() == 0
    if sparse:  # only the rows used are stored (DyNet's sparse lookup-parameter update)
        assert grad.coalesce().indices().shape[1] == len(used)


def test_unknown_model_is_a_typed_error():
    with pytest.raises(UnknownName, match="bilstm"):
        get_model("transformer")


def test_synthetic_data_is_seeded_and_realistic():
    model = get_model("treelstm", **PRESETS["quick"]["treelstm"])
    a, b = model.make_data(50, seed=1), model.make_data(50, seed=1)
    assert [t.word for t in a] == [t.word for t in b]
    leaves = [t.n_leaves for t in a]
    assert 12 < sum(leaves) / len(leaves) < 35  # news-like mean length (~25), clipped
    t = a[0]
    assert len(t) == 2 * t.n_leaves - 1 and t.children[-1] is not None  # binary tree, root last
