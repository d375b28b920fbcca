"""The two Unifews rules on hand-made inputs: which edges / entries must go."""
import pytest
import torch

from xflow.errors import ShapeMismatch
from xflow.sparsify.pruning import edge_prune_mask, message_norms, self_loop_mask, weight_prune_mask


def _toy():
    # edges (src -> dst): 0->1, 1->0, 2->0, 0->0 (self-loop), 1->1 (self-loop)
    ei = torch.tensor([[0, 1, 2, 0, 1], [1, 0, 0, 0, 1]])
    w = torch.tensor([1.0, 1.0, 0.1, 0.5, 0.5])
    h = torch.tensor([[3.0, 4.0], [1.0, 0.0], [0.0, 1.0]])  # norms 5, 1, 1
    return ei, w, h


def test_message_norms_are_weight_times_source_norm():
    ei, w, h = _toy()
    assert torch.allclose(message_norms(h, ei, w), torch.tensor([5.0, 1.0, 0.1, 2.5, 0.5]))


def test_edge_rule_drops_small_messages_keeps_self_loops():
    ei, w, h = _toy()
    norms = message_norms(h, ei, w)  # mean = 9.1 / 5 = 1.82
    mask = edge_prune_mask(norms, torch.ones(5, dtype=torch.bool), self_loop_mask(ei), 1.0)
    # kept: 0->1 (5 >= 1.82), self-loops 0->0 and 1->1 (always); dropped: 1->0 (1), 2->0 (0.1)
    assert mask.tolist() == [True, False, False, True, True]


def test_edge_rule_threshold_scales_with_delta_and_zero_keeps_all():
    ei, w, h = _toy()
    norms = message_norms(h, ei, w)
    loops = self_loop_mask(ei)
    allc = torch.ones(5, dtype=torch.bool)
    assert edge_prune_mask(norms, allc, loops, 0.0).all()
    # δ=0.5 → threshold 0.91: 1->0 (norm 1) survives, 2->0 (0.1) goes
    assert edge_prune_mask(norms, allc, loops, 0.5).tolist() == [True, True, False, True, True]


def test_edge_rule_inherits_previous_layer_and_uses_candidate_mean():
    ei, w, h = _toy()
    norms = message_norms(h, ei, w)
    loops = self_loop_mask(ei)
    prev = torch.tensor([False, True, True, True, True])  # 0->1 pruned earlier
    mask = edge_prune_mask(norms, prev, loops, 1.0)
    assert not mask[0]  # stays pruned even though its message is the largest
    # mean over candidates = (1 + 0.1 + 2.5 + 0.5) / 4 = 1.025 → 1->0 (1.0) now goes
    assert mask.tolist() == [False, False, False, True, True]
    assert bool((mask & ~prev).sum() == 0)


def test_multihead_message_norm():
    ei = torch.tensor([[0], [1]])
    h = torch.tensor([[[3.0, 0.0], [0.0, 4.0]], [[0.0, 0.0], [0.0, 0.0]]])  # (N=2, H=2, F=2)
    alpha = torch.tensor([[1.0, 0.5]])
    # sqrt(1^2 * 9 + 0.5^2 * 16) = sqrt(13)
    assert torch.allclose(message_norms(h, ei, alpha), torch.tensor([13.0]).sqrt())


def test_weight_rule_per_column_threshold():
    x = torch.tensor([[3.0, 0.0], [4.0, 1.0]])  # column norms 5, 1; ‖X‖_F = sqrt(26); F_in = 2
    w = torch.tensor([[0.2, 0.05], [0.2, 2.0]])
    # contributions: row0 -> 1.0, 0.25; row1 -> 0.2, 2.0 ; threshold δ·sqrt(26)/2 = 0.2549·δ·... for δ=1: 2.55
    thr = torch.tensor(26.0).sqrt() / 2
    mask = weight_prune_mask(w, x, 1.0)
    expected = (w.abs() * torch.tensor([5.0, 1.0])[:, None]) >= thr
    assert torch.equal(mask, expected)
    assert mask.tolist() == [[False, False], [False, False]]
    mask = weight_prune_mask(w, x, 0.3)  # threshold 0.765: keep 1.0 and 2.0 only
    assert mask.tolist() == [[True, False], [False, True]]


def test_weight_rule_is_scale_invariant_and_zero_keeps_all():
    g = torch.Generator().manual_seed(0)
    x, w = torch.rand(20, 6, generator=g), torch.randn(6, 3, generator=g)
    assert torch.equal(weight_prune_mask(w, x, 0.7), weight_prune_mask(w, 10 * x, 0.7))
    assert weight_prune_mask(w, x, 0.0).all()


def test_weight_rule_zero_column_loses_its_weights():
    x = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    w = torch.ones(2, 2)
    assert weight_prune_mask(w, x, 0.01)[1].tolist() == [False, False]


def test_bad_inputs_raise():
    with pytest.raises(ValueError):
        edge_prune_mask(torch.ones(2), torch.ones(2, dtype=torch.bool), torch.zeros(2, dtype=torch.bool), -1.0)
    with pytest.raises(ShapeMismatch):
        weight_prune_mask(torch.ones(3, 2), torch.ones(4, 5), 1.0)
