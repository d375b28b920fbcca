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

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from xflow.algsel._selectable import AlgorithmFallbackWarning, SelectableMixin, resolve
from xflow.algsel.algorithms import ConvAlgorithm, ConvConfig, get_algorithm

__all__ = ["AlgoConv2d", "AlgorithmFallbackWarning", "resolve_algorithm", "match_layout"]

Selector = Callable[[nn.Module, tuple[int, ...]], str]


def resolve_algorithm(requested: str | ConvAlgorithm, config: ConvConfig, *, strict: bool = False,
                      layer: str = "") -> tuple[ConvAlgorithm, str | None]:
    """The convolution algorithm to run for ``config``: ``requested`` if it supports it, else
    ``default`` (see :func:`xflow.algsel._selectable.resolve`)."""
    return resolve(get_algorithm, requested, config, strict=strict, layer=layer)


def match_layout(y: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``y`` in ``like``'s memory layout: ``channels_last`` if ``like`` is (and is not also plain
    contiguous, as 1×1 maps are), else contiguous NCHW; no copy when ``y`` already is."""
    if y.dim() == 4 and like.dim() == 4 and not like.is_contiguous() and like.is_contiguous(
            memory_format=torch.channels_last):
        return y.contiguous(memory_format=torch.channels_last)
    return y.contiguous()


class AlgoConv2d(SelectableMixin, nn.Conv2d):
    """A 2-D convolution computed by a selectable algorithm (build it with :meth:`from_conv`).

    Attributes:
        algorithm (ConvAlgorithm | None): the algorithm in use (``None`` until a lazy selector ran).
        requested (str): what the selector asked for (may differ after a fallback).
        fallback_reason (str | None): why ``requested`` was not used.
        layer_name (str): dotted module name in the swapped model (for messages and reports).
    """

    _get_algorithm = staticmethod(get_algorithm)

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
        new.config = ConvConfig.from_module(conv)
        new._init_selection(algorithm, strict=strict, layer_name=layer_name)
        return new

    from_module = from_conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102 - see class docstring
        if self.padding_mode != "zeros":
            x = F.pad(x, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            padding = (0, 0)
        elif isinstance(self.padding, str):
            x = F.pad(x, self._reversed_padding_repeated_twice)
            padding = (0, 0)
        else:
            padding = tuple(self.padding)
        algo = self._runnable(self._algorithm_for(tuple(x.shape)), x, self.weight, self.bias)
        y = algo.conv2d(x, self.weight, self.bias, tuple(self.stride), padding,
                        tuple(self.dilation), self.groups, self._state)
        return match_layout(y, x)

    def extra_repr(self) -> str:
        return super().extra_repr() + ", " + self.algo_repr()
