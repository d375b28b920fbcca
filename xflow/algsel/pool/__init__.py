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
from xflow.errors import UnknownName

__all__ = ["PoolAlgorithm", "PoolConfig", "pool_out_size", "get_pool_algorithm", "list_pool_algorithms",
           "register_pool_algorithm"]

_REGISTRY: dict[str, PoolAlgorithm] = {a.name: a for a in (DefaultPool(), ChannelsLastPool(), ShiftPool(), UnfoldPool())}
ALIASES = {"direct": "shift"}


def list_pool_algorithms(device: str | None = None) -> list[str]:
    """Registered pooling algorithm names, ``default`` first (only those available on ``device``)."""
    return [n for n, a in _REGISTRY.items() if device is None or a.available(device) is None]


def get_pool_algorithm(name: str | PoolAlgorithm) -> PoolAlgorithm:
    """The pooling algorithm registered as ``name`` (or an alias).

    Raises:
        UnknownName: not registered (the message lists the valid names).
    """
    if isinstance(name, PoolAlgorithm):
        return name
    key = ALIASES.get(str(name).lower(), str(name).lower())
    if key not in _REGISTRY:
        raise UnknownName(f"unknown pooling algorithm {name!r}; choose one of {', '.join(_REGISTRY)}")
    return _REGISTRY[key]


def register_pool_algorithm(algorithm: PoolAlgorithm, *, replace: bool = False) -> None:
    """Add a user pooling algorithm (``replace=True`` to override)."""
    if algorithm.name in _REGISTRY and not replace:
        raise ValueError(f"pooling algorithm {algorithm.name!r} already registered (pass replace=True)")
    _REGISTRY[algorithm.name] = algorithm
