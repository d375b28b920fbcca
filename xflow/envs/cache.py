"""A least-recently-used cache bounded by bytes (an estimate given by the caller), not entries."""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Hashable

__all__ = ["ByteLRU"]


class ByteLRU:
    """``put(key, value, nbytes)`` / ``get(key)``; evicts the least recently used entries while the
    total of their ``nbytes`` exceeds ``max_bytes`` (one entry larger than the bound is not kept)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = int(max_bytes)
        self.nbytes = 0
        self._d: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()

    def get(self, key: Hashable) -> Any:
        """The value under ``key`` (``None`` when absent), marked as most recently used."""
        hit = self._d.get(key)
        if hit is None:
            return None
        self._d.move_to_end(key)
        return hit[0]

    def put(self, key: Hashable, value: Any, nbytes: int) -> None:
        """Store ``value`` (estimated ``nbytes``) and evict down to the bound."""
        old = self._d.pop(key, None)
        if old is not None:
            self.nbytes -= old[1]
        if nbytes > self.max_bytes:
            return
        self._d[key] = (value, int(nbytes))
        self.nbytes += int(nbytes)
        while self.nbytes > self.max_bytes and self._d:
            _, (_, n) = self._d.popitem(last=False)
            self.nbytes -= n

    def clear(self) -> None:
        """Drop everything."""
        self._d.clear()
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self._d)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._d
