"""Common interface of the benchmark models: one model, four ways to run a minibatch.

A :class:`DynamicModel` owns its parameters (``nn.Module``) and computes the *summed* loss of a
minibatch of examples in three ways that must agree numerically (tests check it):

* :meth:`loss_eager` — per-example eager PyTorch (a Python loop over examples and steps, one
  small kernel per operation; what a dynamic-graph user writes first);
* :meth:`loss_autobatch` — the same per-example code recorded in a lazy
  :class:`xflow.autobatch.Graph`; returns one scalar ``Expr`` per example (run with ``none``,
  ``depth`` or ``agenda``);
* :meth:`loss_handbatched` — hand-written batching (padding/packing, level-by-level), the
  expert's upper bound.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..functional import affine, affine_tanh, lookup, tanh
from ..graph import Expr

__all__ = ["DynamicModel", "tanh_affine", "fuse_activations"]

#: With a model's ``fused=True``, record ``tanh(affine(...))`` as one fused
#: :func:`~xflow.autobatch.functional.affine_tanh` node (``fused=False`` keeps DyNet's two nodes);
#: a switch for in-process measurement (``benchmarks/autobatch_switches.py``).
fuse_activations = True


def tanh_affine(fused: bool, bias: Any, *pairs: Any) -> Expr:
    """``tanh(bias + W_1 x_1 + …)``: one ``affine_tanh`` node when ``fused`` (and
    :data:`fuse_activations`), else ``tanh`` of an ``affine`` (the graph DyNet's code builds)."""
    if fused and fuse_activations:
        return affine_tanh(bias, *pairs)
    return tanh(affine(bias, *pairs))


class DynamicModel(nn.Module, ABC):
    """Base class: see module docstring. ``name`` is the registry key; ``unit`` the example noun."""

    name: str = ""
    unit: str = "examples"
    #: embedding gradients as sparse tensors (rows touched only), like DyNet's lookup parameters;
    #: with dense gradients every lookup's backward writes a full (vocab, dim) zero tensor.
    sparse_emb: bool = True

    def embed(self, table: torch.Tensor, ids: Sequence[int] | torch.Tensor) -> torch.Tensor:
        """Eager/hand-batched embedding lookup honouring :attr:`sparse_emb`."""
        return torch.nn.functional.embedding(torch.as_tensor(ids), table, sparse=self.sparse_emb)

    def lookup(self, table: torch.Tensor, index: int) -> Expr:
        """Autobatch embedding lookup honouring :attr:`sparse_emb`."""
        return lookup(table, index, sparse=self.sparse_emb)

    @abstractmethod
    def make_data(self, n: int, seed: int = 0) -> list[Any]:
        """``n`` synthetic examples matching this model's vocabulary sizes."""

    @abstractmethod
    def loss_eager(self, batch: Sequence[Any]) -> torch.Tensor:
        """Summed loss, per-example eager PyTorch."""

    @abstractmethod
    def loss_autobatch(self, batch: Sequence[Any], fused: bool = True) -> list[Expr]:
        """Per-example loss expressions recorded in the active autobatch graph.

        ``fused=False`` records the recurrent cells as elementwise ops instead of one fused gate op
        (the graph DyNet's own builders make; used for like-for-like peer comparisons).
        """

    @abstractmethod
    def loss_handbatched(self, batch: Sequence[Any]) -> torch.Tensor:
        """Summed loss, hand-batched PyTorch."""

    def n_tokens(self, batch: Sequence[Any]) -> int:
        """Number of tokens/leaves in ``batch`` (for per-token rates)."""
        return sum(len(x) for x in batch)
