"""One name → algorithm registry shared by the convolution, linear and pooling families.

Each family keeps its own public functions (``get_algorithm``, ``list_linear_algorithms``, …) as thin
wrappers over an :class:`AlgorithmRegistry`, so lookup, aliases, availability filtering and the
error message are written once.
"""
from __future__ import annotations

from typing import Generic, TypeVar

from xflow.errors import UnknownName

A = TypeVar("A")


class AlgorithmRegistry(Generic[A]):
    """Algorithms of one family by canonical name, plus aliases.

    Args:
        family: the words used in messages ("convolution algorithm", "linear algorithm", …).
        kind: the family's algorithm base class (instances of it are passed through by :meth:`get`).
        algorithms: the built-in algorithms, ``default`` first.
        aliases: alternative (lower-case) names, e.g. ai3's ``"gemm"``.
    """

    def __init__(self, family: str, kind: type, algorithms, aliases: dict[str, str] | None = None) -> None:
        self.family = family
        self.kind = kind
        self.entries: dict[str, A] = {a.name: a for a in algorithms}
        self.aliases: dict[str, str] = dict(aliases or {})

    def names(self, device: str | None = None) -> list[str]:
        """Canonical names (no aliases), ``default`` first; with ``device``, only those available there."""
        return [n for n, a in self.entries.items() if device is None or a.available(device) is None]

    def get(self, name) -> A:
        """The algorithm registered as ``name`` (or an alias); an instance of the family is returned as is.

        Raises:
            UnknownName: not registered (the message lists the valid names and the aliases).
        """
        if isinstance(name, self.kind):
            return name
        key = self.aliases.get(str(name).lower(), str(name).lower())
        if key not in self.entries:
            aliases = f" (aliases: {', '.join(f'{k}→{v}' for k, v in self.aliases.items())})" if self.aliases else ""
            raise UnknownName(f"unknown {self.family} {name!r}; choose one of {', '.join(self.names())}{aliases}")
        return self.entries[key]

    def register(self, algorithm: A, *, replace: bool = False) -> None:
        """Add a user algorithm (``replace=True`` to override an existing name)."""
        if algorithm.name in self.entries and not replace:
            raise ValueError(f"{self.family} {algorithm.name!r} already registered (pass replace=True)")
        self.entries[algorithm.name] = algorithm
