"""``default``: the framework's own convolution (oneDNN on CPU, cuDNN on GPU).

The baseline every other algorithm is compared against and always a candidate of the autotuner,
so a tuned model is never worse than the framework by construction (up to timing noise).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from xflow.algsel.algorithms._base import ConvAlgorithm

__all__ = ["Default"]


class Default(ConvAlgorithm):
    """``torch.nn.functional.conv2d``: whatever the backend picks (every configuration)."""

    name = "default"
    tolerance = 1e-6
    summary = "framework convolution (oneDNN / cuDNN)"

    def conv2d(self, x, weight, bias, stride, padding, dilation, groups, state=None) -> torch.Tensor:
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)
