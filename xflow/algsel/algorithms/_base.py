"""Shared pieces of every convolution algorithm: the layer configuration and the base class.

A convolution algorithm is an object with a ``name``, a ``supports(config)`` check that returns
``None`` (supported) or a human-readable reason, a per-algorithm numeric ``tolerance`` (relative to
the largest output magnitude) and ``conv2d(x, weight, bias, stride, padding, dilation, groups)``
which has exactly the semantics of :func:`torch.nn.functional.conv2d` with *numeric, symmetric*
padding (the wrapping module turns string padding and non-zero padding modes into an explicit
``F.pad`` first). Every algorithm is written with differentiable torch operations, so the backward
pass comes from autograd.

``conv2d`` also takes an optional per-layer ``state`` dict owned by the caller
(:class:`~xflow.algsel.module.AlgoConv2d`): algorithms whose weight transform is costly (FFT,
Winograd) keep it there via :func:`cached_transform` while gradients are off — the standard
inference-time precomputation of filter transforms. It is recomputed whenever the weight tensor,
its storage or its version counter changes, and never used while autograd records.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["ConvConfig", "ConvAlgorithm", "ConvGeometry", "out_size", "pad_input", "add_bias",
           "cached_transform"]


def out_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Output length of a convolution along one axis:
    ``floor((size + 2·padding − dilation·(kernel − 1) − 1) / stride) + 1``."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


@dataclass(frozen=True)
class ConvGeometry:
    """Sizes of one ``conv2d`` call, read from the input, the weight and the per-axis settings.

    Attributes:
        n, c, h, w (int): input batch, channels, height, width.
        o, cg, kh, kw (int): output channels, input channels per group, kernel height and width.
        sh, sw, ph, pw, dh, dw (int): stride, (symmetric) padding and dilation per axis.
        ho, wo (int): output height and width (:func:`out_size` along each axis).
    """

    n: int
    c: int
    h: int
    w: int
    o: int
    cg: int
    kh: int
    kw: int
    sh: int
    sw: int
    ph: int
    pw: int
    dh: int
    dw: int
    ho: int
    wo: int

    @classmethod
    def of(cls, x: torch.Tensor, weight: torch.Tensor, stride: tuple[int, int], padding: tuple[int, int],
           dilation: tuple[int, int]) -> "ConvGeometry":
        """Geometry of cross-correlating ``x`` (N, C, H, W) with ``weight`` (O, C/g, kh, kw)."""
        n, c, h, w = x.shape
        o, cg, kh, kw = weight.shape
        (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
        return cls(n, c, h, w, o, cg, kh, kw, sh, sw, ph, pw, dh, dw,
                   out_size(h, kh, sh, ph, dh), out_size(w, kw, sw, pw, dw))


def pad_input(x: torch.Tensor, padding: tuple[int, int]) -> torch.Tensor:
    """``x`` zero-padded by ``padding = (ph, pw)`` on both sides of H and W (``x`` itself if zero)."""
    ph, pw = padding
    return F.pad(x, (pw, pw, ph, ph)) if (ph or pw) else x


@dataclass(frozen=True)
class ConvConfig:
    """Static description of one 2-D convolution layer (what an algorithm's support depends on).

    Args:
        in_channels (int), out_channels (int): channel counts.
        kernel_size, stride, padding, dilation (tuple[int, int]): per-axis (H, W) values; padding is
            numeric and symmetric here (string/asymmetric padding is applied beforehand by the module).
        groups (int): channel groups (``in_channels`` for depthwise).
        bias (bool): whether the layer adds a bias.
    """

    in_channels: int
    out_channels: int
    kernel_size: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    bias: bool = True

    @classmethod
    def from_module(cls, conv: torch.nn.Conv2d) -> "ConvConfig":
        """Configuration of an ``nn.Conv2d`` (string padding is resolved to its numeric equivalent
        where symmetric, else reported as the explicit pre-padding's zero)."""
        pad = conv.padding
        if isinstance(pad, str):
            pad = (0, 0)  # the module pre-pads explicitly
        elif conv.padding_mode != "zeros":
            pad = (0, 0)
        return cls(
            in_channels=conv.in_channels,
            out_channels=conv.out_channels,
            kernel_size=tuple(conv.kernel_size),
            stride=tuple(conv.stride),
            padding=tuple(pad),
            dilation=tuple(conv.dilation),
            groups=conv.groups,
            bias=conv.bias is not None,
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (lists for tuples) for JSON and tables."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def short(self) -> str:
        """Compact label, e.g. ``'64→128 k3x3 s1 p1 d1 g1'``."""
        k, s, p, d = self.kernel_size, self.stride, self.padding, self.dilation
        fmt = lambda t: str(t[0]) if t[0] == t[1] else f"{t[0]}x{t[1]}"  # noqa: E731
        return (f"{self.in_channels}→{self.out_channels} k{k[0]}x{k[1]} s{fmt(s)} p{fmt(p)} "
                f"d{fmt(d)} g{self.groups}")


class ConvAlgorithm:
    """Base class of a 2-D convolution algorithm (subclass it, set ``name`` and implement
    :meth:`conv2d`; override :meth:`supports` when some configurations are out of reach).

    Attributes:
        name (str): registry name, e.g. ``'im2col'``.
        tolerance (float): largest accepted ``max|y − y_ref| / max|y_ref|`` against
            ``F.conv2d`` in float32 (the tests use it).
        summary (str): one line saying what the algorithm does.
    """

    name: str = "abstract"
    tolerance: float = 1e-5
    summary: str = ""

    def supports(self, config: ConvConfig) -> str | None:
        """``None`` if this algorithm computes ``config`` exactly, else the reason it cannot."""
        return None

    def conv2d(
        self,
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        stride: tuple[int, int],
        padding: tuple[int, int],
        dilation: tuple[int, int],
        groups: int,
        state: dict | None = None,
    ) -> torch.Tensor:
        """Cross-correlate ``x`` (N, C, H, W) with ``weight`` (O, C/groups, kh, kw), add ``bias``."""
        raise NotImplementedError

    def __call__(self, x, weight, bias=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1,
                 state=None):
        """Shorthand for :meth:`conv2d` with ``F.conv2d``-like defaults (ints are broadcast to pairs)."""
        pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
        return self.conv2d(x, weight, bias, pair(stride), pair(padding), pair(dilation), groups, state)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def add_bias(y: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``y + bias`` broadcast over (N, ·, H, W), or ``y`` when there is no bias."""
    return y if bias is None else y + bias.view(1, -1, 1, 1)


def cached_transform(state: dict | None, key: Any, weight: torch.Tensor, fn) -> torch.Tensor:
    """``fn()`` (a transform of ``weight``), memoised in ``state[key]`` when autograd is not
    recording through ``weight``; the memo is invalidated when the weight object, its storage
    (device moves) or its in-place version counter change."""
    if state is None or (torch.is_grad_enabled() and weight.requires_grad):
        return fn()
    stamp = (weight._version, weight.data_ptr(), weight.dtype, weight.device)
    hit = state.get(key)
    if hit is not None and hit[0] is weight and hit[1] == stamp:
        return hit[2]
    value = fn()
    state[key] = (weight, stamp, value)
    return value
