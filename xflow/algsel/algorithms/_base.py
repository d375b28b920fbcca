"""Shared pieces of every convolution algorithm: the layer configuration and the base class.

A convolution algorithm is an object with a ``name``, a ``supports(config)`` check that returns
``None`` (supported) or a human-readable reason, a per-algorithm numeric ``tolerance`` (relative to
the largest output magnitude) and ``conv2d(x, weight, bias, stride, padding, dilation, groups)``
which has exactly the semantics of :func:`torch.nn.functional.conv2d` with *numeric, symmetric*
padding (the wrapping module turns string padding and non-zero padding modes into an explicit
``F.pad`` first). Algorithms are written with differentiable torch operations, so the backward
pass comes from autograd (those that cannot be differentiated say ``differentiable = False``).

``conv2d`` also takes an optional per-layer ``state`` dict owned by the caller
(:class:`~xflow.algsel.module.AlgoConv2d`): algorithms whose weight transform is costly (FFT,
Winograd, packed layouts) keep it there via :func:`cached_transform` — the standard precomputation
of filter transforms. It is recomputed whenever the weight tensor, its storage or its version
counter changes (an optimizer step), so in training it is computed once per weight update and
its gradient flows back to the weight through the transform's VJP.

Each algorithm also says on which devices it runs (:meth:`ConvAlgorithm.available`) and how much
memory it needs (:meth:`ConvAlgorithm.memory`: bytes kept across calls — cached transforms — and
transient workspace), which the autotuner's memory budget uses.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["ConvConfig", "ConvAlgorithm", "ConvGeometry", "MemoryUse", "out_size", "pad_input", "add_bias",
           "cached_transform", "weight_stamp", "device_kind"]


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

    @classmethod
    def from_config(cls, config: "ConvConfig", input_shape: tuple[int, ...]) -> "ConvGeometry":
        """Geometry of layer ``config`` applied to an input of ``input_shape`` (N, C, H, W)."""
        n, c, h, w = input_shape
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = config.kernel_size, config.stride, config.padding, config.dilation
        return cls(n, c, h, w, config.out_channels, config.in_channels // config.groups, kh, kw, sh, sw, ph, pw,
                   dh, dw, out_size(h, kh, sh, ph, dh), out_size(w, kw, sw, pw, dw))


@dataclass(frozen=True)
class MemoryUse:
    """Memory an algorithm needs for one layer, in bytes.

    Attributes:
        cached (int): kept across calls (cached weight transforms / packed weights) — what a model
            of such layers holds in addition to its weights.
        workspace (int): transient peak during one call beyond input, output and weights
            (column buffers, transformed tiles, spectra).
    """

    cached: int = 0
    workspace: int = 0


def device_kind(device: Any) -> str:
    """``'cpu'`` / ``'cuda'`` / … of a device, device string or tensor."""
    if isinstance(device, torch.Tensor):
        return device.device.type
    return torch.device(device).type


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
    #: Device kinds the algorithm runs on.
    devices: tuple[str, ...] = ("cpu", "cuda")
    #: Whether autograd can differentiate :meth:`conv2d` (False: inference only).
    differentiable: bool = True

    def supports(self, config: ConvConfig) -> str | None:
        """``None`` if this algorithm computes ``config`` exactly, else the reason it cannot."""
        return None

    def available(self, device: Any = "cpu") -> str | None:
        """``None`` if the algorithm runs on ``device`` with this torch build, else why not."""
        kind = device_kind(device)
        if kind not in self.devices:
            return f"{self.name} runs on {'/'.join(self.devices)} only, not {kind}"
        return None

    def memory(self, config: ConvConfig, input_shape: tuple[int, ...], itemsize: int = 4) -> MemoryUse:
        """Bytes kept across calls and transient workspace for ``config`` on ``input_shape``
        (estimates from the shapes; the default: nothing beyond input, output and weights)."""
        return MemoryUse()

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


class _TransformHolder:
    """Carries a cached transform, the function that made it and its VJP into the autograd Function."""

    __slots__ = ("value", "fn", "vjp")

    def __init__(self, value, fn, vjp):
        self.value, self.fn, self.vjp = value, fn, vjp


class _CachedTransform(torch.autograd.Function):
    """Returns a transform of ``weight`` computed earlier (no autograd graph kept across steps); its
    backward maps the transform's gradient to the weight's: ``vjp(grad)`` when the algorithm gives
    one (a linear transform's transpose), else autograd through ``fn`` recomputed."""

    @staticmethod
    def forward(ctx, weight, holder):  # noqa: D102
        ctx.holder = holder
        ctx.save_for_backward(weight)
        return holder.value.detach()

    @staticmethod
    def backward(ctx, grad):  # noqa: D102
        (weight,) = ctx.saved_tensors
        h = ctx.holder
        if h.vjp is not None:
            return h.vjp(grad), None
        with torch.enable_grad():
            w = weight.detach().requires_grad_(True)
            return torch.autograd.grad(h.fn(w), w, grad)[0], None


def weight_stamp(weight: torch.Tensor) -> tuple:
    """What identifies the *values* of ``weight`` cheaply: its in-place version counter, storage
    address, dtype, device and shape. An optimizer step (in-place update), ``load_state_dict``
    (in-place copy), ``weight.data = ...`` or a device move all change it."""
    return (weight._version, weight.data_ptr(), weight.dtype, weight.device, tuple(weight.shape))


def cached_transform(state: dict | None, key: Any, weight: torch.Tensor, fn, vjp=None) -> torch.Tensor:
    """``fn(weight)`` (a transform of the weight: Winograd ``G g Gᵀ``, an FFT spectrum, a packed
    layout), memoised in ``state[key]`` and recomputed when :func:`weight_stamp` changes.

    Inference (autograd not recording through ``weight``): the memo is returned as is. Training
    (``weight.requires_grad`` under grad mode): the memo is returned through an autograd Function,
    so the transform is computed once per weight update — not once per forward — and its backward
    is ``vjp(grad_of_transform) -> grad_of_weight`` (or autograd through ``fn`` when ``vjp`` is
    ``None``). The memo holds no autograd graph, so nothing leaks across steps. ``state=None``
    computes ``fn(weight)`` every call (no caching at all).
    """
    if state is None:
        return fn(weight)
    stamp = weight_stamp(weight)
    hit = state.get(key)
    if hit is not None and hit[0] is weight and hit[1] == stamp:
        value = hit[2]
    else:
        with torch.no_grad():
            value = fn(weight)
        state[key] = (weight, stamp, value)
    if torch.is_grad_enabled() and weight.requires_grad:
        return _CachedTransform.apply(weight, _TransformHolder(value, fn, vjp))
    return value
