"""Shared pieces of the autobatch tests."""
from __future__ import annotations

import torch

from xflow import autobatch as ab
from xflow.autobatch import executor
from xflow.autobatch.bench import PRESETS
from xflow.autobatch.models import get_model


def agenda_grads(model_name: str, defer: bool, count: list | None = None):
    """``(graph, {parameter name: dense gradient or None})`` of one ``agenda`` training step of the
    tiny preset of ``model_name`` on a fixed minibatch, with weight gradients deferred (one product
    per weight) or not; ``count`` collects ``(id(weight), is_bias)`` of every product computed."""
    torch.manual_seed(0)
    model = get_model(model_name, **PRESETS["tiny"][model_name])
    batch = model.make_data(4, seed=3)
    executor.defer_weight_grads = defer
    orig = executor._Accum._product
    if count is not None:
        def counting(self, p, bias, gY, X):
            count.append((id(p), bias))
            return orig(self, p, bias, gY, X)
        executor._Accum._product = counting
    try:
        with ab.Graph("agenda") as g:
            loss = g.forward_batch(model.loss_autobatch(batch)).sum()
        loss.backward()
    finally:
        executor.defer_weight_grads = True
        executor._Accum._product = orig
    return g, {n: None if p.grad is None else p.grad.to_dense() for n, p in model.named_parameters()}
