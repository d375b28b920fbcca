"""The compiled training fast paths give exactly what the plain torch paths give.

Each fast path (fused weight rule + ``W ⊙ M`` + row skipping for sparse inputs, the narrow-matmul
backward, the propagation break-even between compacting and zero-weighting pruned edges) is run
against the same layer with the fast path switched off, over several reference-schedule steps
(masks recomputed, clamped thresholds, cumulative masks): masks must be identical, outputs and
gradients equal up to float rounding, and the outputs must not vanish.
"""
from __future__ import annotations

import copy

import pytest
import torch

from xflow.sparsify import kernels
from xflow.sparsify.layers import PrunedLinear, PrunedPropagation, prepare_graph
from xflow.sparsify.layers import pruned_propagation
from xflow.sparsify.ops import dense_mm

pytestmark = pytest.mark.skipif(not kernels.available(), reason="compiled kernels unavailable")


def _inputs(sparse: bool, n: int = 60, f: int = 40, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, f, generator=g) * torch.rand(f, generator=g).pow(3)  # columns of different strength
    if sparse:
        x = x * (torch.rand(n, f, generator=g) < 0.2)
        x[:, :5] = 0  # columns without signal: their weight rows are fully pruned
        return x.to_sparse_csr()
    return x


@pytest.mark.parametrize("sparse", [True, False])
@pytest.mark.parametrize("clamp", [True, False])
@pytest.mark.parametrize("cumulative", [False, True])
def test_fused_weight_rule_matches_plain(sparse, clamp, cumulative, monkeypatch):
    torch.manual_seed(0)
    fast = PrunedLinear(40, 24, delta_w=0.3)
    slow = copy.deepcopy(fast)
    monkeypatch.setattr(slow, "_fused_ok", lambda x: False)
    for lin in (fast, slow):
        lin.straight_through, lin.cumulative, lin.clamp = False, cumulative, clamp
    opts = [torch.optim.SGD(m.parameters(), lr=0.1) for m in (fast, slow)]
    grew = 0
    for step in range(4):
        x = _inputs(sparse, seed=1 + step)  # column strengths move: thresholds move (cumulative matters)
        before = fast.mask.clone()
        outs = []
        for lin, opt in zip((fast, slow), opts):
            opt.zero_grad()
            out = lin(x)
            (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
            outs.append(out.detach())
            opt.step()
        assert torch.equal(fast.mask, slow.mask)
        assert 0.02 < 1 - fast.mask.float().mean() < 0.98  # the rule really pruned, not all or nothing
        assert outs[0].var() > 1e-4
        torch.testing.assert_close(outs[0], outs[1], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(fast.weight, slow.weight, rtol=1e-5, atol=1e-6)
        grew += int((fast.mask & ~before).sum())
    assert (grew == 0) if cumulative else (grew > 0)  # cumulative masks only shrink; fresh ones regrow
    if sparse:
        assert not bool(fast.mask[:5].any())  # the zero columns' rows are gone (skipped by the kernel)


def test_fused_grad_only_reaches_kept_entries():
    torch.manual_seed(0)
    lin = PrunedLinear(40, 24, delta_w=1.5)
    lin.straight_through, lin.clamp = False, True
    lin(_inputs(True)).sum().backward()
    assert lin.weight.grad is not None
    assert bool((lin.weight.grad[~lin.mask] == 0).all())
    assert bool((lin.weight.grad[lin.mask] != 0).any())


def test_dense_layer_skips_mask_but_honours_imposed_mask():
    torch.manual_seed(0)
    lin = PrunedLinear(40, 24)
    x = _inputs(False)
    torch.testing.assert_close(lin(x), x @ lin.weight + lin.bias)
    m = torch.rand(40, 24) < 0.5
    lin.mask.copy_(m)  # e.g. loaded from a state dict: an all-ones check must not skip it
    torch.testing.assert_close(lin(x), x @ (lin.weight * m) + lin.bias)


def test_narrow_matmul_backward_matches_autograd():
    torch.manual_seed(0)
    x = torch.randn(300, 64, requires_grad=True)
    w = torch.randn(64, 7, requires_grad=True)
    g = torch.randn(300, 7)
    dense_mm(x, w).backward(g)
    gx, gw = x.grad.clone(), w.grad.clone()
    x.grad = w.grad = None
    (x @ w).backward(g)
    assert gx.var() > 1e-2
    torch.testing.assert_close(gx, x.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(gw, w.grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("width", [4, 256])
def test_compacting_or_zero_weighting_gives_same_propagation(width, monkeypatch):
    torch.manual_seed(0)
    n = 80
    ei = torch.randint(0, n, (2, 600))
    g = prepare_graph(ei, n, True)
    h = torch.randn(n, width, requires_grad=True)
    outs = []
    for cost in (0.0, 1e9):  # always compact / never compact
        monkeypatch.setattr(pruned_propagation, "COMPACT_EDGE_COST", cost)
        prop = PrunedPropagation(1.0)
        out, mask = prop(h, g)
        out.sum().backward()
        outs.append((out.detach(), mask, h.grad.clone()))
        h.grad = None
    assert 0.1 < 1 - outs[0][1].float().mean() < 0.9
    assert torch.equal(outs[0][1], outs[1][1])
    torch.testing.assert_close(outs[0][0], outs[1][0])
    torch.testing.assert_close(outs[0][2], outs[1][2])
    monkeypatch.undo()
    assert pruned_propagation.compact_pays(90, 100, 512) and not pruned_propagation.compact_pays(90, 100, 7)


@pytest.mark.parametrize("last", [None, 0.0])  # None: fused pass; 0.0: previous pass pruned little
@pytest.mark.parametrize("delta", [0.3, 1.0, 2.0])
def test_onthefly_propagation_matches_mask_then_aggregate(delta, last):
    """Training forward (rule inside the aggregation pass) = compute_mask + aggregate, two nested
    layers: same masks, same outputs, same input gradients; pruned edges really dropped."""
    torch.manual_seed(0)
    n = 120
    g = prepare_graph(torch.randint(0, n, (2, 1500)), n, True)
    h0 = (torch.randn(n, 16) * (torch.rand(n, 1) + 0.2)).requires_grad_()
    fast, slow = [PrunedPropagation(delta), PrunedPropagation(delta)], [PrunedPropagation(delta), PrunedPropagation(delta)]
    res = []
    for props, onthefly in ((fast, True), (slow, False)):
        h, cand, masks = h0, None, []
        for p in props:
            if onthefly:
                p._last_pruned = last
                h, cand = p(h, g, candidates=cand)
                assert p._last_pruned == pytest.approx(1 - float(cand.float().mean()), abs=1e-6)
            else:
                m = p.compute_mask(h, g, g.edge_weight, cand)
                h, cand = p.aggregate(h, g, g.edge_weight, m, cand), m
            masks.append(cand)
            h = torch.tanh(h)
        h.pow(2).sum().backward()
        res.append((h.detach(), masks, h0.grad.clone()))
        h0.grad = None
    (out_f, masks_f, grad_f), (out_s, masks_s, grad_s) = res
    for mf, ms in zip(masks_f, masks_s):
        assert torch.equal(mf, ms)
    assert bool((~masks_f[1] | masks_f[0]).all())  # nested
    assert 0 < int((~masks_f[0]).sum()) and bool(masks_f[0][g.self_loops].all())
    assert out_f.var() > 1e-4
    torch.testing.assert_close(out_f, out_s, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad_f, grad_s, rtol=1e-5, atol=1e-6)
