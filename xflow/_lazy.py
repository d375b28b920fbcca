"""Lazy package exports: a public name is imported from its submodule on first access.

Packages that wrap heavy dependencies (torch, onnx, PyG, gymnasium) use this so that importing
the package, e.g. for ``xflow --help`` or ``gymnasium`` registration, stays cheap.
"""
from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Collection, Mapping
from typing import Any

__all__ = ["lazy_getattr"]


def lazy_getattr(
    package: str, exports: Mapping[str, str], *, submodules: Collection[str] = ()
) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` for ``package`` (PEP 562).

    ``exports`` maps each public name to the submodule defining it; names in ``submodules`` are
    the submodule itself. The first access imports it and caches the value in the package
    namespace, so later lookups are plain attribute reads and a same-named submodule attribute
    cannot shadow the exported object.
    """
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(exports[name])
        value = module if name in submodules else getattr(module, name)
        namespace[name] = value
        return value

    return __getattr__
