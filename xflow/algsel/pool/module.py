"""``AlgoMaxPool2d`` / ``AlgoAvgPool2d``: pooling layers whose forward runs a chosen
:class:`PoolAlgorithm` (subclasses of ``nn.MaxPool2d`` / ``nn.AvgPool2d``, same attributes). The
output keeps the input's memory layout; fallbacks as for convolutions."""
from __future__ import annotations

import torch
from torch import nn

from xflow.algsel._selectable import SelectableMixin
from xflow.algsel.module import match_layout
from xflow.algsel.pool import PoolConfig, get_pool_algorithm

__all__ = ["AlgoMaxPool2d", "AlgoAvgPool2d", "wrap_pool"]

_MAX_ATTRS = ("kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode")
_AVG_ATTRS = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override")


class _PoolMixin(SelectableMixin):
    _get_algorithm = staticmethod(get_pool_algorithm)
    _attrs: tuple[str, ...] = ()

    @classmethod
    def from_module(cls, pool: nn.Module, algorithm, *, strict: bool = False, layer_name: str = "",
                    copy_weights: bool = False):
        """Wrap ``pool`` to run ``algorithm`` (``copy_weights`` is accepted for symmetry; pools
        have no parameters)."""
        new = cls.__new__(cls)
        nn.Module.__init__(new)
        for a in cls._attrs:
            setattr(new, a, getattr(pool, a))
        new.train(pool.training)
        new.config = PoolConfig.from_module(pool)
        new._init_selection(algorithm, strict=strict, layer_name=layer_name)
        return new

    def forward(self, x: torch.Tensor):  # noqa: D102
        algo = self._runnable(self._algorithm_for(tuple(x.shape)), x)
        y = algo.pool(x, self.config, self._state)
        return y if isinstance(y, tuple) else match_layout(y, x)

    def extra_repr(self) -> str:
        return super().extra_repr() + ", " + self.algo_repr()


class AlgoMaxPool2d(_PoolMixin, nn.MaxPool2d):
    """``nn.MaxPool2d`` computed by a selectable pooling algorithm."""

    _attrs = _MAX_ATTRS


class AlgoAvgPool2d(_PoolMixin, nn.AvgPool2d):
    """``nn.AvgPool2d`` computed by a selectable pooling algorithm."""

    _attrs = _AVG_ATTRS


def wrap_pool(pool: nn.Module, algorithm, **kw):
    """The ``Algo*Pool2d`` for ``pool`` (max or average) running ``algorithm``."""
    cls = AlgoMaxPool2d if isinstance(pool, nn.MaxPool2d) else AlgoAvgPool2d
    return cls.from_module(pool, algorithm, **kw)
