"""``mkldnn_packed``: oneDNN convolution with the weight prepacked once into oneDNN's blocked layout.

What ``torch.utils.mkldnn.to_mkldnn`` does for a whole model, per layer: the weight is reordered to
the blocked format oneDNN's kernel wants (``mkldnn_reorder_conv2d_weight``) and kept (a cached
transform, recomputed when the weight changes); each call converts the input to a oneDNN tensor
and the output back to a dense one. Inference only — oneDNN tensors do not carry autograd — so a
training forward through this layer uses ``default`` instead (with a warning), and the autotuner
does not offer it in training mode. CPU only.
"""
from __future__ import annotations

import torch

from xflow.algsel.algorithms._base import ConvAlgorithm, ConvConfig, ConvGeometry, MemoryUse, cached_transform

__all__ = ["MkldnnPacked"]


class MkldnnPacked(ConvAlgorithm):
    """oneDNN convolution on a prepacked (blocked) weight; input/output converted per call."""

    name = "mkldnn_packed"
    tolerance = 1e-5
    summary = "oneDNN conv with the weight prepacked once (CPU, inference only)"
    devices = ("cpu",)
    differentiable = False

    def available(self, device="cpu") -> str | None:
        reason = super().available(device)
        if reason is None and not torch.backends.mkldnn.is_available():
            return "this torch build has no oneDNN (mkldnn)"
        return reason

    def memory(self, config: ConvConfig, input_shape: tuple[int, ...], itemsize: int = 4) -> MemoryUse:
        s = ConvGeometry.from_config(config, input_shape)
        return MemoryUse(s.o * s.cg * s.kh * s.kw * itemsize,
                         (s.n * s.c * s.h * s.w + s.n * s.o * s.ho * s.wo) * itemsize)

    def conv2d(self, x, weight, bias, stride, padding, dilation, groups, state=None) -> torch.Tensor:
        pad, st, dil = list(padding), list(stride), list(dilation)
        packed = cached_transform(state, ("mkldnn_packed", tuple(pad), tuple(st), tuple(dil), groups), weight,
                                  lambda wt: torch._C._nn.mkldnn_reorder_conv2d_weight(
                                      wt.detach().contiguous().to_mkldnn(), pad, st, dil, groups))
        xin = x if x.is_contiguous() else x.contiguous()
        y = torch.mkldnn_convolution(xin.to_mkldnn(), packed, None if bias is None else bias.detach(), pad, st, dil,
                                     groups)
        return y.to_dense()
