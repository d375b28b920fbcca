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
import torch.nn.functional as F

from xflow.algsel.algorithms._base import ConvAlgorithm, add_bias, out_size

__all__ = ["Direct"]


class Direct(ConvAlgorithm):
    """Sum over kernel offsets of (shifted, strided input window) × (weight slice)."""

    name = "direct"
    tolerance = 1e-5
    summary = "sum over kernel offsets of shifted-window GEMMs"

    def conv2d(self, x, weight, bias, stride, padding, dilation, groups, state=None) -> torch.Tensor:
        n, c, h, w = x.shape
        o, cg, kh, kw = weight.shape
        (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
        ho, wo = out_size(h, kh, sh, ph, dh), out_size(w, kw, sw, pw, dw)
        xp = F.pad(x, (pw, pw, ph, ph)) if (ph or pw) else x
        wg = weight.reshape(groups, o // groups, cg, kh, kw)
        y = None
        for i in range(kh):
            for j in range(kw):
                win = xp[:, :, i * dh: i * dh + sh * (ho - 1) + 1: sh, j * dw: j * dw + sw * (wo - 1) + 1: sw]
                win = win.reshape(n, groups, cg, ho * wo)
                term = torch.matmul(wg[:, :, :, i, j], win)  # (n, g, o/g, ho*wo)
                y = term if y is None else y + term
        return add_bias(y.reshape(n, o, ho, wo), bias)
