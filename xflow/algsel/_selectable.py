"""What every swapped layer shares: an algorithm picked by name, instance or a per-shape selector,
fallback to ``default`` (with a warning, or an error in ``strict`` mode) where it cannot compute the
layer, and ``default`` for a training forward through an inference-only algorithm.

Used by :class:`~xflow.algsel.module.AlgoConv2d`, :class:`~xflow.algsel.linear.module.AlgoLinear`
and :class:`~xflow.algsel.pool.module.AlgoMaxPool2d` / ``AlgoAvgPool2d``; each sets
``_get_algorithm`` (its family's registry lookup) and ``config``.
"""
from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from typing import Any

import torch

from xflow.errors import UnsupportedOperator

__all__ = ["SelectableMixin", "AlgorithmFallbackWarning", "resolve"]

log = logging.getLogger(__name__)


class AlgorithmFallbackWarning(UserWarning):
    """A requested algorithm does not support a layer; the layer uses ``default`` instead."""


def resolve(get: Callable[[Any], Any], requested: Any, config: Any, *, strict: bool = False,
            layer: str = "") -> tuple[Any, str | None]:
    """The algorithm to run for ``config``: ``requested`` if it supports it, else ``default``.

    Returns ``(algorithm, fallback_reason)``; the reason is ``None`` when no fallback happened.

    Raises:
        UnknownName: ``requested`` is not registered.
        UnsupportedOperator: in ``strict`` mode, when ``requested`` cannot compute ``config``.
    """
    algo = get(requested)
    reason = algo.supports(config)
    if reason is None:
        return algo, None
    where = f"layer {layer!r} ({config.short()})" if layer else config.short()
    if strict:
        raise UnsupportedOperator(
            f"{where}: {reason}; choose another algorithm for this layer or pass strict=False "
            f"to fall back to 'default'"
        )
    msg = f"{where}: {reason}; falling back to 'default'"
    warnings.warn(msg, AlgorithmFallbackWarning, stacklevel=6)
    log.info(msg)
    return get("default"), reason


class SelectableMixin:
    """Algorithm bookkeeping of a swapped layer (see the module docstring)."""

    _get_algorithm: Callable[[Any], Any]
    config: Any

    def _init_selection(self, algorithm: Any, *, strict: bool, layer_name: str) -> None:
        self.layer_name = layer_name
        self.strict = strict
        self._selector = None
        self._by_shape: dict[tuple, Any] = {}
        self._state: dict = {}  # per-layer scratch: cached weight transforms
        self.algorithm, self.requested, self.fallback_reason = None, "", None
        if callable(algorithm) and not isinstance(algorithm, str) and not hasattr(algorithm, "supports"):
            self._selector = algorithm
        else:
            self._set(algorithm)

    def _set(self, requested: Any) -> Any:
        get = type(self)._get_algorithm
        algo, reason = resolve(get, requested, self.config, strict=self.strict, layer=self.layer_name)
        self.algorithm, self.fallback_reason = algo, reason
        self.requested = requested if isinstance(requested, str) else requested.name
        return algo

    def _algorithm_for(self, shape: tuple[int, ...]) -> Any:
        if self._selector is None:
            return self.algorithm
        if shape not in self._by_shape:
            self._by_shape[shape] = self._set(self._selector(self, shape))
        algo = self._by_shape[shape]
        self.algorithm = algo
        return algo

    def _runnable(self, algo: Any, x: torch.Tensor, *params: torch.Tensor | None) -> Any:
        """``algo``, or ``default`` when ``algo`` is inference-only and autograd records."""
        if algo.differentiable or not torch.is_grad_enabled():
            return algo
        if not (x.requires_grad or any(p is not None and p.requires_grad for p in params)):
            return algo
        if not getattr(self, "_warned_training", False):
            self._warned_training = True
            msg = (f"layer {self.layer_name!r}: {algo.name} is inference-only; this forward records autograd, "
                   f"so it runs 'default' (tune with mode='train' for a training model)")
            warnings.warn(msg, AlgorithmFallbackWarning, stacklevel=4)
        return type(self)._get_algorithm("default")

    def algo_repr(self) -> str:
        """``algorithm=<name>`` for ``extra_repr``."""
        name = self.algorithm.name if self.algorithm is not None else "<per-shape selector>"
        s = f"algorithm={name}"
        if self.fallback_reason:
            s += f" (requested {self.requested})"
        return s
