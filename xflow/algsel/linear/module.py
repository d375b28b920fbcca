"""``AlgoLinear``: an ``nn.Linear`` whose forward runs a chosen :class:`LinearAlgorithm`.

Same parameters and state-dict keys as the ``nn.Linear`` it wraps (shared unless copied); the
algorithm is fixed or picked per input shape by a selector; unsupported or inference-only cases
fall back to ``default`` as for convolutions (:mod:`xflow.algsel._selectable`).
"""
from __future__ import annotations

import torch
from torch import nn

from xflow.algsel._selectable import SelectableMixin
from xflow.algsel.linear import LinearConfig, get_linear_algorithm

__all__ = ["AlgoLinear"]


class AlgoLinear(SelectableMixin, nn.Linear):
    """A linear layer computed by a selectable algorithm (build it with :meth:`from_module`)."""

    _get_algorithm = staticmethod(get_linear_algorithm)

    @classmethod
    def from_module(cls, lin: nn.Linear, algorithm, *, strict: bool = False, layer_name: str = "",
                    copy_weights: bool = False) -> "AlgoLinear":
        """Wrap ``lin`` (sharing its parameters unless ``copy_weights``) to run ``algorithm``."""
        new = cls.__new__(cls)
        nn.Module.__init__(new)
        new.in_features, new.out_features = lin.in_features, lin.out_features
        if copy_weights:
            new.weight = nn.Parameter(lin.weight.detach().clone(), requires_grad=lin.weight.requires_grad)
            new.bias = None if lin.bias is None else nn.Parameter(lin.bias.detach().clone(),
                                                                  requires_grad=lin.bias.requires_grad)
        else:
            new.weight, new.bias = lin.weight, lin.bias
        new.train(lin.training)
        new.config = LinearConfig.from_module(lin)
        new._init_selection(algorithm, strict=strict, layer_name=layer_name)
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        algo = self._runnable(self._algorithm_for(tuple(x.shape)), x, self.weight, self.bias)
        return algo.linear(x, self.weight, self.bias, self._state)

    def extra_repr(self) -> str:
        return super().extra_repr() + ", " + self.algo_repr()
