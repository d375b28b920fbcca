"""Full-batch node-classification training with the Unifews mask schedule.

Schedule: during the first ``freeze_at`` epochs (default: half of them) every forward pass recomputes
the masks from the current weights and activations (edge sets nested layer to layer). At epoch
``freeze_at`` one evaluation-mode forward computes the final masks, which are then frozen: the rest of
training fine-tunes the surviving entries and inference uses exactly those masks. The reported test
accuracy is the one at the best validation epoch after freezing, and MACs/sparsities come from the
counted inference forward pass.

No wall-clock time is taken here: speed is measured with the measurement core
(:mod:`xflow.sparsify.timing`), never from a training log.
"""
from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from xflow.errors import UnknownName
from xflow.sparsify.layers import Graph
from xflow.sparsify.macs import MacCounter
from xflow.sparsify.models import SparseGNN

__all__ = ["train_model", "evaluate", "accuracy", "train_step", "reference_optimizer", "set_reference_epoch"]

log = logging.getLogger(__name__)


def accuracy(logits: Tensor, y: Tensor, mask: Tensor) -> float:
    """Share of ``mask`` nodes whose arg-max logit equals the label."""
    if int(mask.sum()) == 0:
        return float("nan")
    return float((logits[mask].argmax(-1) == y[mask]).float().mean())


@torch.no_grad()
def evaluate(model: SparseGNN, data, graph: Graph, counter: MacCounter | None = None) -> dict[str, float]:
    """Eval-mode forward: train/val/test accuracy (and MACs into ``counter``)."""
    model.eval()
    out = model(data.x, graph, counter)
    return {f"{k}_acc": accuracy(out, data.y, getattr(data, f"{k}_mask")) for k in ("train", "val", "test")}


def train_model(model: SparseGNN, data, graph: Graph, *, epochs: int = 200, lr: float = 0.01,
                weight_decay: float = 5e-4, freeze_at: int | None = None,
                extra_loss: Callable[[SparseGNN], Tensor] | None = None, infer_repeats: int = 3,
                schedule: str = "freeze", lock_eval_nodes: bool = False) -> dict[str, Any]:
    """Train ``model`` on ``data`` (full batch, Adam); return accuracies, sparsities, MACs and times.

    ``extra_loss(model)`` is added to the cross-entropy (used by the UGS baseline's L1 mask penalty).
    ``schedule`` is ``"freeze"`` (masks frozen at ``freeze_at``) or ``"reference"`` (see module doc).
    ``lock_eval_nodes`` (reference schedule only) reproduces the reference code's ``node_lock``: when
    accuracy on a split is measured, edges into that split's nodes are never pruned (sparsity and MACs
    are still counted without the lock, as the reference does) — an evaluation artefact, off by default.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if schedule == "reference":
        return _train_reference(model, data, graph, epochs=epochs, lr=lr, weight_decay=weight_decay,
                                infer_repeats=infer_repeats, lock_eval_nodes=lock_eval_nodes)
    if schedule != "freeze":
        raise UnknownName(f"unknown schedule {schedule!r}; choose 'freeze' or 'reference'")
    freeze_at = max(1, epochs // 2) if freeze_at is None else max(0, min(freeze_at, epochs))
    model.prepare(data.x, graph)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    best = {"val_acc": -1.0, "test_acc": float("nan"), "train_acc": float("nan"), "epoch": -1}
    if freeze_at == 0:
        evaluate(model, data, graph)
        model.freeze()
    for ep in range(1, epochs + 1):
        model.train()
        opt.zero_grad()
        out = model(data.x, graph)
        loss = F.cross_entropy(out[data.train_mask], data.y[data.train_mask])
        if extra_loss is not None:
            loss = loss + extra_loss(model)
        loss.backward()
        opt.step()
        if ep == freeze_at:
            evaluate(model, data, graph)  # final masks from an eval-mode pass
            model.freeze()
        if ep >= freeze_at:
            acc = evaluate(model, data, graph)
            if acc["val_acc"] > best["val_acc"]:
                best = {**acc, "epoch": ep}
    counter = MacCounter()
    final = evaluate(model, data, graph, counter)
    log.debug("trained %s: best val %.3f at epoch %d", type(model).__name__, best["val_acc"], best["epoch"])
    return {
        "test_acc": best["test_acc"],
        "val_acc": best["val_acc"],
        "train_acc": best["train_acc"],
        "best_epoch": best["epoch"],
        "final_test_acc": final["test_acc"],
        **counter.summary(),
    }


@torch.no_grad()
def _evaluate_locked(model: SparseGNN, data, graph: Graph, counter: MacCounter | None = None) -> dict[str, float]:
    """Reference-code evaluation (``eval(..., node_lock=idx_split)``): one forward per evaluated split
    (val, test) with the edges into that split's nodes locked. MACs go to ``counter`` from the val
    pass (locked edges not counted). ``train_acc`` is read from the val-locked pass (the reference
    does not report it)."""
    model.eval()
    res = {}
    for k in ("val", "test"):
        m = getattr(data, f"{k}_mask")
        model.lock_nodes(m)
        out = model(data.x, graph, counter if k == "val" else None)
        res[f"{k}_acc"] = accuracy(out, data.y, m)
        if k == "val":
            res["train_acc"] = accuracy(out, data.y, data.train_mask)
    model.lock_nodes(None)
    return res


def train_step(model: SparseGNN, data, graph: Graph, opt: torch.optim.Optimizer) -> float:
    """One full-batch training step (forward with mask recomputation, cross-entropy on the training
    nodes, backward, optimiser step); returns the loss. Also what the timing helpers measure."""
    model.train()
    opt.zero_grad()
    out = model(data.x, graph)
    loss = F.cross_entropy(out[data.train_mask], data.y[data.train_mask])
    loss.backward()
    opt.step()
    return float(loss.detach())


def reference_optimizer(model: SparseGNN, lr: float, weight_decay: float):
    """Adam plus ``ReduceLROnPlateau(max, factor 0.5, threshold 1e-4, patience 15)``, as ``run_fb.py``."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=0.5, threshold=1e-4, patience=15)
    return opt, sched


def set_reference_epoch(model: SparseGNN, epoch: int, epochs: int) -> None:
    """Mask schemes of one reference epoch: edges recomputed (``pruneall``); weights recomputed from
    the full weights in the first half (``pruneall``, ``epoch < epochs // 2``), then cumulative
    (``pruneinc``); thresholds capped at ``0.999·max|W|``; pruned weights get no gradient."""
    model.unfreeze()
    model.set_weight_mode(straight_through=False, cumulative=epoch >= epochs // 2, clamp=True)


def _train_reference(model: SparseGNN, data, graph: Graph, *, epochs: int, lr: float, weight_decay: float,
                     infer_repeats: int, lock_eval_nodes: bool = False) -> dict[str, Any]:
    """The gdmnl/Unifews ``run_fb.py`` schedule (see module docstring).

    Besides the test accuracy of the best-validation epoch (its weights and masks, ``test_acc``),
    reports ``test_acc_ckpt``: the best epoch's weights, weight masks and BatchNorm statistics
    reloaded at the end with the *last* epoch's edge masks (edge masks are not part of a state dict),
    which is what the reference's final test pass would evaluate.
    """
    model.prepare(data.x, graph)
    opt, sched = reference_optimizer(model, lr, weight_decay)
    best: dict[str, Any] = {"val_acc": -1.0, "test_acc": float("nan"), "train_acc": float("nan"), "epoch": -1}
    best_counts: dict[str, float] = {}
    best_state: dict | None = None
    for ep in range(1, epochs + 1):
        set_reference_epoch(model, ep, epochs)
        train_step(model, data, graph, opt)
        model.freeze()  # evaluation keeps the masks of this training pass
        counter = MacCounter()  # counts without locked edges, as the reference's cal_flops
        acc = _evaluate_locked(model, data, graph, counter) if lock_eval_nodes else evaluate(model, data, graph, counter)
        sched.step(acc["val_acc"])
        if acc["val_acc"] > best["val_acc"]:
            best, best_counts = {**acc, "epoch": ep}, counter.summary()
            best_state = copy.deepcopy(model.state_dict())
    final = _evaluate_locked(model, data, graph) if lock_eval_nodes else evaluate(model, data, graph)
    ckpt = final["test_acc"]
    if best_state is not None:
        model.load_state_dict(best_state)  # weights, weight masks, BN statistics; edge masks stay the last
        model.freeze()
        ckpt = (_evaluate_locked(model, data, graph) if lock_eval_nodes else evaluate(model, data, graph))["test_acc"]
    return {
        "test_acc": best["test_acc"], "val_acc": best["val_acc"], "train_acc": best["train_acc"],
        "best_epoch": best["epoch"], "final_test_acc": final["test_acc"], "test_acc_ckpt": ckpt,
        **best_counts,
    }
