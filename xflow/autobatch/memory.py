"""Keep freed memory in the process heap for reuse: the allocator side of DyNet's memory pools.

DyNet allocates its forward, backward and parameter memory once, in pools it reuses for every
graph. PyTorch's CPU tensors come from ``malloc``: glibc serves blocks above its *mmap threshold*
(128 KiB at start, adapted upwards as large blocks are freed) with fresh ``mmap`` pages and gives
them back with ``munmap`` when freed, and it trims the top of the heap when more than
``M_TRIM_THRESHOLD`` is free. An autobatched step allocates and frees its arenas, gradient
buffers and kernel temporaries — many of them one or two hundred KiB — every step, so without
retention each step pays page faults and cold pages again. (The glibc calls themselves live in
the core, :mod:`xflow.runtime.heap`, shared with the cost layer.)

:func:`retain_heap` raises both thresholds with ``mallopt`` (glibc only): blocks up to 32 MiB come
from the heap and freed memory stays there for the next step, as in DyNet's pools. The process
then keeps its peak heap size. It is process-wide: every torch computation in the process
benefits, so the benchmark applies it once before measuring any implementation (eager,
hand-batched and autobatched alike). :class:`~xflow.autobatch.graph.Graph` applies it on first
use unless ``XFLOW_AUTOBATCH_RETAIN_HEAP=0``. Measured effect: ``benchmarks/autobatch_switches.py``
(switch ``memory.retain_heap``).
"""
from __future__ import annotations

import logging
import os

from xflow.runtime.heap import glibc, set_thresholds, trim

__all__ = ["retain_heap", "release_heap", "heap_retained", "ensure_default"]

log = logging.getLogger(__name__)

#: Largest block served from the heap (glibc accepts up to 32 MiB on 64-bit systems).
MMAP_THRESHOLD = 32 << 20
#: Free memory at the top of the heap kept before trimming (effectively: never trim).
TRIM_THRESHOLD = (1 << 31) - 1
#: glibc's starting values (``release_heap`` restores them, with the thresholds then fixed).
DEFAULT_MMAP_THRESHOLD = 128 * 1024
DEFAULT_TRIM_THRESHOLD = 128 * 1024

_state = {"retained": False, "checked": False}


def retain_heap() -> bool:
    """Serve blocks up to :data:`MMAP_THRESHOLD` from the heap and never trim it (see module
    docstring). Returns whether the setting applies (``False`` off glibc)."""
    ok = set_thresholds(MMAP_THRESHOLD, TRIM_THRESHOLD)
    _state["retained"] = ok
    return ok


def release_heap() -> bool:
    """glibc's starting thresholds again (fixed, not adaptive) and the free heap given back to the
    system now (``malloc_trim``): how a process without :func:`retain_heap` behaves, for A/B runs."""
    if glibc() is None:
        return False
    set_thresholds(DEFAULT_MMAP_THRESHOLD, DEFAULT_TRIM_THRESHOLD)
    trim(collect=False)
    _state["retained"] = False
    return True


def heap_retained() -> bool:
    """Whether :func:`retain_heap` is in effect in this process."""
    return _state["retained"]


def ensure_default() -> None:
    """Apply :func:`retain_heap` once per process unless ``XFLOW_AUTOBATCH_RETAIN_HEAP=0`` (called by
    :class:`~xflow.autobatch.graph.Graph`)."""
    if _state["checked"]:
        return
    _state["checked"] = True
    if os.environ.get("XFLOW_AUTOBATCH_RETAIN_HEAP", "1") == "0":
        return
    if retain_heap():
        log.debug("autobatch: freed memory stays in the heap (mallopt mmap/trim thresholds raised)")
