"""Registry of 2-D convolution algorithms, one per file.

======================  ==============================================  ============================
name                    what                                            supports
======================  ==============================================  ============================
``default``             ``F.conv2d`` (oneDNN or THNN / cuDNN)           everything
``direct``              shift-and-GEMM: one GEMM per kernel offset      everything
``im2col``              unfold + GEMM                                   everything
``implicit_gemm``       row-blocked unfold + GEMM, bounded buffer       everything
``winograd_2x2``        Winograd F(2×2, 3×3)                            3×3, stride 1, dilation 1
``winograd_4x4``        Winograd F(4×4, 3×3)                            3×3, stride 1, dilation 1
``fft``                 FFT convolution, spectra cached up to a bound   everything
``channels_last``       framework conv on NHWC tensors                  everything
``mkldnn``              oneDNN forced (skips the THNN heuristic)        CPU
``mkldnn_packed``       oneDNN on a prepacked weight                    CPU, inference only
``cudnn_*``, ``cuda_native``  cuDNN algorithm policies (:mod:`.cudnn`)  GPU
======================  ==============================================  ============================

Aliases: ``winograd`` → ``winograd_2x2``, ``smm`` → ``implicit_gemm``, ``gemm`` → ``im2col``,
``onednn`` → ``mkldnn``.

Adding an algorithm: write ``xflow/algsel/algorithms/<name>.py`` with a :class:`ConvAlgorithm`
subclass (``name``, ``tolerance``, ``summary``, ``supports``, ``conv2d``; ``devices``/``available``,
``memory`` and ``differentiable`` where they differ from the defaults), add one line to
``_REGISTRY`` below, and the parametrised tests in ``tests/algsel/test_algorithms.py`` pick it up.
"""
from __future__ import annotations

from xflow.algsel.algorithms._base import ConvAlgorithm, ConvConfig, MemoryUse, out_size
from xflow.algsel.algorithms.channels_last import ChannelsLast
from xflow.algsel.algorithms.cudnn import CUDNN_MODES, CudnnMode
from xflow.algsel.algorithms.default import Default
from xflow.algsel.algorithms.direct import Direct
from xflow.algsel.algorithms.fft import FFT
from xflow.algsel.algorithms.im2col import Im2col
from xflow.algsel.algorithms.implicit_gemm import ImplicitGemm
from xflow.algsel.algorithms.mkldnn import Mkldnn
from xflow.algsel.algorithms.mkldnn_packed import MkldnnPacked
from xflow.algsel.algorithms.winograd import Winograd2x2, Winograd4x4
from xflow.algsel._registry import AlgorithmRegistry

__all__ = [
    "ConvAlgorithm", "ConvConfig", "MemoryUse", "out_size", "get_algorithm", "list_algorithms",
    "register_algorithm", "ALIASES", "Default", "Direct", "Im2col", "ImplicitGemm", "Winograd2x2",
    "Winograd4x4", "FFT", "ChannelsLast", "Mkldnn", "MkldnnPacked", "CudnnMode",
]

_FAMILY: AlgorithmRegistry[ConvAlgorithm] = AlgorithmRegistry(
    "convolution algorithm", ConvAlgorithm, (Default(), Direct(), Im2col(), ImplicitGemm(), Winograd2x2(), Winograd4x4(), FFT(),
     ChannelsLast(), Mkldnn(), MkldnnPacked(), *CUDNN_MODES),
    {"winograd": "winograd_2x2", "smm": "implicit_gemm", "gemm": "im2col", "onednn": "mkldnn"})
_REGISTRY = _FAMILY.entries  # name → algorithm (tests patch it)
ALIASES = _FAMILY.aliases


def list_algorithms(device: str | None = None) -> list[str]:
    """Registered convolution algorithm names (canonical, no aliases), ``default`` first; with ``device``, only
    those available there (e.g. no cuDNN modes on ``'cpu'``)."""
    return _FAMILY.names(device)


def get_algorithm(name: str | ConvAlgorithm) -> ConvAlgorithm:
    """The convolution algorithm registered as ``name`` (or an alias); an instance is returned as is.

    Raises:
        UnknownName: not registered (the message lists the valid names and aliases).
    """
    return _FAMILY.get(name)


def register_algorithm(algorithm: ConvAlgorithm, *, replace: bool = False) -> None:
    """Add a user convolution algorithm (``replace=True`` to override an existing name)."""
    _FAMILY.register(algorithm, replace=replace)
