"""``unfold``: im2col pooling — unfold every window into a column, reduce each column.

``F.unfold`` materialises the k_h·k_w values of every window ((N, C·k_h·k_w, H_o·W_o), padded with
−∞ for max, 0 for average), then ``amax`` / ``mean`` over the window axis: the pooling analogue of
im2col, a k_h·k_w-times larger buffer in exchange for one contiguous reduction. No ``ceil_mode``,
no indices; average pooling with ``count_include_pad=False`` divides by the real-element count.
"""
from __future__ import annotations

import torch.nn.functional as F

from xflow.algsel.algorithms._base import MemoryUse
from xflow.algsel.pool._base import PoolAlgorithm, PoolConfig

__all__ = ["UnfoldPool"]


class UnfoldPool(PoolAlgorithm):
    """Unfold windows to columns, then ``amax`` / mean per column."""

    name = "unfold"
    tolerance = 1e-5
    summary = "unfold windows into columns, reduce each (im2col pooling)"

    def supports(self, config: PoolConfig) -> str | None:
        reason = super().supports(config)
        if reason is None and config.ceil_mode:
            return "unfold pooling does not support ceil_mode=True"
        return reason

    def memory(self, config: PoolConfig, input_shape, itemsize: int = 4) -> MemoryUse:
        n, ch, h, w = input_shape
        ho, wo = config.out_hw(h, w)
        return MemoryUse(0, n * ch * config.kernel_size[0] * config.kernel_size[1] * ho * wo * itemsize)

    def pool(self, x, c, state=None):
        n, ch, h, w = x.shape
        ho, wo = c.out_hw(h, w)
        (ph, pw) = c.padding
        k = c.kernel_size[0] * c.kernel_size[1]
        if c.kind == "max":
            xp = F.pad(x, (pw, pw, ph, ph), value=float("-inf")) if (ph or pw) else x
            cols = F.unfold(xp, c.kernel_size, dilation=c.dilation, stride=c.stride)
            return cols.view(n, ch, k, ho * wo).amax(2).view(n, ch, ho, wo)
        xp = F.pad(x, (pw, pw, ph, ph)) if (ph or pw) else x
        y = F.unfold(xp, c.kernel_size, stride=c.stride).view(n, ch, k, ho * wo).sum(2).view(n, ch, ho, wo)
        if c.divisor_override:
            return y / c.divisor_override
        if c.count_include_pad or not (ph or pw):
            return y / k
        ones = F.pad(x.new_ones(1, 1, h, w), (pw, pw, ph, ph))
        return y / F.unfold(ones, c.kernel_size, stride=c.stride).sum(1).view(1, 1, ho, wo)
