"""``channels_last``: the framework's own convolution on NHWC (``channels_last``) tensors.

A framework-native variant rather than a different arithmetic: the input is converted to
``torch.channels_last`` (NHWC strides), the weight is kept converted per layer (a cached
transform), and ``F.conv2d`` runs the backend's NHWC kernel (oneDNN on CPU, cuDNN's NHWC kernels
on GPU) — NCHW calls reorder activations to a blocked layout inside every call. As a *per-layer*
choice in an NCHW model it pays two layout conversions per call
(the wrapping module returns the output in the input's layout); inside a model that runs
channels_last end to end (the autotuner's ``channels_last`` layout) it is the default path and
costs nothing extra.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from xflow.algsel.algorithms._base import ConvAlgorithm, ConvConfig, ConvGeometry, MemoryUse, cached_transform

__all__ = ["ChannelsLast"]


class ChannelsLast(ConvAlgorithm):
    """``F.conv2d`` on channels_last input and weight."""

    name = "channels_last"
    tolerance = 1e-5
    summary = "framework conv on NHWC (channels_last) tensors"

    def memory(self, config: ConvConfig, input_shape: tuple[int, ...], itemsize: int = 4) -> MemoryUse:
        s = ConvGeometry.from_config(config, input_shape)
        weight = s.o * s.cg * s.kh * s.kw * itemsize
        return MemoryUse(weight, (s.n * s.c * s.h * s.w + s.n * s.o * s.ho * s.wo) * itemsize)

    def conv2d(self, x, weight, bias, stride, padding, dilation, groups, state=None) -> torch.Tensor:
        cl = torch.channels_last
        w = cached_transform(state, ("channels_last",), weight, lambda wt: wt.contiguous(memory_format=cl),
                             lambda g: g)
        return F.conv2d(x.contiguous(memory_format=cl), w, bias, stride, padding, dilation, groups)
