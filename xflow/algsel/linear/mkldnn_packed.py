"""``mkldnn_packed``: oneDNN's inner product on a weight prepacked once into its blocked layout.

The weight is reordered for oneDNN (``mkldnn._reorder_linear_weight``, a cached transform) and
every call runs ``mkldnn._linear_pointwise`` — what ``torch.compile``'s CPU backend emits for a
frozen Linear. Inference only (no autograd kernel): a training forward uses ``default`` instead,
and the autotuner does not offer it in training mode. CPU, float32.
"""
from __future__ import annotations

import torch

from xflow.algsel.algorithms._base import MemoryUse, cached_transform
from xflow.algsel.linear._base import LinearAlgorithm, LinearConfig

__all__ = ["MkldnnPackedLinear"]


class MkldnnPackedLinear(LinearAlgorithm):
    """oneDNN inner product with the weight prepacked (CPU, inference only)."""

    name = "mkldnn_packed"
    tolerance = 1e-5
    summary = "oneDNN inner product on a prepacked weight (CPU, inference only)"
    devices = ("cpu",)
    differentiable = False

    def available(self, device="cpu") -> str | None:
        reason = super().available(device)
        if reason is None and not (torch.backends.mkldnn.is_available()
                                   and hasattr(torch.ops.mkldnn, "_linear_pointwise")):
            return "this torch build has no oneDNN linear kernels"
        return reason

    def memory(self, config: LinearConfig, input_shape, itemsize: int = 4) -> MemoryUse:
        return MemoryUse(config.in_features * config.out_features * itemsize, 0)

    def linear(self, x, weight, bias, state=None):
        packed = cached_transform(state, ("mkldnn_packed",), weight,
                                  lambda w: torch.ops.mkldnn._reorder_linear_weight(w.detach().contiguous(), None))
        x2 = x.reshape(-1, x.shape[-1])
        y = torch.ops.mkldnn._linear_pointwise(x2 if x2.is_contiguous() else x2.contiguous(), packed,
                                               None if bias is None else bias.detach(), "none", [], "")
        return y.reshape(*x.shape[:-1], weight.shape[0])
