"""The source prelude of every generated PyTorch module (imports and helpers), one string.

Its own module so that the op tuner (:mod:`xflow.runtime.backend_tune`) and the code generator
(:mod:`xflow.runtime.backend_codegen`) share it without importing each other.
"""
from __future__ import annotations

__all__ = ["PRELUDE"]

PRELUDE = '''
import os
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def load_weights(path: str) -> Dict[str, Tensor]:
    """Read the initializers of the ONNX model at ``path`` into torch tensors (by ONNX name)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(path)
    return {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in model.graph.initializer}


def _fold_bn(w: Tensor, b: Optional[Tensor], scale: Tensor, beta: Tensor, mean: Tensor, var: Tensor,
             eps: float) -> Tuple[Tensor, Tensor]:
    """Inference BatchNorm folded into the preceding convolution: w' = w·s, b' = (b - mean)·s + beta,
    s = scale / sqrt(var + eps)."""
    s = scale / torch.sqrt(var + eps)
    w2 = w * s.reshape([-1] + [1] * (w.dim() - 1))
    b0 = b if b is not None else torch.zeros_like(mean)
    return w2.contiguous(), (b0 - mean) * s + beta


def _prepack_conv(w: Tensor, padding: List[int], stride: List[int], dilation: List[int], groups: int,
                  input_size: List[int]) -> Tensor:
    """The convolution weight reordered once into oneDNN's blocked layout for this input size."""
    return torch.ops.mkldnn._reorder_convolution_weight(w, padding, stride, dilation, groups, input_size)


def _lrn(x: Tensor, size: int, alpha: float, beta: float, bias: float) -> Tensor:
    """ONNX LRN for even ``size`` (window floor((size-1)/2) channels before, ceil((size-1)/2) after)."""
    sq = (x * x).unsqueeze(1)
    before, after = (size - 1) // 2, size - 1 - (size - 1) // 2
    sq = F.pad(sq, [0, 0, 0, 0, before, after])
    s = F.avg_pool3d(sq, [size, 1, 1], [1, 1, 1]).squeeze(1)
    return x / torch.pow(s * alpha + bias, beta)


_NNPACK = torch._nnpack_available()  # also initializes NNPACK (its convolution fails before)


def _set_threads(n: int) -> None:
    if n > 0 and torch.get_num_threads() != n:
        torch.set_num_threads(n)


def _compile_kernels(k: torch.nn.Module, methods: List[str], graph: bool) -> torch.nn.Module:
    """TorchScript-compile ``k``; with ``graph`` (lowering ``onednn="graph"``) also freeze it (weights
    become constants) for torch's oneDNN Graph fuser (see :func:`_onednn_fusion`)."""
    with warnings.catch_warnings():  # torch>=2.9 marks TorchScript deprecated
        warnings.simplefilter('ignore', FutureWarning)
        k = torch.jit.script(k)
        if graph:
            k = torch.jit.freeze(k, preserved_attrs=methods)
    return k


def _onednn_fusion(on: bool) -> bool:
    """Set torch's oneDNN Graph fuser switch and return its previous state. The switch is
    process-wide and read when TorchScript (re-)optimizes a graph during a call, so a module of the
    ``graph`` lowering turns it on only for its own calls: other TorchScript modules of the process
    are not re-optimized into oneDNN partitions (which broke ``torch.cat`` on their outputs)."""
    prev = torch.jit.onednn_fusion_enabled()
    if prev != on:
        torch.jit.enable_onednn_fusion(on)
    return prev


def _worker_init() -> None:
    torch.set_num_threads(1)
    torch.set_grad_enabled(False)


def _fail(exc: BaseException, *futures: Future) -> None:
    for f in futures:
        if not f.done():
            f.set_exception(exc)
'''
