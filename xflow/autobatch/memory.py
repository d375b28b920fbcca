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

**Python's cyclic garbage collector** is the other per-object cost DyNet (C++) does not have. A
parser minibatch records ~30k nodes and creates as many Python objects (expressions, transition
states); with CPython's default thresholds (a young collection every 700 allocations) a plain
training loop runs dozens of young and some full collections per step, and every full collection
walks *all* tracked objects of the process (torch's modules, the model, the data: a few hundred
thousand). Two process-wide settings, neither applied by default:

* :func:`raise_gc_threshold` — young collections every :data:`GC_THRESHOLD0` allocations (most
  per-step objects die by reference counting before a collection sees them); cyclic garbage is
  still collected, later;
* :func:`freeze_gc` — ``gc.freeze()`` after a collection: the objects alive *now* (imports, model,
  data) move to the permanent generation, so later full collections walk only what was created
  since. Frozen objects are never collected by the cyclic collector (reference counting still
  frees them): for a long-running process whose setup is done.

:func:`quiet_gc` applies both, :func:`restore_gc` undoes both. Their effect on a training step is
the switch ``memory.quiet_gc`` of ``benchmarks/autobatch_switches.py``; they become defaults only if
it shows a gain. ``XFLOW_AUTOBATCH_TUNE_GC=1`` makes :class:`~xflow.autobatch.graph.Graph` apply
:func:`raise_gc_threshold` on first use.
"""
from __future__ import annotations

import gc
import logging
import os

from xflow.runtime.heap import glibc, set_thresholds, trim

__all__ = ["retain_heap", "release_heap", "heap_retained", "ensure_default", "raise_gc_threshold", "freeze_gc",
           "quiet_gc", "restore_gc", "gc_quiet", "GC_THRESHOLD0"]

log = logging.getLogger(__name__)

#: Largest block served from the heap (glibc accepts up to 32 MiB on 64-bit systems).
MMAP_THRESHOLD = 32 << 20
#: Free memory at the top of the heap kept before trimming (effectively: never trim).
TRIM_THRESHOLD = (1 << 31) - 1
#: glibc's starting values (``release_heap`` restores them, with the thresholds then fixed).
DEFAULT_MMAP_THRESHOLD = 128 * 1024
DEFAULT_TRIM_THRESHOLD = 128 * 1024

#: Allocations between young-generation collections once :func:`raise_gc_threshold` applies.
GC_THRESHOLD0 = 20_000

_state = {"retained": False, "checked": False, "gc_default": gc.get_threshold(), "frozen": False}


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


def raise_gc_threshold() -> None:
    """Young-generation collections every :data:`GC_THRESHOLD0` allocations (never lowers a
    threshold the process already raised further)."""
    t0, t1, t2 = gc.get_threshold()
    if 0 < t0 < GC_THRESHOLD0:
        gc.set_threshold(GC_THRESHOLD0, t1, t2)


def freeze_gc() -> None:
    """Collect, then move every object alive now to the permanent generation (``gc.freeze``), so
    later full collections skip the process's setup objects (see module docstring)."""
    gc.collect()
    gc.freeze()
    _state["frozen"] = True


def quiet_gc() -> None:
    """:func:`raise_gc_threshold` and :func:`freeze_gc` (the ``on`` side of switch ``memory.quiet_gc``)."""
    raise_gc_threshold()
    freeze_gc()


def restore_gc() -> None:
    """The collector as the process started: nothing frozen, the thresholds it began with."""
    gc.unfreeze()
    gc.set_threshold(*_state["gc_default"])
    _state["frozen"] = False


def gc_quiet() -> bool:
    """Whether :func:`quiet_gc` is in effect (the threshold raised and the setup frozen)."""
    return _state["frozen"] and gc.get_threshold()[0] >= GC_THRESHOLD0


def ensure_default() -> None:
    """Once per process: :func:`retain_heap` unless ``XFLOW_AUTOBATCH_RETAIN_HEAP=0``, and
    :func:`raise_gc_threshold` when ``XFLOW_AUTOBATCH_TUNE_GC=1`` (called by
    :class:`~xflow.autobatch.graph.Graph`)."""
    if _state["checked"]:
        return
    _state["checked"] = True
    if os.environ.get("XFLOW_AUTOBATCH_TUNE_GC", "0") == "1":
        raise_gc_threshold()
    if os.environ.get("XFLOW_AUTOBATCH_RETAIN_HEAP", "1") == "0":
        return
    if retain_heap():
        log.debug("autobatch: freed memory stays in the heap (mallopt mmap/trim thresholds raised)")
