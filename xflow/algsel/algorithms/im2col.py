r"""``im2col``: unfold the input into a column matrix, then one GEMM per group.

.. math::
    X_{col} = \mathrm{unfold}(x) \in \mathbb{R}^{N \times (C k_h k_w) \times (H_o W_o)},\qquad
    Y = W_{(O \times C k_h k_w)}\, X_{col}

The classic Caffe lowering: one large, efficient GEMM at the price of a buffer
:math:`k_h k_w` times the input. Every configuration is supported.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from xflow.algsel.algorithms._base import ConvAlgorithm, ConvConfig, ConvGeometry, MemoryUse, add_bias

__all__ = ["Im2col"]


class Im2col(ConvAlgorithm):
    """Materialised im2col (``F.unfold``) followed by a (grouped) matrix multiply."""

    name = "im2col"
    tolerance = 1e-5
    summary = "unfold + GEMM (materialised column buffer)"

    def memory(self, config: ConvConfig, input_shape: tuple[int, ...], itemsize: int = 4) -> MemoryUse:
        s = ConvGeometry.from_config(config, input_shape)
        return MemoryUse(0, s.n * s.c * s.kh * s.kw * s.ho * s.wo * itemsize)

    def conv2d(self, x, weight, bias, stride, padding, dilation, groups, state=None) -> torch.Tensor:
        s = ConvGeometry.of(x, weight, stride, padding, dilation)
        k = s.cg * s.kh * s.kw
        cols = F.unfold(x, (s.kh, s.kw), dilation=dilation, padding=padding, stride=stride)
        cols = cols.reshape(s.n, groups, k, s.ho * s.wo)
        y = torch.matmul(weight.reshape(groups, s.o // groups, k), cols)
        return add_bias(y.reshape(s.n, s.o, s.ho, s.wo), bias)
