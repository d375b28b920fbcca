r"""``shift``: separable shift-and-reduce pooling — max (or sum) of strided shifted slices.

A k_h × k_w window reduction is separable: reduce k_w shifted, strided column slices of the
(padded) input with ``torch.maximum`` (or ``+``), then k_h shifted row slices of that:

.. math::
    r[·, h', w] = \max_{j<k_w} x_p[·, h', s_w w + d_w j], \qquad
    y[·, h, w] = \max_{i<k_h} r[·, s_h h + d_h i, w]

— k_h + k_w elementwise vector ops over whole tensors instead of a per-output loop, and no argmax
indices (so ``return_indices`` is unsupported). Max pads with −∞, average with 0 and divides by
``k_h k_w`` (``count_include_pad``), by the number of real elements in each window (computed the
same way on a ones map), or by ``divisor_override``. ``ceil_mode`` is supported for max pooling
(extra −∞ on the right/bottom), not for average pooling. Gradients of max pooling at ties are
split between the tied inputs (``torch.maximum``'s rule) where the framework sends all of it to
one argmax: both are valid subgradients; sums of gradients agree.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from xflow.algsel.pool._base import PoolAlgorithm, PoolConfig

__all__ = ["ShiftPool"]


def _reduce(x: torch.Tensor, dim: int, k: int, s: int, d: int, out: int, op) -> torch.Tensor:
    acc = None
    for j in range(k):
        t = x.narrow(dim, j * d, s * (out - 1) + 1)
        if s > 1:
            t = t[(slice(None),) * dim + (slice(None, None, s),)]
        acc = t if acc is None else op(acc, t)
    return acc


class ShiftPool(PoolAlgorithm):
    """Separable shift-and-max / shift-and-add pooling."""

    name = "shift"
    tolerance = 1e-5
    summary = "separable shift-and-max / shift-and-add over strided slices (no indices)"

    def supports(self, config: PoolConfig) -> str | None:
        reason = super().supports(config)
        if reason is None and config.kind == "avg" and config.ceil_mode:
            return "shift average pooling does not support ceil_mode=True"
        return reason

    def pool(self, x, c, state=None):
        h, w = x.shape[-2:]
        ho, wo = c.out_hw(h, w)
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = c.kernel_size, c.stride, c.padding, c.dilation
        extra_h = max(0, (ho - 1) * sh + dh * (kh - 1) + 1 - (h + 2 * ph))
        extra_w = max(0, (wo - 1) * sw + dw * (kw - 1) + 1 - (w + 2 * pw))
        if c.kind == "max":
            xp = F.pad(x, (pw, pw + extra_w, ph, ph + extra_h), value=float("-inf")) if (
                ph or pw or extra_h or extra_w) else x
            r = _reduce(xp, 3, kw, sw, dw, wo, torch.maximum)
            return _reduce(r, 2, kh, sh, dh, ho, torch.maximum)
        xp = F.pad(x, (pw, pw, ph, ph)) if (ph or pw) else x
        y = _reduce(_reduce(xp, 3, kw, sw, 1, wo, torch.add), 2, kh, sh, 1, ho, torch.add)
        if c.divisor_override:
            return y / c.divisor_override
        if c.count_include_pad or not (ph or pw):
            return y / (kh * kw)
        ones = F.pad(x.new_ones(1, 1, h, w), (pw, pw, ph, ph))
        count = _reduce(_reduce(ones, 3, kw, sw, 1, wo, torch.add), 2, kh, sh, 1, ho, torch.add)
        return y / count
