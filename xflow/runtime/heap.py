"""The process heap, through glibc's allocator controls (``mallopt``, ``malloc_trim``).

One place for the ``ctypes`` access to glibc that two users need:

* the cost layer gives freed pages back after each ONNX Runtime session over a full weight copy
  (:func:`trim`; :func:`xflow.costs.ort_optimized.release_heap`), so costing many graphs of a big
  model does not grow the process;
* autobatching keeps freed blocks in the heap for the next step (:func:`set_thresholds`;
  :mod:`xflow.autobatch.memory`), the allocator side of DyNet's memory pools.

Off glibc every function is a no-op that returns ``False``.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import platform

__all__ = ["glibc", "set_thresholds", "trim", "M_TRIM_THRESHOLD", "M_MMAP_THRESHOLD"]

#: ``mallopt`` parameter numbers (glibc ``malloc.h``).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

_libc: list[ctypes.CDLL | None] = []  # loaded once: [] not yet, [None] not glibc


def glibc() -> ctypes.CDLL | None:
    """glibc's ``libc`` (with ``mallopt`` and ``malloc_trim``), or ``None`` off glibc (cached)."""
    if not _libc:
        lib = None
        if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
            try:
                lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            except OSError:
                lib = None
            if lib is not None and not (hasattr(lib, "mallopt") and hasattr(lib, "malloc_trim")):
                lib = None
            if lib is not None:
                lib.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]  # int mallopt(int param, int value)
                lib.mallopt.restype = ctypes.c_int
                lib.malloc_trim.argtypes = [ctypes.c_size_t]
                lib.malloc_trim.restype = ctypes.c_int
        _libc.append(lib)
    return _libc[0]


def set_thresholds(mmap_threshold: int, trim_threshold: int) -> bool:
    """Blocks above ``mmap_threshold`` bytes get their own ``mmap``; more than ``trim_threshold``
    free bytes at the top of the heap are given back. Setting them fixes them (glibc stops
    adapting the mmap threshold). Returns whether both settings were accepted."""
    libc = glibc()
    if libc is None:
        return False
    ok = bool(libc.mallopt(M_MMAP_THRESHOLD, int(mmap_threshold)))
    return bool(libc.mallopt(M_TRIM_THRESHOLD, int(trim_threshold))) and ok


def trim(collect: bool = True) -> bool:
    """Give the heap's free pages back to the system now (``malloc_trim(0)``), after a garbage
    collection when ``collect``. Returns whether glibc was there to do it."""
    if collect:
        gc.collect()
    libc = glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
