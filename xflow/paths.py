"""Every directory xflow reads or writes, in one place.

* ``repo_root()``       the checkout (where ``pyproject.toml`` lives)
* ``cache_dir()``       ``$XFLOW_CACHE`` or ``~/.cache/xflow`` (content-hash keyed, safe to delete)
* ``results_dir()``     ``$XFLOW_RESULTS`` or ``<repo>/results`` (long-format result files)
* ``figures_dir()``     ``$XFLOW_FIGURES`` or ``<repo>/figures``
* ``data_dirs()``       dataset search path: ``$XFLOW_DATA``, ``<repo>/data``, ``<repo>/../shared/data``
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "repo_root",
    "cache_dir",
    "results_dir",
    "figures_dir",
    "data_dirs",
    "find_data",
    "writable_data_dir",
]


def repo_root() -> Path:
    """The project checkout (parent of the ``xflow`` package)."""
    return Path(__file__).resolve().parent.parent


def _ensure(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def cache_dir(*sub: str) -> Path:
    """Cache root (``$XFLOW_CACHE`` or ``~/.cache/xflow``), created on demand, joined with ``sub``."""
    base = Path(os.environ.get("XFLOW_CACHE", Path.home() / ".cache" / "xflow"))
    return _ensure(base.joinpath(*sub))


def results_dir(*sub: str) -> Path:
    """Where result files go (``$XFLOW_RESULTS`` or ``<repo>/results``)."""
    base = Path(os.environ.get("XFLOW_RESULTS", repo_root() / "results"))
    return _ensure(base.joinpath(*sub))


def figures_dir() -> Path:
    """Where notebooks write figures (``$XFLOW_FIGURES`` or ``<repo>/figures``)."""
    return _ensure(Path(os.environ.get("XFLOW_FIGURES", repo_root() / "figures")))


def data_dirs() -> list[Path]:
    """Dataset search path, in order: ``$XFLOW_DATA``, ``<repo>/data``, ``<repo>/../shared/data``."""
    dirs: list[Path] = []
    if os.environ.get("XFLOW_DATA"):
        dirs.append(Path(os.environ["XFLOW_DATA"]))
    dirs.append(repo_root() / "data")
    dirs.append(repo_root().parent / "shared" / "data")
    return dirs


def find_data(relative: str) -> Path | None:
    """First existing ``<dir>/<relative>`` along :func:`data_dirs`, or ``None``."""
    for d in data_dirs():
        p = d / relative
        if p.exists():
            return p
    return None


def writable_data_dir() -> Path:
    """Where downloads and processed files go (``$XFLOW_DATA`` if set, else ``<repo>/data``)."""
    return _ensure(data_dirs()[0])
