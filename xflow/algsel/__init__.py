"""Per-layer algorithm selection (after ai3, Cronin & Kuppannagari 2024): convolutions, linear
layers and pooling, for inference or training, plus the model-wide memory layout.

Swap each ``nn.Conv2d`` (``nn.Linear``, ``nn.MaxPool2d``/``nn.AvgPool2d``) of an existing PyTorch
model to an algorithm of your choice — by name, per layer, by module name, or by a function of the
layer and its input shape — keeping the weights; or let :func:`autotune` measure every applicable
algorithm per layer on the target device and keep ``default`` (the framework's own op) unless
another is significantly faster.

>>> from xflow.algsel import swap, swap_conv2d, autotune
>>> fast = swap_conv2d(model, "winograd_4x4")                    # uniform, with fallback warnings
>>> mixed = swap(model, {"conv2d": {"features.0": "im2col"}, "pool": "shift"})
>>> res = autotune(model, torch.randn(1, 3, 224, 224), layouts=("nchw", "channels_last"))
>>> res.model, res.choices, res.layout, res.report               # tuned copy, replayable choices
>>> train = autotune(model, torch.randn(8, 3, 224, 224), mode="train")   # forward+backward+update
"""
from __future__ import annotations

from xflow.algsel._selectable import AlgorithmFallbackWarning
from xflow.algsel.algorithms import (
    ConvAlgorithm,
    ConvConfig,
    get_algorithm,
    list_algorithms,
    register_algorithm,
)
from xflow.algsel.autotune import TuneResult, autotune, layer_input_shapes, record_layers, train_step
from xflow.algsel.experiment import rel_err, run
from xflow.algsel.linear import LinearAlgorithm, LinearConfig, get_linear_algorithm, list_linear_algorithms
from xflow.algsel.linear.module import AlgoLinear
from xflow.algsel.models import MODEL_NAMES, build_model
from xflow.algsel.module import AlgoConv2d
from xflow.algsel.ops import FAMILIES, LAYOUTS, OPS, model_layout, set_layout
from xflow.algsel.pool import PoolAlgorithm, PoolConfig, get_pool_algorithm, list_pool_algorithms
from xflow.algsel.pool.module import AlgoAvgPool2d, AlgoMaxPool2d
from xflow.algsel.swap import choices, conv_layers, describe_choices, swap, swap_conv2d, swap_linear, swap_pool

__all__ = [
    "ConvAlgorithm", "ConvConfig", "get_algorithm", "list_algorithms", "register_algorithm",
    "LinearAlgorithm", "LinearConfig", "get_linear_algorithm", "list_linear_algorithms",
    "PoolAlgorithm", "PoolConfig", "get_pool_algorithm", "list_pool_algorithms",
    "AlgoConv2d", "AlgoLinear", "AlgoMaxPool2d", "AlgoAvgPool2d", "AlgorithmFallbackWarning",
    "swap", "swap_conv2d", "swap_linear", "swap_pool", "conv_layers", "choices", "describe_choices",
    "FAMILIES", "OPS", "LAYOUTS", "set_layout", "model_layout",
    "autotune", "TuneResult", "layer_input_shapes", "record_layers", "train_step", "run", "rel_err",
    "build_model", "MODEL_NAMES",
]
