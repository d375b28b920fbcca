"""Registry of 2-D pooling algorithms (``nn.MaxPool2d``, ``nn.AvgPool2d``), one per file
(ai3 converts pooling too: its ``direct``).

==================  ================================================  ==============================
name                what                                              supports
==================  ================================================  ==============================
``default``         ``F.max_pool2d`` / ``F.avg_pool2d``               everything
``channels_last``   framework pooling on NHWC tensors                 no indices
``shift``           separable shift-and-max / shift-and-add           no indices; avg: no ceil_mode
``unfold``          unfold windows to columns, reduce                 no indices, no ceil_mode
==================  ================================================  ==============================

Add one: ``xflow/algsel/pool/<name>.py`` with a :class:`PoolAlgorithm` subclass, one line in
``_REGISTRY``; ``tests/algsel/test_linear_pool.py`` checks it against the torch ops.
"""
from __future__ import annotations

from xflow.algsel.pool._base import PoolAlgorithm, PoolConfig, pool_out_size
from xflow.algsel.pool.channels_last import ChannelsLastPool
from xflow.algsel.pool.default import DefaultPool
from xflow.algsel.pool.shift import ShiftPool
from xflow.algsel.pool.unfold import UnfoldPool
from xflow.algsel._registry import AlgorithmRegistry

__all__ = ["PoolAlgorithm", "PoolConfig", "pool_out_size", "get_pool_algorithm", "list_pool_algorithms",
           "register_pool_algorithm"]

_FAMILY: AlgorithmRegistry[PoolAlgorithm] = AlgorithmRegistry(
    "pooling algorithm", PoolAlgorithm, (DefaultPool(), ChannelsLastPool(), ShiftPool(), UnfoldPool()),
    {"direct": "shift"})
_REGISTRY = _FAMILY.entries  # name → algorithm (tests patch it)
ALIASES = _FAMILY.aliases


def list_pool_algorithms(device: str | None = None) -> list[str]:
    """Registered pooling algorithm names (canonical, no aliases), ``default`` first; with ``device``,
    only those available there."""
    return _FAMILY.names(device)


def get_pool_algorithm(name: str | PoolAlgorithm) -> PoolAlgorithm:
    """The pooling algorithm registered as ``name`` (or an alias); an instance is returned as is.

    Raises:
        UnknownName: not registered (the message lists the valid names).
    """
    return _FAMILY.get(name)


def register_pool_algorithm(algorithm: PoolAlgorithm, *, replace: bool = False) -> None:
    """Add a user pooling algorithm (``replace=True`` to override an existing name)."""
    _FAMILY.register(algorithm, replace=replace)
