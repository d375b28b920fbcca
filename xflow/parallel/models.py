"""The parallelizer's benchmark models — zoo entries tagged ``parallel`` — and an ONNX export helper.

* :data:`BENCH_MODELS` — the zoo models the benchmark and notebook 50 use (full and ``quick``
  sizes); :func:`torch_benchmark_model` / :func:`benchmark_model` give the torch module and the
  verified ONNX export of one (both from :mod:`xflow.graphs.zoo`);
* :class:`InceptionToy`, :class:`NasNetLike` — the two branchy toy nets (defined in
  :mod:`xflow.graphs.zoo_nets`, registered in the zoo);
* :func:`export_onnx` — export *any* module at batch 1 with the TorchScript exporter (cached by a
  hash of the weights and config), for tests on hand-made modules.
"""
from __future__ import annotations

import hashlib
import io
import warnings
from pathlib import Path

import torch
from torch import nn

from xflow.errors import UnknownName
from xflow.graphs import zoo
from xflow.graphs.zoo_nets import InceptionToy, NasNetLike
from xflow.paths import cache_dir
from xflow.safeio import atomic_write_bytes, verify_checksum, write_checksum

__all__ = ["InceptionToy", "NasNetLike", "export_onnx", "benchmark_model", "BENCH_MODELS",
           "torch_benchmark_model"]


def export_onnx(module: nn.Module, example: tuple[torch.Tensor, ...], name: str,
                opset: int = 17) -> Path:
    """Export ``module`` (eval mode) to ONNX at the example's fixed shapes; cached by content."""

    module = module.eval()
    h = hashlib.sha256()
    h.update(name.encode())
    for t in list(module.state_dict().values()) + list(example):
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().float().contiguous().numpy().tobytes()[:4096])
    path = cache_dir("parallel", "onnx") / f"{name}_{h.hexdigest()[:12]}.onnx"

    if not verify_checksum(path):  # missing, or truncated/modified (reported and removed): export
        buf = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, example, buf, dynamo=False, opset_version=opset,
                              input_names=[f"input{i}" for i in range(len(example))],
                              output_names=["output"])
        atomic_write_bytes(path, buf.getvalue())
        write_checksum(path)
    return path


#: Benchmark models (zoo names) and their config at full / ``quick`` size.
_BENCH_CFG: dict[str, tuple[dict, dict]] = {
    "inception_v3": ({"image_size": 299}, {"image_size": 139}),
    "googlenet": ({"image_size": 224}, {"image_size": 112}),
    "squeezenet1_1": ({"image_size": 224}, {"image_size": 112}),
    "resnet50": ({"image_size": 224}, {"image_size": 112}),
    "nasnet_like": ({"c": 32, "cells": 6, "image_size": 112}, {"c": 16, "cells": 4, "image_size": 64}),
    "inception_toy": ({"width": 16, "blocks": 2, "image_size": 64}, {"width": 16, "blocks": 2, "image_size": 32}),
}
BENCH_MODELS = tuple(_BENCH_CFG)


def _bench_cfg(name: str, quick: bool) -> dict:
    if name not in _BENCH_CFG:
        raise UnknownName(f"unknown benchmark model {name!r}; choose one of {', '.join(BENCH_MODELS)}")
    return dict(_BENCH_CFG[name][1 if quick else 0])


def torch_benchmark_model(name: str, *, quick: bool = False) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """A benchmark model (random, deterministic weights, eval mode) and its batch-1 input, from the
    zoo; ``quick`` shrinks the input resolution (and the toy models) so a pass takes milliseconds."""
    cfg = _bench_cfg(name, quick)
    return zoo.torch_model(name, **cfg), zoo.example_input(name, **cfg)


def benchmark_model(name: str, *, quick: bool = False) -> Path:
    """ONNX file of a benchmark model at batch 1 (the zoo's verified, cached export)."""
    return zoo.export(name, **_bench_cfg(name, quick))
