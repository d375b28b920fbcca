"""``default``: ``F.linear`` — the framework's GEMM (MKL/oneDNN on CPU, cuBLAS on GPU)."""
from __future__ import annotations

import torch.nn.functional as F

from xflow.algsel.linear._base import LinearAlgorithm

__all__ = ["DefaultLinear"]


class DefaultLinear(LinearAlgorithm):
    """``torch.nn.functional.linear`` (``addmm`` with the transposed weight view)."""

    name = "default"
    tolerance = 1e-6
    summary = "framework linear (addmm on the weight's transposed view)"

    def linear(self, x, weight, bias, state=None):
        return F.linear(x, weight, bias)
