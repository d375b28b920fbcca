"""``gemm_t``: GEMM on a weight kept transposed in memory (K × N contiguous).

``F.linear`` multiplies by the transposed *view* of the (N, K) weight, so BLAS reads it
column-major (a "TN" GEMM); this algorithm keeps a contiguous (K, N) copy (a cached transform,
recomputed on weight updates; gradient: the transpose back) and calls ``addmm`` as an "NN" GEMM.
Which one the BLAS library runs faster depends on M (the batch rows), K and N.
"""
from __future__ import annotations

import torch

from xflow.algsel.algorithms._base import MemoryUse, cached_transform
from xflow.algsel.linear._base import LinearAlgorithm, LinearConfig

__all__ = ["GemmTransposed"]


class GemmTransposed(LinearAlgorithm):
    """``addmm(b, x, Wᵀ)`` with ``Wᵀ`` stored contiguous."""

    name = "gemm_t"
    tolerance = 1e-5
    summary = "GEMM on a contiguous transposed copy of the weight (NN instead of TN)"

    def memory(self, config: LinearConfig, input_shape, itemsize: int = 4) -> MemoryUse:
        return MemoryUse(config.in_features * config.out_features * itemsize, 0)

    def linear(self, x, weight, bias, state=None):
        wt = cached_transform(state, ("gemm_t",), weight, lambda w: w.t().contiguous(), lambda g: g.t())
        x2 = x.reshape(-1, x.shape[-1])
        y = torch.mm(x2, wt) if bias is None else torch.addmm(bias, x2, wt)
        return y.reshape(*x.shape[:-1], weight.shape[0])
