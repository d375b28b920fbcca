"""``channels_last``: the framework's pooling on an NHWC (``channels_last``) copy of the input.

ATen's CPU pooling has a vectorised NHWC kernel; an NCHW model pays one conversion in and (the
wrapping module returns the input's layout) one out. Inside a channels_last model it is
``default``.
"""
from __future__ import annotations

import torch

from xflow.algsel.pool._base import PoolAlgorithm
from xflow.algsel.pool.default import DefaultPool

__all__ = ["ChannelsLastPool"]


class ChannelsLastPool(PoolAlgorithm):
    """``default`` pooling on ``x.contiguous(memory_format=torch.channels_last)``."""

    name = "channels_last"
    summary = "framework pooling on NHWC (channels_last) tensors"

    def pool(self, x, c, state=None):
        return DefaultPool().pool(x.contiguous(memory_format=torch.channels_last), c)
