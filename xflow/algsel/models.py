"""Models the algsel benchmark, notebook and CLI use (random init, never downloaded weights).

``vgg16``, ``resnet50``, ``squeezenet1_1`` and ``alexnet`` come from torchvision with
``weights=None``; ``tiny`` is a small CNN that exercises every convolution feature (3×3, 5×5, 1×1,
stride 2, dilation, groups, depthwise, ``padding='same'``, reflect padding), a max and an average
pooling and a linear layer, for tests.
"""
from __future__ import annotations

import torch
from torch import nn

from xflow.errors import UnknownName

__all__ = ["build_model", "MODEL_NAMES", "TinyNet"]

MODEL_NAMES = ("vgg16", "resnet50", "squeezenet1_1", "alexnet", "tiny")
_ALIASES = {"squeezenet": "squeezenet1_1", "alexnet_like": "alexnet"}


class TinyNet(nn.Module):
    """A 7-conv CNN covering the configuration space, with max/avg pooling and a linear head (for
    tests and quick demos)."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
            nn.Conv2d(8, 16, 5, stride=2, padding=2), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 16, 3, padding=2, dilation=2, groups=4), nn.ReLU(),
            nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False), nn.ReLU(),
            nn.Conv2d(16, 24, 1), nn.ReLU(),
            nn.Conv2d(24, 24, 3, padding="same"), nn.ReLU(),
            nn.Conv2d(24, 32, 3, padding=1, padding_mode="reflect"), nn.ReLU(),
            nn.MaxPool2d(3, stride=2, padding=1), nn.AvgPool2d(2, ceil_mode=True),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


def build_model(name: str, *, seed: int = 0) -> nn.Module:
    """A randomly initialised model in eval mode (``torch.manual_seed(seed)`` first).

    Raises:
        UnknownName: ``name`` is not one of :data:`MODEL_NAMES`.
    """
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in MODEL_NAMES:
        raise UnknownName(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    torch.manual_seed(seed)
    if key == "tiny":
        return TinyNet().eval()
    import torchvision.models as tvm

    return getattr(tvm, key)(weights=None).eval()
