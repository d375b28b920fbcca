"""Models the algsel benchmark, notebook and CLI use: the zoo entries tagged ``algsel``.

``vgg16``, ``resnet50``, ``squeezenet1_1`` and ``alexnet`` are torchvision models with
``weights=None``; ``tiny`` (:class:`xflow.graphs.zoo_nets.TinyNet`) is a small CNN that exercises
every convolution feature for tests. All come from :mod:`xflow.graphs.zoo` (random init, never
downloaded weights); ``squeezenet`` and ``alexnet_like`` are accepted aliases.
"""
from __future__ import annotations

from torch import nn

from xflow.errors import UnknownName
from xflow.graphs import zoo
from xflow.graphs.zoo_nets import TinyNet

__all__ = ["build_model", "MODEL_NAMES", "TinyNet"]

#: The zoo models tagged ``algsel``.
MODEL_NAMES = tuple(zoo.list_models(tag="algsel"))
_ALIASES = {"squeezenet": "squeezenet1_1", "alexnet_like": "alexnet"}


def build_model(name: str, *, seed: int = 0) -> nn.Module:
    """A randomly initialised model in eval mode (weights from ``seed``), from the zoo.

    Raises:
        UnknownName: ``name`` is not one of :data:`MODEL_NAMES`.
    """
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in MODEL_NAMES:
        raise UnknownName(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    return zoo.torch_model(key, seed=seed)
