"""Shared pieces of every 2-D pooling algorithm (max and average): configuration and base class.

A pooling algorithm computes ``F.max_pool2d`` / ``F.avg_pool2d`` with the layer's kernel, stride,
padding, dilation (max), ``ceil_mode``, ``count_include_pad`` and ``divisor_override`` (average),
on any input layout. It has a ``name``, ``tolerance``, ``supports(config)`` (a reason when it
cannot), ``available(device)``, ``differentiable`` and ``pool(x, config, state)``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from xflow.algsel.algorithms._base import MemoryUse, device_kind

__all__ = ["PoolConfig", "PoolAlgorithm", "pool_out_size"]


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def pool_out_size(size: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool) -> int:
    """Output length of a pooling along one axis, as ATen computes it (``ceil_mode`` drops a last
    window that would start in the right padding)."""
    num = size + 2 * padding - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)
    out = num // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


@dataclass(frozen=True)
class PoolConfig:
    """Static description of one pooling layer.

    Attributes:
        kind (str): ``'max'`` or ``'avg'``.
        kernel_size, stride, padding, dilation (tuple[int, int]): per-axis values (dilation is 1
            for average pooling).
        ceil_mode (bool), count_include_pad (bool), divisor_override (int | None),
        return_indices (bool): as in ``nn.MaxPool2d`` / ``nn.AvgPool2d``.
    """

    kind: str
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    ceil_mode: bool = False
    count_include_pad: bool = True
    divisor_override: int | None = None
    return_indices: bool = False

    @classmethod
    def from_module(cls, m: nn.Module) -> "PoolConfig":
        """Configuration of an ``nn.MaxPool2d`` or ``nn.AvgPool2d``."""
        k = _pair(m.kernel_size)
        s = _pair(m.stride if m.stride is not None else m.kernel_size)
        if isinstance(m, nn.MaxPool2d):
            return cls("max", k, s, _pair(m.padding), _pair(m.dilation), bool(m.ceil_mode),
                       return_indices=bool(m.return_indices))
        return cls("avg", k, s, _pair(m.padding), (1, 1), bool(m.ceil_mode), bool(m.count_include_pad),
                   m.divisor_override)

    def out_hw(self, h: int, w: int) -> tuple[int, int]:
        """Output height and width for an input of ``h`` × ``w``."""
        return tuple(pool_out_size(n, k, s, p, d, self.ceil_mode) for n, k, s, p, d in
                     zip((h, w), self.kernel_size, self.stride, self.padding, self.dilation))

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (lists for tuples) for JSON and tables."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def short(self) -> str:
        """Compact label, e.g. ``'maxpool k3 s2 p1'``."""
        f = lambda t: str(t[0]) if t[0] == t[1] else f"{t[0]}x{t[1]}"  # noqa: E731
        s = f"{self.kind}pool k{f(self.kernel_size)} s{f(self.stride)} p{f(self.padding)}"
        if self.dilation != (1, 1):
            s += f" d{f(self.dilation)}"
        return s + (" ceil" if self.ceil_mode else "")


class PoolAlgorithm:
    """Base class of a pooling algorithm (subclass it, set ``name``, implement :meth:`pool`)."""

    name: str = "abstract"
    tolerance: float = 1e-6
    summary: str = ""
    devices: tuple[str, ...] = ("cpu", "cuda")
    differentiable: bool = True

    def supports(self, config: PoolConfig) -> str | None:
        """``None`` if this algorithm computes ``config``, else the reason it cannot."""
        if config.return_indices:
            return f"{self.name} does not return indices (return_indices=True)"
        return None

    def available(self, device: Any = "cpu") -> str | None:
        """``None`` if the algorithm runs on ``device``, else why not."""
        kind = device_kind(device)
        return None if kind in self.devices else f"{self.name} runs on {'/'.join(self.devices)} only, not {kind}"

    def memory(self, config: PoolConfig, input_shape, itemsize: int = 4) -> MemoryUse:
        """Bytes kept across calls and transient workspace (default: none)."""
        return MemoryUse()

    def pool(self, x: torch.Tensor, config: PoolConfig, state: dict | None = None) -> torch.Tensor:
        """Pool ``x`` (N, C, H, W) as ``config`` says."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
