"""Shared pieces of every Linear (MatMul) algorithm: the layer configuration and the base class.

A linear algorithm computes ``y = x Wᵀ + b`` for ``x`` of shape (…, K), ``W`` (N, K), with the
semantics of :func:`torch.nn.functional.linear`. Like the convolution algorithms it has a
``name``, a ``tolerance`` (max relative error against ``F.linear`` in float32), ``supports``,
``available(device)``, ``memory(config, input_shape)`` and ``differentiable``; weight transforms
(a transposed or packed copy) are kept per layer with
:func:`xflow.algsel.algorithms._base.cached_transform`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

from xflow.algsel.algorithms._base import MemoryUse, device_kind

__all__ = ["LinearConfig", "LinearAlgorithm", "rows"]


@dataclass(frozen=True)
class LinearConfig:
    """Static description of one linear layer: ``in_features`` K, ``out_features`` N, ``bias``."""

    in_features: int
    out_features: int
    bias: bool = True

    @classmethod
    def from_module(cls, lin: torch.nn.Linear) -> "LinearConfig":
        """Configuration of an ``nn.Linear``."""
        return cls(lin.in_features, lin.out_features, lin.bias is not None)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON and tables."""
        return asdict(self)

    def short(self) -> str:
        """Compact label, e.g. ``'linear 4096→1000'``."""
        return f"linear {self.in_features}→{self.out_features}" + ("" if self.bias else " nobias")


def rows(input_shape: tuple[int, ...]) -> int:
    """Number of rows M of the GEMM: the product of all leading dimensions."""
    m = 1
    for d in input_shape[:-1]:
        m *= int(d)
    return m


class LinearAlgorithm:
    """Base class of a linear algorithm (subclass it, set ``name``, implement :meth:`linear`)."""

    name: str = "abstract"
    tolerance: float = 1e-5
    summary: str = ""
    devices: tuple[str, ...] = ("cpu", "cuda")
    differentiable: bool = True

    def supports(self, config: LinearConfig) -> str | None:
        """``None`` if this algorithm computes ``config``, else the reason it cannot."""
        return None

    def available(self, device: Any = "cpu") -> str | None:
        """``None`` if the algorithm runs on ``device``, else why not."""
        kind = device_kind(device)
        return None if kind in self.devices else f"{self.name} runs on {'/'.join(self.devices)} only, not {kind}"

    def memory(self, config: LinearConfig, input_shape: tuple[int, ...], itemsize: int = 4) -> MemoryUse:
        """Bytes kept across calls and transient workspace (default: none)."""
        return MemoryUse()

    def linear(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
               state: dict | None = None) -> torch.Tensor:
        """``x Wᵀ + b``."""
        raise NotImplementedError

    def __call__(self, x, weight, bias=None, state=None):
        """Shorthand for :meth:`linear`."""
        return self.linear(x, weight, bias, state)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
