"""``default``: ``F.max_pool2d`` / ``F.avg_pool2d`` — the framework's pooling kernels.

On CPU with NCHW input and one thread, ATen's max pooling is a scalar loop that also computes
argmax indices (``max_pool2d_with_indices``); with ``channels_last`` input it takes a vectorised
kernel. The autotuner measures both (and the shift algorithm) instead of assuming.
"""
from __future__ import annotations

import torch.nn.functional as F

from xflow.algsel.pool._base import PoolAlgorithm

__all__ = ["DefaultPool"]


class DefaultPool(PoolAlgorithm):
    """The framework's pooling (every configuration, indices included)."""

    name = "default"
    summary = "framework pooling (F.max_pool2d / F.avg_pool2d)"

    def supports(self, config):
        return None

    def pool(self, x, c, state=None):
        if c.kind == "max":
            return F.max_pool2d(x, c.kernel_size, c.stride, c.padding, c.dilation, c.ceil_mode, c.return_indices)
        return F.avg_pool2d(x, c.kernel_size, c.stride, c.padding, c.ceil_mode, c.count_include_pad,
                            c.divisor_override)
