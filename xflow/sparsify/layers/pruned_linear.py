r"""``PrunedLinear``: :math:`Y = X (W \odot M) + b` with the Unifews weight mask :math:`M`.

:math:`M_{ij} = [\,|W_{ij}|\,\lVert X_{:,i}\rVert \ge \delta_w \lVert X\rVert_F / F_{in}\,]`
(see :mod:`xflow.sparsify.pruning`). While not frozen the mask is recomputed at every forward from
the current weights and input; once :meth:`freeze` is called (half-way through training) it stays
fixed. While the mask is being recomputed, gradients reach every entry (straight-through:
forward uses :math:`W \odot M`, backward treats the mask as identity) so an entry pruned early can
grow back; once frozen, pruned entries get no gradient (they are multiplied by 0).

Reference-code mode (gdmnl/Unifews ``pruneall``/``pruneinc``): ``straight_through=False`` gives pruned
entries no gradient even while the mask is recomputed (they keep their stale value and regrow only if
the threshold moves), and ``cumulative=True`` intersects the new mask with the old one
(:math:`M \leftarrow M \wedge \text{rule}(W, X)`), so sparsity only grows.

Execution skips work: with δ_w = 0 and nothing pruned the layer is a plain ``X W`` (no mask
work). On the CPU kernels the rule, the mask, ``W ⊙ M`` and the rows left come from one pass over
``W`` (``kernels.weight_rule``; the pruned entries' zero gradient is a custom backward, no autograd
through the mask). A dense input's columns whose whole weight row is pruned are dropped before the
matmul (``X[:, rows] @ W[rows]``) when at most half the rows are left; the rest runs masked-dense,
which on CPU beats ``torch.sparse`` at GNN widths (see ``benchmarks/sparsify_speed.py``). A sparse
input (``torch.sparse_csr`` / COO, e.g. the raw bag-of-words features of Cora, 1.3 % non-zero)
runs on the sparse-input kernels (input entries of fully pruned rows skipped, the weight gradient
computed at kept rows and masked in the same pass) or ``torch.sparse.mm``; the rule's column norms
are then taken from the non-zeros and cached while the input tensor is unchanged. MACs are counted exactly as ``N·‖M‖₀`` (the input treated as dense, as
the reference counts them).
"""
from __future__ import annotations

import math
import weakref

import torch
from torch import Tensor, nn

from xflow.sparsify import kernels
from xflow.sparsify.macs import MacCounter
from xflow.sparsify.ops import col_norms, dense_mm, sparse_input_mm, sparse_masked_mm, sparse_masked_ok
from xflow.sparsify.pruning import weight_prune_mask

__all__ = ["PrunedLinear"]


#: a dense input's columns are gathered (fully pruned weight rows skipped) only when at most this
#: share of the rows is left; otherwise the copy of X costs more than the skipped rows save
SKIP_ROWS_BELOW = 0.5


class _MaskedWeight(torch.autograd.Function):
    """``W ⊙ M`` already computed (by the fused rule kernel) as an autograd node: the gradient
    reaches the kept entries only (``∂/∂W = G ⊙ M``), as for ``weight * mask``."""

    @staticmethod
    def forward(ctx, weight, wm, mask):  # noqa: D102 - torch.autograd.Function protocol
        ctx.save_for_backward(mask)
        return wm

    @staticmethod
    def backward(ctx, g):  # noqa: D102
        (mask,) = ctx.saved_tensors
        return g * mask, None, None


class PrunedLinear(nn.Module):
    r"""Linear layer with Unifews entry-wise weight pruning.

    Args:
        in_channels (int): :math:`F_{in}`.
        out_channels (int): :math:`F_{out}`.
        delta_w (float, optional): weight threshold factor :math:`\delta_w` (default: :obj:`0.0`, dense).
        bias (bool, optional): learn an additive bias (default: :obj:`True`).

    Shapes:
        input :math:`(N, F_{in})` → output :math:`(N, F_{out})`.
    """

    def __init__(self, in_channels: int, out_channels: int, delta_w: float = 0.0, bias: bool = True):
        super().__init__()
        self.in_channels, self.out_channels, self.delta_w = in_channels, out_channels, float(delta_w)
        self.weight = nn.Parameter(torch.empty(in_channels, out_channels))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_channels))
        else:
            self.register_parameter("bias", None)
        self.register_buffer("mask", torch.ones(in_channels, out_channels, dtype=torch.bool))
        self.frozen = False
        self.straight_through = True  # gradients to pruned entries while the mask is recomputed
        self.cumulative = False  # new mask = old mask AND rule (reference second half)
        self.clamp = False  # cap thresholds at 0.999·max|W| (reference ThrInPrune)
        self.cap_kept = True  # cumulative: take that max over the surviving entries (GNN layers' prune.remove)
        self._cache: tuple | None = None  # frozen, no-grad inference: (versions, row idx, masked W rows)
        self._norms: tuple | None = None  # (input identity, column norms, Frobenius norm) of a constant input
        self._full: tuple | None = None  # (mask version, whether every entry is kept)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot-uniform weights, zero bias, all entries kept, mask unfrozen."""
        a = math.sqrt(6.0 / (self.in_channels + self.out_channels))
        nn.init.uniform_(self.weight, -a, a)
        if self.bias is not None:
            nn.init.zeros_(self.bias)
        self.mask.fill_(True)
        self.frozen = False

    def freeze(self) -> None:
        """Keep the current mask fixed from now on."""
        self.frozen = True

    def unfreeze(self) -> None:
        """Recompute the mask at the next forward again (reference schedule: masks per epoch)."""
        self.frozen = False
        self._cache = None

    def set_mask(self, mask: Tensor) -> None:
        """Impose an external mask (baselines) and freeze it."""
        self.mask.copy_(mask.to(torch.bool))
        self.frozen = True

    def input_norms(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Column norms ``‖X[:, i]‖`` and ``‖X‖_F`` of the input (dense or sparse), cached for an input
        that does not change (the raw features of the first layer: no autograd history, same storage
        and version)."""
        dense = not x.is_sparse and x.layout == torch.strided
        if dense and (x.requires_grad or x.grad_fn is not None):  # an activation: new every pass
            col = col_norms(x.detach())
            return col, col.norm()
        # the same live tensor object (a weak reference: a freed activation whose storage or id is
        # reused can never hit), unchanged since (version counter)
        key = (x._version, tuple(x.shape), x.data_ptr() if dense else None)
        if self._norms is not None and self._norms[0][0]() is x and self._norms[0][1] == key:
            return self._norms[1], self._norms[2]
        key = (weakref.ref(x), key)
        if dense:
            col = col_norms(x.detach())
            self._norms = (key, col, col.norm())
            return self._norms[1], self._norms[2]
        if x.layout == torch.sparse_csr:
            cols, vals = x.col_indices(), x.values().detach()
        else:
            xc = x.coalesce()
            cols, vals = xc.indices()[1], xc.values().detach()
        col = torch.zeros(x.shape[-1], dtype=vals.dtype, device=vals.device).index_add_(0, cols, vals * vals).sqrt()
        fro = col.norm()
        self._norms = (key, col, fro)
        return col, fro

    def _fused_ok(self, x: Tensor) -> bool:
        """Whether the compiled fused weight-rule kernels apply (CPU float32 weights, contiguous mask)."""
        w = self.weight
        return (w.device.type == "cpu" and w.dtype == torch.float32 and x.device.type == "cpu"
                and self.mask.is_contiguous() and kernels.available())

    def _recompute_mask(self, x: Tensor) -> tuple[Tensor, Tensor] | None:
        """Recompute ``self.mask`` by the weight rule (in place). On the compiled path also returns
        ``(W ⊙ M, rows with a kept entry)`` from the same pass over ``W``; ``None`` otherwise."""
        col, fro = self.input_norms(x)
        wd = self.weight.detach()
        f_in = wd.shape[0]
        if not self._fused_ok(x) or float(fro) / f_in <= 1e-8:
            # cumulative (reference 'pruneinc'): the cap 0.999·max|W| is taken over the surviving
            # entries, as the reference's weights hold zeros where they were pruned before
            w = wd * self.mask if (self.cumulative and self.cap_kept) else wd
            new = weight_prune_mask(w, None, self.delta_w, self.clamp, col_norms=col, fro_norm=fro)
            self.mask.copy_(new & self.mask if self.cumulative else new)
            return None
        thr = self.delta_w * fro / f_in  # the same float32 threshold as weight_prune_mask
        if self.clamp:
            tau = thr / col
            kept_only = self.mask if (self.cumulative and self.cap_kept) else None
            # the cap 0.999·max|W| changes nothing when every τ_i is below 0.999 × a lower bound of
            # max|W| (the max over the first rows): then the full max pass is skipped (same mask)
            head = max(1, min(wd.shape[0], 4096 // max(1, wd.shape[1])))
            lower = kernels.masked_absmax(wd[:head], None if kept_only is None else kept_only[:head])
            if float(tau.max()) < lower * (1 - 1e-3):
                wm, rows, _ = kernels.weight_rule(wd, tau, 0.0, True, self.cumulative, self.mask)
            else:
                cap = kernels.masked_absmax(wd, kept_only)
                tau = torch.clamp(tau, max=cap * (1 - 1e-3))
                wm, rows, _ = kernels.weight_rule(wd, tau, 0.0, True, self.cumulative, self.mask)
        else:
            wm, rows, _ = kernels.weight_rule(wd, col, float(thr), False, self.cumulative, self.mask)
        return wm, rows

    def _mask_is_full(self) -> bool:
        """Whether no entry is pruned (cached on the mask's version counter: any in-place change —
        :meth:`set_mask`, ``load_state_dict``, the rule — invalidates it)."""
        key = (self.mask._version, self.mask.data_ptr())
        if self._full is None or self._full[0] != key:
            self._full = (key, bool(self.mask.all()))
        return self._full[1]

    def forward(self, x: Tensor, counter: MacCounter | None = None, name: str = "lin") -> Tensor:
        """Recompute the mask unless frozen, then ``x @ (W ⊙ M) + b`` skipping all-pruned rows.

        Execution per case: δ_w = 0 with nothing pruned runs ``x @ W`` (no mask work at all); the
        compiled path (CPU, float32) computes mask, ``W ⊙ M`` and the rows left in one pass and, for a
        sparse input, skips the input entries of fully pruned rows in the forward and computes the
        weight gradient only at kept rows, masked in the same pass."""
        fused = None
        if not self.frozen and self.delta_w > 0:
            fused = self._recompute_mask(x)
        sparse_in = x.layout != torch.strided
        if self.frozen and not torch.is_grad_enabled() and not sparse_in:
            return self._frozen_inference(x, counter, name)
        weight = self.weight
        if fused is None and self.delta_w == 0 and self._mask_is_full():
            out = sparse_input_mm(x, weight) if sparse_in else dense_mm(x, weight)  # dense: no mask work
        elif not self.frozen and self.training and self.straight_through:  # pruned entries can regrow
            ste = weight + (weight * self.mask - weight).detach()
            out = sparse_input_mm(x, ste) if sparse_in else dense_mm(x, ste)
        else:
            if fused is None:
                rows = self.mask.any(dim=1)
                wm_fn = lambda: weight * self.mask  # noqa: E731
            else:
                rows = fused[1]
                wm_fn = lambda: _MaskedWeight.apply(weight, fused[0], self.mask)  # noqa: E731
            if sparse_in and fused is not None and sparse_masked_ok(x):
                out = sparse_masked_mm(x, weight, fused[0], self.mask, rows)
            elif sparse_in:
                out = sparse_input_mm(x, wm_fn())
            else:
                n_rows = int(rows.sum())
                if n_rows <= SKIP_ROWS_BELOW * self.in_channels:  # gathering X's columns pays only then
                    idx = rows.nonzero().view(-1)
                    m = self.mask.index_select(0, idx)
                    out = dense_mm(x.index_select(-1, idx), weight.index_select(0, idx) * m)
                else:
                    out = dense_mm(x, wm_fn())
        if self.bias is not None:
            out = out + self.bias
        if counter is not None:
            n = x.shape[0]
            kept = int(self.mask.sum())
            counter.add(name, "transformation", kept, self.mask.numel(), n * kept, n * self.mask.numel())
        return out

    def _frozen_inference(self, x: Tensor, counter: MacCounter | None, name: str) -> Tensor:
        """Inference with a frozen mask: the compacted masked weight is cached until W or M change."""
        key = (self.weight._version, self.mask._version, self.weight.data_ptr())
        if self._cache is None or self._cache[0] != key:
            rows = self.mask.any(dim=1)
            idx = rows.nonzero().view(-1) if int(rows.sum()) < self.in_channels else None
            wm = self.weight.detach() * self.mask
            self._cache = (key, idx, wm if idx is None else wm.index_select(0, idx).contiguous())
        _, idx, wm = self._cache
        out = dense_mm(x if idx is None else x.index_select(-1, idx), wm)
        if self.bias is not None:
            out = out + self.bias
        if counter is not None:
            n, kept = x.shape[0], int(self.mask.sum())
            counter.add(name, "transformation", kept, self.mask.numel(), n * kept, n * self.mask.numel())
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, delta_w={self.delta_w})"
