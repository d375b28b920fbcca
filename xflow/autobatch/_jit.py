"""One source, two engines: the scheduler kernels run compiled by numba, or interpreted by CPython.

Every kernel of the planner (:mod:`xflow.autobatch.schedule`, the strategies) is written once, in
the small subset of Python that numba compiles: integer loops over indexable sequences, and
allocations through :func:`zeros_i` / :func:`zeros_f` / :func:`copy_i`. Interpreted, those helpers
return Python lists (fast to index from CPython) and the kernels receive lists; compiled, numba
replaces the helpers by ``numpy`` allocations (``overload``) and the kernels receive arrays.
:func:`kernel` returns the callable to use; tests run both engines and require equal plans.

numba is a declared dependency (wheels only, no compiler needed). Compilation happens on the
first call of a kernel in a process and is cached on disk (``cache=True``, in ``__pycache__``
next to the source, or ``$NUMBA_CACHE_DIR``). ``XFLOW_AUTOBATCH_JIT=0`` (or numba failing to
import) selects the interpreted engine; :func:`engine` says which one is active.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["zeros_i", "zeros_f", "copy_i", "argsort_stable", "kernel", "engine", "set_engine", "to_engine", "from_engine"]

log = logging.getLogger(__name__)


def zeros_i(n: int) -> list[int]:
    """``n`` integer zeros (a list interpreted, an int64 array compiled)."""
    return [0] * n


def zeros_f(n: int) -> list[float]:
    """``n`` float zeros (a list interpreted, a float64 array compiled)."""
    return [0.0] * n


def copy_i(x: Any) -> list[int]:
    """A copy of an integer sequence."""
    return list(x)


def argsort_stable(keys: Any) -> list[int]:
    """Indices that sort ``keys`` ascending, ties in index order."""
    return sorted(range(len(keys)), key=keys.__getitem__)


_numba: Any = None
_engine: str | None = None
_compiled: dict[Callable, Callable] = {}


def _load_numba() -> Any:
    """Import numba and register the compiled versions of the allocation helpers (once)."""
    import numba
    from numba.extending import overload

    @overload(zeros_i)
    def _zi(n):
        def impl(n):
            return np.zeros(n, np.int64)
        return impl

    @overload(zeros_f)
    def _zf(n):
        def impl(n):
            return np.zeros(n, np.float64)
        return impl

    @overload(copy_i)
    def _ci(x):
        def impl(x):
            return x.copy()
        return impl

    @overload(argsort_stable)
    def _as(keys):
        def impl(keys):
            return np.argsort(keys, kind="mergesort")
        return impl

    return numba


def engine() -> str:
    """``'numba'`` or ``'python'``: which engine :func:`kernel` hands out."""
    global _engine, _numba
    if _engine is None:
        if os.environ.get("XFLOW_AUTOBATCH_JIT", "1") == "0":
            _engine = "python"
        else:
            try:
                _numba = _load_numba()
                _engine = "numba"
            except Exception as exc:  # numba missing or broken on this platform
                log.info("numba unavailable (%s): the autobatch planner runs interpreted", exc)
                _engine = "python"
    return _engine


def set_engine(name: str) -> None:
    """Force ``'numba'`` or ``'python'`` (tests, benchmarks of the planner itself)."""
    global _engine, _numba
    if name not in ("numba", "python"):
        raise ValueError(f"engine must be 'numba' or 'python', got {name!r}")
    if name == "numba" and _numba is None:
        _numba = _load_numba()
    _engine = name


def kernel(fn: Callable) -> Callable:
    """The active engine's version of kernel ``fn`` (compiled on first use under numba)."""
    if engine() == "python":
        return fn
    k = _compiled.get(fn)
    if k is None:
        k = _compiled[fn] = _numba.njit(cache=True, nogil=True)(fn)
    return k


def to_engine(a: np.ndarray) -> Any:
    """An int/float array as the active engine's sequence type (list interpreted, array compiled)."""
    return a if engine() == "numba" else a.tolist()


def from_engine(x: Any, dtype: Any = np.int64) -> np.ndarray:
    """A kernel result as a numpy array."""
    return x if isinstance(x, np.ndarray) else np.asarray(x, dtype=dtype)
