"""``AlgoConv2d``: an ``nn.Conv2d`` whose forward runs a chosen :class:`ConvAlgorithm`.

It *is* an ``nn.Conv2d`` (same attributes, same ``weight``/``bias`` parameters and state-dict keys),
so code that inspects convolutions keeps working and a swapped model can be swapped again. String
padding (``'same'``) and non-zero padding modes are applied with an explicit ``F.pad`` before the
algorithm, exactly as ``nn.Conv2d`` does. The algorithm can be fixed, or chosen lazily per input
shape by a selector ``(module, input_shape) -> name`` on the first forward with that shape.

The output is returned in the input's memory layout (NCHW or ``channels_last``), as ``F.conv2d``
does, so a layer's algorithm never changes the layout the rest of the model sees. An
inference-only algorithm (``differentiable = False``) asked to run while autograd records falls
back to ``default`` for that call (with one :class:`AlgorithmFallbackWarning` per layer).
"""
from __future__ import annotations

import logging
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from xflow.algsel.algorithms import ConvAlgorithm, ConvConfig, get_algorithm
from xflow.errors import UnsupportedOperator

__all__ = ["AlgoConv2d", "AlgorithmFallbackWarning", "resolve_algorithm", "match_layout"]

log = logging.getLogger(__name__)

Selector = Callable[[nn.Module, tuple[int, ...]], str]


class AlgorithmFallbackWarning(UserWarning):
    """A requested algorithm does not support a layer; the layer uses ``default`` instead."""


def match_layout(y: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``y`` in ``like``'s memory layout: ``channels_last`` if ``like`` is (and is not also plain
    contiguous, as 1×1 maps are), else contiguous NCHW; no copy when ``y`` already is."""
    if y.dim() == 4 and like.dim() == 4 and not like.is_contiguous() and like.is_contiguous(
            memory_format=torch.channels_last):
        return y.contiguous(memory_format=torch.channels_last)
    return y.contiguous()


def resolve_algorithm(
    requested: str | ConvAlgorithm, config: ConvConfig, *, strict: bool = False, layer: str = ""
) -> tuple[ConvAlgorithm, str | None]:
    """The algorithm to run for ``config``: ``requested`` if it supports it, else ``default``.

    Returns ``(algorithm, fallback_reason)``; the reason is ``None`` when no fallback happened.

    Raises:
        UnknownName: ``requested`` is not a registered algorithm.
        UnsupportedOperator: in ``strict`` mode, when ``requested`` cannot compute ``config``.
    """
    algo = get_algorithm(requested)
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
    warnings.warn(msg, AlgorithmFallbackWarning, stacklevel=5)
    log.info(msg)
    return get_algorithm("default"), reason


class AlgoConv2d(nn.Conv2d):
    """A 2-D convolution computed by a selectable algorithm (build it with :meth:`from_conv`).

    Attributes:
        algorithm (ConvAlgorithm | None): the algorithm in use (``None`` until a lazy selector ran).
        requested (str): what the selector asked for (may differ after a fallback).
        fallback_reason (str | None): why ``requested`` was not used.
        layer_name (str): dotted module name in the swapped model (for messages and reports).
    """

    algorithm: ConvAlgorithm | None

    @classmethod
    def from_conv(
        cls,
        conv: nn.Conv2d,
        algorithm: str | ConvAlgorithm | Selector,
        *,
        strict: bool = False,
        layer_name: str = "",
        copy_weights: bool = False,
    ) -> "AlgoConv2d":
        """Wrap ``conv`` (sharing its parameters unless ``copy_weights``) to run ``algorithm``.

        ``algorithm`` is a name, an instance, or a selector ``(module, input_shape) -> name``
        evaluated on the first forward with each new input shape.
        """
        new = cls.__new__(cls)
        nn.Module.__init__(new)
        for attr in ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
                     "transposed", "output_padding", "groups", "padding_mode",
                     "_reversed_padding_repeated_twice"):
            setattr(new, attr, getattr(conv, attr))
        if copy_weights:
            new.weight = nn.Parameter(conv.weight.detach().clone(), requires_grad=conv.weight.requires_grad)
            new.bias = None if conv.bias is None else nn.Parameter(
                conv.bias.detach().clone(), requires_grad=conv.bias.requires_grad)
        else:
            new.weight = conv.weight
            new.bias = conv.bias
        new.train(conv.training)
        new.layer_name = layer_name
        new.strict = strict
        new.config = ConvConfig.from_module(conv)
        new._selector = None
        new._by_shape = {}
        new._state = {}  # per-layer scratch: cached weight transforms (inference only)
        new.algorithm, new.requested, new.fallback_reason = None, "", None
        if callable(algorithm) and not isinstance(algorithm, (str, ConvAlgorithm)):
            new._selector = algorithm
        else:
            new._set(algorithm)
        return new

    def _set(self, requested: str | ConvAlgorithm) -> ConvAlgorithm:
        algo, reason = resolve_algorithm(requested, self.config, strict=self.strict, layer=self.layer_name)
        self.algorithm, self.fallback_reason = algo, reason
        self.requested = requested if isinstance(requested, str) else requested.name
        return algo

    def _algorithm_for(self, shape: tuple[int, ...]) -> ConvAlgorithm:
        if self._selector is None:
            return self.algorithm
        if shape not in self._by_shape:
            self._by_shape[shape] = self._set(self._selector(self, shape))
        algo = self._by_shape[shape]
        self.algorithm = algo
        return algo

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102 - see class docstring
        if self.padding_mode != "zeros":
            x = F.pad(x, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            padding = (0, 0)
        elif isinstance(self.padding, str):
            x = F.pad(x, self._reversed_padding_repeated_twice)
            padding = (0, 0)
        else:
            padding = tuple(self.padding)
        algo = self._algorithm_for(tuple(x.shape))
        if not algo.differentiable and torch.is_grad_enabled() and (
                x.requires_grad or self.weight.requires_grad):
            algo = self._training_fallback(algo)
        y = algo.conv2d(x, self.weight, self.bias, tuple(self.stride), padding,
                        tuple(self.dilation), self.groups, self._state)
        return match_layout(y, x)

    def _training_fallback(self, algo: ConvAlgorithm) -> ConvAlgorithm:
        if not getattr(self, "_warned_training", False):
            self._warned_training = True
            msg = (f"layer {self.layer_name!r}: {algo.name} is inference-only; this forward records autograd, "
                   f"so it runs 'default' (tune with mode='train' for a training model)")
            warnings.warn(msg, AlgorithmFallbackWarning, stacklevel=3)
        return get_algorithm("default")

    def extra_repr(self) -> str:
        name = self.algorithm.name if self.algorithm is not None else "<per-shape selector>"
        s = super().extra_repr() + f", algorithm={name}"
        if self.fallback_reason:
            s += f" (requested {self.requested})"
        return s
