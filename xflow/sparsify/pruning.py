r"""The two Unifews entry-wise pruning rules (Liao et al., 2024), as pure functions on tensors.

Edge (propagation) pruning
--------------------------
At propagation layer (or hop) :math:`l` the message from node :math:`u` to node :math:`v` is

.. math::
    m_{uv} = \hat A_{vu}\, h_u, \qquad \lVert m_{uv} \rVert = |\hat A_{vu}|\, \lVert h_u \rVert,

so the message norms cost one row norm per node plus one multiply per edge — the messages themselves
are never materialised. With :math:`\mathcal E_{l-1}` the edges kept by the previous layer
(:math:`\mathcal E_0` = all edges of :math:`\hat A`, self-loops included), layer :math:`l` keeps

.. math::
    \mathcal E_l = \{(u,v) \in \mathcal E_{l-1} :\ u = v\ \text{ or }\
    \lVert m_{uv}\rVert \ge \delta_a \cdot \tfrac{1}{|\mathcal E_{l-1}|}
    \textstyle\sum_{(s,t)\in\mathcal E_{l-1}} \lVert m_{st}\rVert \}.

Self-loops are always kept and :math:`\mathcal E_l \subseteq \mathcal E_{l-1}` (pruned edges stay pruned).
:math:`\delta_a = 0` keeps every candidate edge.

Weight (transformation) pruning
-------------------------------
For a layer :math:`Y = X W` with :math:`X \in \mathbb R^{N\times F_{in}}`, :math:`W \in \mathbb R^{F_{in}\times F_{out}}`,
entry :math:`W_{ij}` contributes :math:`X_{:,i} W_{ij}` to output column :math:`j`, whose norm is
:math:`|W_{ij}|\,\lVert X_{:,i}\rVert_2`. The entry is dropped when

.. math::
    |W_{ij}|\,\lVert X_{:,i}\rVert_2 < \delta_w \cdot \frac{\lVert X\rVert_F}{F_{in}}
    \quad\Longleftrightarrow\quad
    |W_{ij}| < \frac{\delta_w\,\lVert X\rVert_F}{F_{in}\,\lVert X_{:,i}\rVert_2} =: \tau_i,

i.e. a per-input-column threshold :math:`\tau_i` that grows as column :math:`i`'s signal shrinks
(an all-zero column loses all its weights). Normalisation: :math:`\lVert X\rVert_F / F_{in}` is the
input's total energy spread over its columns, so :math:`\delta_w` is dimensionless and does not
depend on the feature scale (multiplying :math:`X` by :math:`c` leaves the mask unchanged).
:math:`\delta_w = 0` keeps every entry.

Reference-code detail (``ThrInPrune`` in gdmnl/Unifews): each :math:`\tau_i` is clamped to
:math:`0.999\max_{ij}|W_{ij}|`, so a column whose threshold exceeds the largest weight keeps only
entries close to that maximum instead of none. Available as ``clamp=True``.
"""
from __future__ import annotations

import torch
from torch import Tensor

from xflow.errors import ShapeMismatch

__all__ = ["message_norms", "edge_prune_mask", "weight_prune_mask", "self_loop_mask"]


def self_loop_mask(edge_index: Tensor) -> Tensor:
    """Boolean ``(E,)``: which edges are self-loops ``(u, u)``."""
    return edge_index[0] == edge_index[1]


@torch.no_grad()
def message_norms(h: Tensor, edge_index: Tensor, edge_weight: Tensor) -> Tensor:
    r"""``‖m_uv‖ = |Â_vu|·‖h_u‖`` for every edge (``edge_index[0]`` = source ``u``).

    ``h`` may be ``(N, F)`` with ``edge_weight`` ``(E,)``, or multi-head ``(N, H, F)`` with
    ``edge_weight`` ``(E, H)``: then :math:`\lVert m_{uv}\rVert^2 = \sum_h \alpha_{uv,h}^2 \lVert h_{u,h}\rVert^2`.
    """
    src = edge_index[0]
    if h.dim() == 3:
        node = h.pow(2).sum(-1)  # (N, H)
        w2 = edge_weight.reshape(edge_weight.shape[0], -1).pow(2)
        return (w2 * node[src]).sum(-1).sqrt()
    return edge_weight.abs() * h.norm(dim=-1)[src]


@torch.no_grad()
def edge_prune_mask(norms: Tensor, candidates: Tensor, self_loops: Tensor, delta_a: float) -> Tensor:
    """Unifews edge rule: keep candidate edges with ``norm ≥ δ_a · mean(norm over candidates)``, plus self-loops.

    Args:
        norms: ``(E,)`` message norms of this layer.
        candidates: ``(E,)`` bool, the edges kept by the previous layer (all ``True`` at layer 1).
        self_loops: ``(E,)`` bool, always kept (if they are candidates).
        delta_a: the threshold factor ``δ_a ≥ 0``.

    Returns:
        ``(E,)`` bool mask, a subset of ``candidates``.
    """
    if delta_a < 0:
        raise ValueError(f"delta_a must be >= 0, got {delta_a}")
    if delta_a == 0 or not bool(candidates.any()):
        return candidates.clone()
    mean = norms[candidates].mean()
    return candidates & ((norms >= delta_a * mean) | self_loops)


@torch.no_grad()
def weight_prune_mask(weight: Tensor, x: Tensor | None, delta_w: float, clamp: bool = False, *,
                      col_norms: Tensor | None = None, fro_norm: Tensor | None = None) -> Tensor:
    """Unifews weight rule: keep ``W_ij`` iff ``|W_ij| ≥ τ_i = δ_w·‖X‖_F / (F_in·‖X[:, i]‖)``.

    Args:
        weight: ``(F_in, F_out)`` (input feature ``i``, output ``j``).
        x: ``(N, F_in)`` the layer's input (or ``None`` when ``col_norms``/``fro_norm`` are given).
        delta_w: the threshold factor ``δ_w ≥ 0``.
        clamp: cap every ``τ_i`` at ``0.999·max|W|`` (as the reference code does).
        col_norms, fro_norm: precomputed ``‖X[:, i]‖`` and ``‖X‖_F`` (sparse or cached inputs).

    Returns:
        ``(F_in, F_out)`` bool mask of kept entries. The reference skips pruning when
        ``‖X‖_F / F_in ≤ 1e-8`` (an all-zero input); so does this rule (every entry kept).
    """
    if delta_w < 0:
        raise ValueError(f"delta_w must be >= 0, got {delta_w}")
    if col_norms is None:
        if x is None:
            raise ValueError("weight_prune_mask needs x or col_norms")
        if x.shape[-1] != weight.shape[0]:
            raise ShapeMismatch(f"input has {x.shape[-1]} features but weight expects {weight.shape[0]}")
        col, fro = x.norm(dim=0), x.norm()
    else:
        if col_norms.shape[0] != weight.shape[0]:
            raise ShapeMismatch(f"input has {col_norms.shape[0]} features but weight expects {weight.shape[0]}")
        col = col_norms
        fro = col_norms.norm() if fro_norm is None else fro_norm
    if delta_w == 0:
        return torch.ones_like(weight, dtype=torch.bool)
    f_in = weight.shape[0]
    if float(fro) / f_in <= 1e-8:
        return torch.ones_like(weight, dtype=torch.bool)
    thr = delta_w * fro / f_in
    if not clamp:
        return (weight.abs() * col[:, None]) >= thr
    tau = thr / col  # inf for all-zero columns
    tau = torch.clamp(tau, max=float(weight.abs().max()) * (1 - 1e-3))
    return weight.abs() >= tau[:, None]
