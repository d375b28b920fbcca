r"""``implicit_gemm``: the im2col GEMM computed tile by tile, never materialising the whole buffer.

The reduction is the same as :mod:`im2col` (:math:`K = C/g \cdot k_h k_w`), but the output rows
are processed in blocks of ``R`` rows: only the input rows a block needs,
:math:`[r_0 s_h,\; (r_1-1) s_h + d_h (k_h-1)]`, are unfolded, multiplied and the block results
concatenated. Peak extra memory is bounded by ``tile_elements`` instead of
:math:`N C k_h k_w H_o W_o` — the CPU analogue of cuDNN's IMPLICIT_GEMM. Every configuration is
supported.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from xflow.algsel.algorithms._base import ConvAlgorithm, ConvGeometry, add_bias, pad_input

__all__ = ["ImplicitGemm"]


class ImplicitGemm(ConvAlgorithm):
    """Row-tiled im2col + GEMM with a bounded column buffer (``tile_elements`` floats)."""

    name = "implicit_gemm"
    tolerance = 1e-5
    summary = "row-tiled unfold + GEMM (bounded buffer)"

    def __init__(self, tile_elements: int = 1 << 20) -> None:
        self.tile_elements = int(tile_elements)

    def conv2d(self, x, weight, bias, stride, padding, dilation, groups, state=None) -> torch.Tensor:
        s = ConvGeometry.of(x, weight, stride, padding, dilation)
        n, c, o, cg, kh, kw, ho, wo = s.n, s.c, s.o, s.cg, s.kh, s.kw, s.ho, s.wo
        sh, sw, dh, dw = s.sh, s.sw, s.dh, s.dw
        xp = pad_input(x, padding)
        k = cg * kh * kw
        wmat = weight.reshape(groups, o // groups, k)
        per_row = max(1, n * c * kh * kw * wo)
        rows = max(1, min(ho, self.tile_elements // per_row))
        blocks = []
        for r0 in range(0, ho, rows):
            r1 = min(ho, r0 + rows)
            top, bottom = r0 * sh, (r1 - 1) * sh + dh * (kh - 1) + 1
            cols = F.unfold(xp[:, :, top:bottom], (kh, kw), dilation=(dh, dw), stride=(sh, sw))
            cols = cols.reshape(n, groups, k, (r1 - r0) * wo)
            blocks.append(torch.matmul(wmat, cols).reshape(n, o, r1 - r0, wo))
        y = blocks[0] if len(blocks) == 1 else torch.cat(blocks, dim=2)
        return add_bias(y, bias)
