"""Per-layer convolution algorithm selection (after ai3, Cronin & Kuppannagari 2024).

Swap each ``nn.Conv2d`` of an existing PyTorch model to an algorithm of your choice — by name, per
layer, by module name, or by a function of the layer and its input shape — keeping the weights;
or let :func:`autotune` measure every applicable algorithm per layer on the target device and pick
the fastest (``default`` = the framework's own convolution is always a candidate).

>>> from xflow.algsel import swap_conv2d, autotune
>>> fast = swap_conv2d(model, "winograd_4x4")                    # uniform, with fallback warnings
>>> mixed = swap_conv2d(model, {"features.0": "im2col"})          # by module name
>>> tuned = autotune(model, torch.randn(1, 3, 224, 224))          # .model, .choices, .report
"""
from __future__ import annotations

from xflow.algsel.algorithms import (
    ConvAlgorithm,
    ConvConfig,
    get_algorithm,
    list_algorithms,
    register_algorithm,
)
from xflow.algsel.autotune import TuneResult, autotune, layer_input_shapes
from xflow.algsel.experiment import rel_err, run
from xflow.algsel.models import MODEL_NAMES, build_model
from xflow.algsel.module import AlgoConv2d, AlgorithmFallbackWarning
from xflow.algsel.swap import choices, conv_layers, describe_choices, swap_conv2d

__all__ = [
    "ConvAlgorithm", "ConvConfig", "get_algorithm", "list_algorithms", "register_algorithm",
    "AlgoConv2d", "AlgorithmFallbackWarning", "swap_conv2d", "conv_layers", "choices",
    "describe_choices", "autotune", "TuneResult", "layer_input_shapes", "run", "rel_err",
    "build_model", "MODEL_NAMES",
]
