r"""``winograd``: Winograd minimal filtering F(m×m, 3×3) (Lavin & Gray, 2016) for 3×3, stride 1.

For an input tile :math:`d` of :math:`\alpha \times \alpha` (:math:`\alpha = m + 2`) and a 3×3
filter :math:`g`,

.. math::
    Y = A^\top \Big[ \sum_c (G g_{o,c} G^\top) \odot (B^\top d_c B) \Big] A

gives the :math:`m \times m` output tile with :math:`\alpha^2` multiplies per channel pair instead
of :math:`9 m^2`: 2.25× fewer for F(2×2, 3×3) (``winograd_2x2``), 4× fewer for F(4×4, 3×3)
(``winograd_4x4``). Every two-sided transform :math:`P X Q^\top` of a small matrix is one product
with a Kronecker matrix on the flattened tile, :math:`\mathrm{vec}(P X Q^\top) = (P \otimes Q)
\mathrm{vec}(X)`, so each of the three transforms is **one GEMM over all tiles and channels**
(:math:`B^\top \otimes B^\top`: α²×α², :math:`G \otimes G`: α²×9, :math:`A^\top \otimes A^\top`:
m²×α²), and the channel sum is one batched GEMM per each of the α² transformed positions.

The filter transform :math:`U = (G \otimes G)\,\mathrm{vec}(g)` is kept per layer
(:func:`~xflow.algsel.algorithms._base.cached_transform`): in inference it is computed once; in
training once per weight update, with the gradient :math:`\partial L/\partial g = (G \otimes
G)^\top \partial L/\partial U` — without the cache, ``U`` (α²/9 = 4× the weight for F(4×4)) is
recomputed on every forward, which costs more than the convolution it saves on large layers.
Larger tiles use larger transform constants, so float32 error grows (tolerances 1e-4 and 1e-3 of
the output scale). Groups and padding are supported; stride ≠ 1, dilation ≠ 1 and kernels other
than 3×3 are not (the swap falls back to ``default``).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from xflow.algsel.algorithms._base import (ConvAlgorithm, ConvConfig, ConvGeometry, MemoryUse, add_bias,
                                           cached_transform, out_size)
from xflow.errors import UnsupportedOperator

__all__ = ["Winograd2x2", "Winograd4x4", "WinogradBase"]

_F2 = {
    "BT": [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
    "G": [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]],
    "AT": [[1, 1, 1, 0], [0, 1, -1, -1]],
}
_F4 = {
    "BT": [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
           [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]],
    "G": [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
          [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]],
    "AT": [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
}


class WinogradBase(ConvAlgorithm):
    """F(m×m, 3×3) with transform matrices ``BT`` (α×α), ``G`` (α×3), ``AT`` (m×α)."""

    m: int = 2
    matrices: dict = _F2

    def supports(self, config: ConvConfig) -> str | None:
        if config.kernel_size != (3, 3):
            return f"{self.name} needs a 3x3 kernel, got {config.kernel_size[0]}x{config.kernel_size[1]}"
        if config.stride != (1, 1):
            return f"{self.name} needs stride 1, got {config.stride}"
        if config.dilation != (1, 1):
            return f"{self.name} needs dilation 1, got {config.dilation}"
        return None

    def kron_matrices(self, ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(Bᵀ⊗Bᵀ, G⊗G, Aᵀ⊗Aᵀ)`` in ``ref``'s dtype and device (built in float64, then cast)."""
        cache = self.__dict__.setdefault("_mat_cache", {})
        key = (ref.dtype, ref.device)
        if key not in cache:
            bt, g, at = (torch.tensor(self.matrices[k], dtype=torch.float64) for k in ("BT", "G", "AT"))
            cache[key] = tuple(torch.kron(a, a).to(ref.dtype).to(ref.device) for a in (bt, g, at))
        return cache[key]

    def filter_transform(self, weight: torch.Tensor, groups: int) -> torch.Tensor:
        """``U = (G⊗G) vec(g)`` for every filter: shape (α², groups, O/groups, C/groups)."""
        o, cg = weight.shape[:2]
        _, kg, _ = self.kron_matrices(weight)
        return (kg @ weight.reshape(o * cg, 9).t()).view(kg.shape[0], groups, o // groups, cg)

    def _filter_vjp(self, grad_u: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        _, kg, _ = self.kron_matrices(grad_u)
        return (kg.t() @ grad_u.reshape(kg.shape[0], -1)).t().reshape(shape)

    def memory(self, config: ConvConfig, input_shape: tuple[int, ...], itemsize: int = 4) -> MemoryUse:
        s = ConvGeometry.from_config(config, input_shape)
        a2 = (self.m + 2) ** 2
        tiles = s.n * math.ceil(s.ho / self.m) * math.ceil(s.wo / self.m)
        cached = a2 * s.o * s.cg * itemsize
        # unfolded tiles + their transform (input side), the products M (output side)
        workspace = (2 * a2 * s.c * tiles + a2 * s.o * tiles) * itemsize
        return MemoryUse(cached, workspace)

    def conv2d(self, x, weight, bias, stride, padding, dilation, groups, state=None) -> torch.Tensor:
        reason = self.supports(ConvConfig(x.shape[1], weight.shape[0], tuple(weight.shape[2:]),
                                          tuple(stride), tuple(padding), tuple(dilation), groups))
        if reason:
            raise UnsupportedOperator(reason)
        m, a = self.m, self.m + 2
        n, c, h, w = x.shape
        o, cg = weight.shape[:2]
        g, og = groups, o // groups
        ph, pw = padding
        ho, wo = out_size(h, 3, 1, ph, 1), out_size(w, 3, 1, pw, 1)
        th, tw = math.ceil(ho / m), math.ceil(wo / m)
        kb, _, ka = self.kron_matrices(x)
        xp = F.pad(x, (pw, pw + tw * m - wo, ph, ph + th * m - ho))
        # tiles d: (α², C, N·T) → V = (Bᵀ⊗Bᵀ) d, one GEMM
        d = F.unfold(xp, (a, a), stride=(m, m)).view(n, c, a * a, th * tw).permute(2, 1, 0, 3)
        v = (kb @ d.reshape(a * a, -1)).view(a * a, g, cg, n * th * tw)
        u = cached_transform(state, ("winograd", m, g), weight, lambda wt: self.filter_transform(wt, g),
                             lambda gu, shape=weight.shape: self._filter_vjp(gu, shape))
        mm = torch.matmul(u, v)  # (α², g, O/g, N·T): one GEMM per transformed position and group
        y = (ka @ mm.view(a * a, -1)).view(m, m, o, n, th, tw)
        y = y.permute(3, 2, 4, 0, 5, 1).reshape(n, o, th * m, tw * m)
        return add_bias(y[:, :, :ho, :wo], bias)


class Winograd2x2(WinogradBase):
    """Winograd F(2×2, 3×3): 16 multiplies per 4 outputs (2.25× fewer than direct)."""

    name = "winograd_2x2"
    tolerance = 1e-4
    summary = "Winograd F(2x2,3x3), 3x3 stride-1 only"
    m = 2
    matrices = _F2


class Winograd4x4(WinogradBase):
    """Winograd F(4×4, 3×3): 36 multiplies per 16 outputs (4× fewer), larger float32 error."""

    name = "winograd_4x4"
    tolerance = 1e-3
    summary = "Winograd F(4x4,3x3), 3x3 stride-1 only"
    m = 4
    matrices = _F4
