"""``blocked``: the GEMM split into blocks of output features (columns of ``y``).

Each block multiplies ``x`` by ``block`` rows of the weight (a contiguous slice) and the results
are concatenated: the same arithmetic as ``default`` in ``ceil(N / block)`` smaller GEMMs whose
weight slice (``block × K`` floats) stays in cache while all rows of ``x`` use it. Helps when M is
moderate and the whole weight does not fit in cache; with M = 1 (a GEMV) it changes nothing but
the call count.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from xflow.algsel.algorithms._base import MemoryUse
from xflow.algsel.linear._base import LinearAlgorithm, LinearConfig, rows

__all__ = ["BlockedLinear"]


class BlockedLinear(LinearAlgorithm):
    """Output-feature blocks of ``block`` rows of W, one GEMM each, concatenated."""

    name = "blocked"
    tolerance = 1e-5
    summary = "GEMM in blocks of output features (weight slice stays in cache)"

    def __init__(self, block: int = 1024) -> None:
        self.block = int(block)

    def memory(self, config: LinearConfig, input_shape, itemsize: int = 4) -> MemoryUse:
        return MemoryUse(0, rows(input_shape) * config.out_features * itemsize)

    def linear(self, x, weight, bias, state=None):
        n, b = weight.shape[0], self.block
        if n <= b:
            return F.linear(x, weight, bias)
        parts = [F.linear(x, weight[i: i + b], None if bias is None else bias[i: i + b]) for i in range(0, n, b)]
        return torch.cat(parts, dim=-1)
