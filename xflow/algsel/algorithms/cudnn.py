"""cuDNN modes: the framework's GPU convolution under each algorithm-choice policy torch exposes.

PyTorch does not let a caller name a cuDNN algorithm (ai3's C++ extension does: ``implicit gemm``,
``implicit precomp gemm``, ``gemm``, ``winograd``, ``guess``). What it exposes are policies that
change which algorithm cuDNN runs, each an algorithm here (GPU only), applied to the forward *and*
the backward call:

* ``cudnn_benchmark`` — cuDNN times every algorithm for the shape on first use and keeps the
  fastest (``torch.backends.cudnn.benchmark=True``);
* ``cudnn_heuristic`` — cuDNN's heuristic pick, no timing (``benchmark=False``);
* ``cudnn_deterministic`` — only deterministic algorithms (``deterministic=True``);
* ``cudnn_fp32`` — TF32 tensor-core math off (``allow_tf32=False``): full fp32 products, slower on
  Ampere+; ``default`` on GPU uses TF32 by torch's default;
* ``cuda_native`` — cuDNN off: ATen's own CUDA im2col + cuBLAS (``enabled=False``).

Cached choices live in torch (per shape), so the autotuner measures steady state after warm-up.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from xflow.algsel.algorithms._base import ConvAlgorithm

__all__ = ["CudnnMode", "CUDNN_MODES", "cudnn_flags"]


def cudnn_flags(**override):
    """``torch.backends.cudnn.flags`` with the current settings, ``override`` applied."""
    b = torch.backends.cudnn
    cur = {"enabled": b.enabled, "benchmark": b.benchmark, "deterministic": b.deterministic,
           "allow_tf32": b.allow_tf32}
    cur.update(override)
    return b.flags(**cur)


class _FlaggedConv(torch.autograd.Function):
    """``F.conv2d`` whose forward and backward both run under the same cuDNN flags."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation, groups, flags):  # noqa: D102
        ctx.conf = (stride, padding, dilation, groups, flags, bias is not None)
        ctx.save_for_backward(x, weight)
        with cudnn_flags(**flags):
            return F.conv2d(x, weight, bias, stride, padding, dilation, groups)

    @staticmethod
    def backward(ctx, grad):  # noqa: D102
        x, weight = ctx.saved_tensors
        stride, padding, dilation, groups, flags, has_bias = ctx.conf
        mask = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], has_bias and ctx.needs_input_grad[2]]
        with cudnn_flags(**flags):
            gx, gw, gb = torch.ops.aten.convolution_backward(
                grad, x, weight, [weight.shape[0]] if has_bias else None, list(stride), list(padding), list(dilation),
                False, [0, 0], groups, mask)
        return gx, gw, gb if has_bias else None, None, None, None, None, None


class CudnnMode(ConvAlgorithm):
    """``F.conv2d`` under fixed ``torch.backends.cudnn`` flags (forward and backward)."""

    tolerance = 1e-5
    devices = ("cuda",)

    def __init__(self, name: str, summary: str, tolerance: float = 1e-5, **flags) -> None:
        self.name, self.summary, self.tolerance, self.flags = name, summary, tolerance, dict(flags)

    def available(self, device="cuda") -> str | None:
        reason = super().available(device)
        if reason is None and self.flags.get("enabled", True) and not torch.backends.cudnn.is_available():
            return "this torch build has no cuDNN"
        return reason

    def conv2d(self, x, weight, bias, stride, padding, dilation, groups, state=None) -> torch.Tensor:
        return _FlaggedConv.apply(x, weight, bias, tuple(stride), tuple(padding), tuple(dilation), groups, self.flags)


#: The registered cuDNN modes (GPU only). TF32 changes the arithmetic (10-bit mantissa products).
CUDNN_MODES = (
    CudnnMode("cudnn_benchmark", "cuDNN: time all algorithms per shape, keep the fastest", 1e-2, benchmark=True),
    CudnnMode("cudnn_heuristic", "cuDNN: heuristic algorithm pick, no timing", 1e-2, benchmark=False),
    CudnnMode("cudnn_deterministic", "cuDNN: deterministic algorithms only", 1e-2, deterministic=True,
              benchmark=False),
    CudnnMode("cudnn_fp32", "cuDNN with TF32 off (full fp32 products)", 1e-5, allow_tf32=False),
    CudnnMode("cuda_native", "cuDNN off: ATen's CUDA im2col + cuBLAS", 1e-2, enabled=False),
)
