"""Registry of 2-D convolution algorithms, one per file.

====================  ===========================================  ============================
name                  what                                         supports
====================  ===========================================  ============================
``default``           ``F.conv2d`` (oneDNN / cuDNN)                everything
``direct``            sum over kernel offsets of window GEMMs      everything
``im2col``            unfold + GEMM                                everything
``implicit_gemm``     row-tiled unfold + GEMM, bounded buffer      everything
``winograd_2x2``      Winograd F(2×2, 3×3)                         3×3, stride 1, dilation 1
``winograd_4x4``      Winograd F(4×4, 3×3)                         3×3, stride 1, dilation 1
``fft``               FFT convolution                              everything
====================  ===========================================  ============================

Aliases: ``winograd`` → ``winograd_2x2``, ``smm`` → ``implicit_gemm``, ``gemm`` → ``im2col``.

Adding an algorithm: write ``xflow/algsel/algorithms/<name>.py`` with a :class:`ConvAlgorithm`
subclass (``name``, ``tolerance``, ``summary``, ``supports``, ``conv2d``), add one line to
``_REGISTRY`` below, and the parametrised tests in ``tests/algsel/test_algorithms.py`` pick it up.
"""
from __future__ import annotations

from xflow.algsel.algorithms._base import ConvAlgorithm, ConvConfig, out_size
from xflow.algsel.algorithms.default import Default
from xflow.algsel.algorithms.direct import Direct
from xflow.algsel.algorithms.fft import FFT
from xflow.algsel.algorithms.im2col import Im2col
from xflow.algsel.algorithms.implicit_gemm import ImplicitGemm
from xflow.algsel.algorithms.winograd import Winograd2x2, Winograd4x4
from xflow.errors import UnknownName

__all__ = [
    "ConvAlgorithm", "ConvConfig", "out_size", "get_algorithm", "list_algorithms", "register_algorithm",
    "ALIASES", "Default", "Direct", "Im2col", "ImplicitGemm", "Winograd2x2", "Winograd4x4", "FFT",
]

_REGISTRY: dict[str, ConvAlgorithm] = {
    a.name: a for a in (Default(), Direct(), Im2col(), ImplicitGemm(), Winograd2x2(), Winograd4x4(), FFT())
}
ALIASES: dict[str, str] = {"winograd": "winograd_2x2", "smm": "implicit_gemm", "gemm": "im2col"}


def list_algorithms() -> list[str]:
    """Registered algorithm names (canonical, no aliases), ``default`` first."""
    return list(_REGISTRY)


def get_algorithm(name: str | ConvAlgorithm) -> ConvAlgorithm:
    """The algorithm registered as ``name`` (or an alias); an instance is returned as is.

    Raises:
        UnknownName: ``name`` is not registered (the message lists the valid names).
    """
    if isinstance(name, ConvAlgorithm):
        return name
    key = ALIASES.get(str(name).lower(), str(name).lower())
    if key not in _REGISTRY:
        raise UnknownName(
            f"unknown convolution algorithm {name!r}; choose one of {', '.join(list_algorithms())} "
            f"(aliases: {', '.join(f'{k}→{v}' for k, v in ALIASES.items())})"
        )
    return _REGISTRY[key]


def register_algorithm(algorithm: ConvAlgorithm, *, replace: bool = False) -> None:
    """Add a user algorithm to the registry (``replace=True`` to override an existing name)."""
    if algorithm.name in _REGISTRY and not replace:
        raise ValueError(f"algorithm {algorithm.name!r} already registered (pass replace=True)")
    _REGISTRY[algorithm.name] = algorithm
