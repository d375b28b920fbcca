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
from xflow.errors import UnknownName

__all__ = ["LinearAlgorithm", "LinearConfig", "get_linear_algorithm", "list_linear_algorithms",
           "register_linear_algorithm"]

_REGISTRY: dict[str, LinearAlgorithm] = {
    a.name: a for a in (DefaultLinear(), GemmTransposed(), BlockedLinear(), MkldnnPackedLinear())
}
ALIASES = {"gemm": "default", "onednn": "mkldnn_packed"}


def list_linear_algorithms(device: str | None = None) -> list[str]:
    """Registered linear algorithm names, ``default`` first (only those available on ``device``)."""
    return [n for n, a in _REGISTRY.items() if device is None or a.available(device) is None]


def get_linear_algorithm(name: str | LinearAlgorithm) -> LinearAlgorithm:
    """The linear algorithm registered as ``name`` (or an alias).

    Raises:
        UnknownName: not registered (the message lists the valid names).
    """
    if isinstance(name, LinearAlgorithm):
        return name
    key = ALIASES.get(str(name).lower(), str(name).lower())
    if key not in _REGISTRY:
        raise UnknownName(f"unknown linear algorithm {name!r}; choose one of {', '.join(_REGISTRY)}")
    return _REGISTRY[key]


def register_linear_algorithm(algorithm: LinearAlgorithm, *, replace: bool = False) -> None:
    """Add a user linear algorithm (``replace=True`` to override)."""
    if algorithm.name in _REGISTRY and not replace:
        raise ValueError(f"linear algorithm {algorithm.name!r} already registered (pass replace=True)")
    _REGISTRY[algorithm.name] = algorithm
