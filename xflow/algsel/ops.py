"""The operator families algorithm selection covers, each with its registry and swapped module.

==========  ==================================  =========================================
family      modules                             algorithms
==========  ==================================  =========================================
``conv2d``  ``nn.Conv2d``                       :mod:`xflow.algsel.algorithms`
``linear``  ``nn.Linear`` (not MHA's out_proj)  :mod:`xflow.algsel.linear`
``pool``    ``nn.MaxPool2d``, ``nn.AvgPool2d``  :mod:`xflow.algsel.pool`
==========  ==================================  =========================================

``nn.MultiheadAttention`` calls its ``out_proj`` through ``F.multi_head_attention_forward`` with
the raw weight, never through the Linear's ``forward``, so swapping it would be silently ignored:
it is left out. Model-wide *layouts* (``nchw``, ``channels_last``) are the other axis of choice:
:func:`set_layout` makes a model convert its 4-D input to the layout before running, after which
every framework op follows the input's layout.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from xflow.algsel.algorithms import ConvConfig, get_algorithm, list_algorithms
from xflow.algsel.linear import LinearConfig, get_linear_algorithm, list_linear_algorithms
from xflow.algsel.linear.module import AlgoLinear
from xflow.algsel.module import AlgoConv2d
from xflow.algsel.pool import PoolConfig, get_pool_algorithm, list_pool_algorithms
from xflow.algsel.pool.module import wrap_pool
from xflow.errors import UnknownName

__all__ = ["OpFamily", "FAMILIES", "OPS", "family", "family_of", "LAYOUTS", "set_layout", "model_layout"]


@dataclass(frozen=True)
class OpFamily:
    """One operator family: which modules it swaps, its registry, its configuration and wrapper."""

    name: str
    module_types: tuple[type, ...]
    get: Callable[[Any], Any]
    names: Callable[..., list[str]]
    config_of: Callable[[nn.Module], Any]
    wrap: Callable[..., nn.Module]
    excluded_types: tuple[type, ...] = ()

    def matches(self, module: nn.Module) -> bool:
        """Whether ``module`` belongs to this family."""
        return isinstance(module, self.module_types) and type(module) not in self.excluded_types

    def layers(self, model: nn.Module) -> list[tuple[str, nn.Module]]:
        """``(name, module)`` of every module of this family in ``model``, in module order."""
        return [(n, m) for n, m in model.named_modules() if self.matches(m)]


def _conv_family() -> OpFamily:
    return OpFamily("conv2d", (nn.Conv2d,), get_algorithm, list_algorithms, ConvConfig.from_module,
                    AlgoConv2d.from_module)


def _linear_family() -> OpFamily:
    return OpFamily("linear", (nn.Linear,), get_linear_algorithm, list_linear_algorithms,
                    LinearConfig.from_module, AlgoLinear.from_module,
                    excluded_types=(nn.modules.linear.NonDynamicallyQuantizableLinear,))


def _pool_family() -> OpFamily:
    return OpFamily("pool", (nn.MaxPool2d, nn.AvgPool2d), get_pool_algorithm, list_pool_algorithms,
                    PoolConfig.from_module, wrap_pool)


FAMILIES: dict[str, OpFamily] = {f.name: f for f in (_conv_family(), _linear_family(), _pool_family())}
#: Family names, in tuning order.
OPS: tuple[str, ...] = tuple(FAMILIES)


def family(name: str) -> OpFamily:
    """The family called ``name``.

    Raises:
        UnknownName: not one of :data:`OPS`.
    """
    if name not in FAMILIES:
        raise UnknownName(f"unknown operator family {name!r}; choose from {', '.join(OPS)}")
    return FAMILIES[name]


def family_of(module: nn.Module) -> OpFamily | None:
    """The family ``module`` belongs to, or ``None``."""
    for f in FAMILIES.values():
        if f.matches(module):
            return f
    return None


#: Model-wide memory layouts the autotuner chooses between.
LAYOUTS: dict[str, torch.memory_format] = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}


class _ToLayout:
    """Forward pre-hook converting a model's 4-D floating-point inputs to one memory layout."""

    def __init__(self, layout: str) -> None:
        self.layout = layout

    def __call__(self, module: nn.Module, args: tuple) -> tuple:
        fmt = LAYOUTS[self.layout]
        return tuple(a.contiguous(memory_format=fmt) if isinstance(a, torch.Tensor) and a.dim() == 4
                     and a.is_floating_point() else a for a in args)


def set_layout(model: nn.Module, layout: str) -> nn.Module:
    """Make ``model`` (in place) run in ``layout``: ``'channels_last'`` converts its 4-D input to
    NHWC strides on every call (framework ops then follow the input's layout; weights stay as
    they are, so a model sharing weights with another is not changed); ``'nchw'`` removes it.

    Raises:
        UnknownName: ``layout`` is not one of :data:`LAYOUTS`.
    """
    if layout not in LAYOUTS:
        raise UnknownName(f"unknown layout {layout!r}; choose from {', '.join(LAYOUTS)}")
    for k in [k for k, h in model._forward_pre_hooks.items() if isinstance(h, _ToLayout)]:
        del model._forward_pre_hooks[k]
    if layout != "nchw":
        model.register_forward_pre_hook(_ToLayout(layout))
    return model


def model_layout(model: nn.Module) -> str:
    """The layout :func:`set_layout` gave ``model`` (``'nchw'`` when none)."""
    for h in model._forward_pre_hooks.values():
        if isinstance(h, _ToLayout):
            return h.layout
    return "nchw"
