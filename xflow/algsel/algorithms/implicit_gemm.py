r"""``implicit_gemm``: the im2col GEMM computed in blocks of output rows, bounding the column buffer.

The reduction is the same as :mod:`im2col` (:math:`K = C/g \cdot k_h k_w`), but the output rows
are processed in blocks of ``R`` rows: only the input rows a block needs,
:math:`[r_0 s_h,\; (r_1-1) s_h + d_h (k_h-1)]`, are unfolded, multiplied and the block results
concatenated. Peak extra memory is bounded by ``tile_elements`` floats instead of
:math:`N C k_h k_w H_o W_o`.

**What it is not:** a real implicit GEMM (cuDNN's IMPLICIT_GEMM) never materialises columns at
all — it gathers them inside the GEMM kernel. Here each block is still unfolded explicitly, so the
arithmetic and the memory traffic are those of im2col; only the peak buffer is bounded. Whenever
a layer fits one tile (``N·C·k_h·k_w·W_o·H_o ≤ tile_elements``, e.g. every layer of ResNet-50 at
batch 1 from 28×28 down) it does exactly what ``im2col`` does, plus a row slice.
:meth:`ImplicitGemm.tiles` says how many blocks a layer takes. Every configuration is supported.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from xflow.algsel.algorithms._base import ConvAlgorithm, ConvConfig, ConvGeometry, MemoryUse, add_bias, pad_input

__all__ = ["ImplicitGemm"]


class ImplicitGemm(ConvAlgorithm):
    """Row-blocked im2col + GEMM with a bounded column buffer (``tile_elements`` floats)."""

    name = "implicit_gemm"
    tolerance = 1e-5
    summary = "row-blocked unfold + GEMM (bounded buffer; = im2col when the layer fits one block)"

    def __init__(self, tile_elements: int = 1 << 20) -> None:
        self.tile_elements = int(tile_elements)

    def _rows(self, s: ConvGeometry) -> int:
        per_row = max(1, s.n * s.c * s.kh * s.kw * s.wo)
        return max(1, min(s.ho, self.tile_elements // per_row))

    def tiles(self, config: ConvConfig, input_shape: tuple[int, ...]) -> int:
        """Number of row blocks for ``config`` on ``input_shape`` (1: identical to im2col)."""
        s = ConvGeometry.from_config(config, input_shape)
        return -(-s.ho // self._rows(s))

    def memory(self, config: ConvConfig, input_shape: tuple[int, ...], itemsize: int = 4) -> MemoryUse:
        s = ConvGeometry.from_config(config, input_shape)
        return MemoryUse(0, s.n * s.c * s.kh * s.kw * s.wo * self._rows(s) * itemsize)

    def conv2d(self, x, weight, bias, stride, padding, dilation, groups, state=None) -> torch.Tensor:
        s = ConvGeometry.of(x, weight, stride, padding, dilation)
        n, c, o, cg, kh, kw, ho, wo = s.n, s.c, s.o, s.cg, s.kh, s.kw, s.ho, s.wo
        sh, sw, dh, dw = s.sh, s.sw, s.dh, s.dw
        xp = pad_input(x, padding)
        k = cg * kh * kw
        wmat = weight.reshape(groups, o // groups, k)
        rows = self._rows(s)
        blocks = []
        for r0 in range(0, ho, rows):
            r1 = min(ho, r0 + rows)
            top, bottom = r0 * sh, (r1 - 1) * sh + dh * (kh - 1) + 1
            cols = F.unfold(xp[:, :, top:bottom], (kh, kw), dilation=(dh, dw), stride=(sh, sw))
            cols = cols.reshape(n, groups, k, (r1 - r0) * wo)
            blocks.append(torch.matmul(wmat, cols).reshape(n, o, r1 - r0, wo))
        y = blocks[0] if len(blocks) == 1 else torch.cat(blocks, dim=2)
        return add_bias(y, bias)
