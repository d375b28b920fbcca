"""``mkldnn``: oneDNN's convolution called directly, on dense NCHW tensors (CPU).

``F.conv2d`` on CPU picks between oneDNN (``mkldnn_convolution``) and ATen's own im2col + GEMM
(``_slow_conv2d_forward``, "THNN") by a fixed heuristic: with one thread, batch 1 and a 1×1 kernel,
or a small input, it takes THNN. This algorithm always takes oneDNN, so the autotuner can measure
which of the two is faster per layer instead of trusting the heuristic. oneDNN still reorders the
weight to its blocked layout on every call (see ``mkldnn_packed`` for the prepacked variant).
Differentiable (``MkldnnConvolutionBackward``). Float32/bfloat16 on CPU only.
"""
from __future__ import annotations

import torch

from xflow.algsel.algorithms._base import ConvAlgorithm

__all__ = ["Mkldnn"]


class Mkldnn(ConvAlgorithm):
    """``torch.mkldnn_convolution`` (oneDNN) regardless of the framework's heuristic."""

    name = "mkldnn"
    tolerance = 1e-5
    summary = "oneDNN convolution forced (CPU), skipping the framework's THNN heuristic"
    devices = ("cpu",)

    def available(self, device="cpu") -> str | None:
        reason = super().available(device)
        if reason is None and not torch.backends.mkldnn.is_available():
            return "this torch build has no oneDNN (mkldnn)"
        return reason

    def conv2d(self, x, weight, bias, stride, padding, dilation, groups, state=None) -> torch.Tensor:
        return torch.mkldnn_convolution(x, weight, bias, list(padding), list(stride), list(dilation), groups)
