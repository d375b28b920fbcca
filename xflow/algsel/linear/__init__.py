"""Registry of Linear (MatMul) algorithms, one per file (ai3 converts Linear too: its ``gemm``).

==================  ==============================================  =========================
name                what                                            supports
==================  ==============================================  =========================
``default``         ``F.linear`` (TN GEMM on the weight's view)     everything
``gemm_t``          NN GEMM on a cached transposed weight           everything
``blocked``         GEMM in blocks of output features               everything
``mkldnn_packed``   oneDNN inner product, prepacked weight          CPU, inference only
==================  ==============================================  =========================

Add one: ``xflow/algsel/linear/<name>.py`` with a :class:`LinearAlgorithm` subclass, one line in
``_REGISTRY``; ``tests/algsel/test_linear_pool.py`` checks it against ``F.linear``.
"""
from __future__ import annotations

from xflow.algsel.linear._base import LinearAlgorithm, LinearConfig
from xflow.algsel.linear.blocked import BlockedLinear
from xflow.algsel.linear.default import DefaultLinear
from xflow.algsel.linear.gemm_t import GemmTransposed
from xflow.algsel.linear.mkldnn_packed import MkldnnPackedLinear
from xflow.algsel._registry import AlgorithmRegistry

__all__ = ["LinearAlgorithm", "LinearConfig", "get_linear_algorithm", "list_linear_algorithms",
           "register_linear_algorithm"]

_FAMILY: AlgorithmRegistry[LinearAlgorithm] = AlgorithmRegistry(
    "linear algorithm", LinearAlgorithm, (DefaultLinear(), GemmTransposed(), BlockedLinear(), MkldnnPackedLinear()),
    {"gemm": "default", "onednn": "mkldnn_packed"})
_REGISTRY = _FAMILY.entries  # name → algorithm (tests patch it)
ALIASES = _FAMILY.aliases


def list_linear_algorithms(device: str | None = None) -> list[str]:
    """Registered linear algorithm names (canonical, no aliases), ``default`` first; with ``device``, only
    those available there."""
    return _FAMILY.names(device)


def get_linear_algorithm(name: str | LinearAlgorithm) -> LinearAlgorithm:
    """The linear algorithm registered as ``name`` (or an alias); an instance is returned as is.

    Raises:
        UnknownName: not registered (the message lists the valid names and aliases).
    """
    return _FAMILY.get(name)


def register_linear_algorithm(algorithm: LinearAlgorithm, *, replace: bool = False) -> None:
    """Add a user linear algorithm (``replace=True`` to override an existing name)."""
    _FAMILY.register(algorithm, replace=replace)
