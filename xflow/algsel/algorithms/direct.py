r"""``direct``: shift-and-GEMM — accumulate one small GEMM per kernel offset.

.. math::
    y[n, o, h, w] = b[o] + \sum_{i<k_h,\,j<k_w} \sum_{c} W[o, c, i, j]\,
                    x_p[n, c, s_h h + d_h i,\; s_w w + d_w j]

For each of the :math:`k_h k_w` offsets the strided window of the padded input is a
(C/g × N·H_o·W_o) matrix, multiplied by the (O/g × C/g) slice of the weight and accumulated:
:math:`k_h k_w` GEMMs with :math:`K = C/g`, no im2col buffer (extra memory: one window copy and
one partial output at a time).

**What it is not:** this is *not* a direct convolution in the sense of ai3's ``direct`` or of a
textbook loop nest (seven nested loops over n, o, c, h, w, i, j with no GEMM). The arithmetic
(``N·O·C/g·H_o·W_o·k_h·k_w`` multiply-adds) is the same as im2col's; only the GEMM shape differs
(``k_h k_w`` GEMMs of depth C/g instead of one of depth ``C/g·k_h·k_w``). For a 1×1 kernel with
stride 1 it *is* a single GEMM on the input as stored. Every configuration (groups, stride,
padding, dilation) is supported.
"""
from __future__ import annotations

import torch

from xflow.algsel.algorithms._base import ConvAlgorithm, ConvConfig, ConvGeometry, MemoryUse, add_bias, pad_input

__all__ = ["Direct"]


class Direct(ConvAlgorithm):
    """Shift-and-GEMM: sum over kernel offsets of (shifted, strided input window) × (weight slice)."""

    name = "direct"
    tolerance = 1e-5
    summary = "shift-and-GEMM: one GEMM per kernel offset, accumulated (not a loop-nest direct conv)"

    def memory(self, config: ConvConfig, input_shape: tuple[int, ...], itemsize: int = 4) -> MemoryUse:
        s = ConvGeometry.from_config(config, input_shape)
        return MemoryUse(0, (s.n * s.c * s.ho * s.wo + s.n * s.o * s.ho * s.wo) * itemsize)

    def conv2d(self, x, weight, bias, stride, padding, dilation, groups, state=None) -> torch.Tensor:
        s = ConvGeometry.of(x, weight, stride, padding, dilation)
        xp = pad_input(x, padding)
        wg = weight.reshape(groups, s.o // groups, s.cg, s.kh, s.kw)
        y = None
        for i in range(s.kh):
            for j in range(s.kw):
                win = xp[:, :, i * s.dh: i * s.dh + s.sh * (s.ho - 1) + 1: s.sh,
                         j * s.dw: j * s.dw + s.sw * (s.wo - 1) + 1: s.sw]
                win = win.reshape(s.n, groups, s.cg, s.ho * s.wo)
                term = torch.matmul(wg[:, :, :, i, j], win)  # (n, g, o/g, ho*wo)
                y = term if y is None else y + term
        return add_bias(y.reshape(s.n, s.o, s.ho, s.wo), bias)
