r"""``direct``: accumulate over kernel offsets (shift-and-multiply).

.. math::
    y[n, o, h, w] = b[o] + \sum_{i<k_h,\,j<k_w} \sum_{c} W[o, c, i, j]\,
                    x_p[n, c, s_h h + d_h i,\; s_w w + d_w j]

For each of the :math:`k_h k_w` offsets the strided window of the padded input is a
(C/g × N·H_o·W_o) matrix, multiplied by the (O/g × C/g) slice of the weight and accumulated:
:math:`k_h k_w` small GEMMs, no im2col buffer (memory O(input + output)). Every configuration
(groups, stride, padding, dilation) is supported.
"""
from __future__ import annotations

import torch

from xflow.algsel.algorithms._base import ConvAlgorithm, ConvGeometry, add_bias, pad_input

__all__ = ["Direct"]


class Direct(ConvAlgorithm):
    """Sum over kernel offsets of (shifted, strided input window) × (weight slice)."""

    name = "direct"
    tolerance = 1e-5
    summary = "sum over kernel offsets of shifted-window GEMMs"

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
