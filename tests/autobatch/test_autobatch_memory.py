"""Heap retention (xflow.autobatch.memory): large blocks come from the heap and stay there when retained."""
from __future__ import annotations

import ctypes

import pytest
import torch

from xflow.autobatch import memory
from xflow.runtime.heap import glibc


class _MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                               "fsmblks", "uordblks", "fordblks", "keepcost")]


def _mmapped_bytes() -> int:
    libc = glibc()
    if libc is None or not hasattr(libc, "mallinfo2"):
        pytest.skip("needs glibc >= 2.33 (mallinfo2)")
    libc.mallinfo2.restype = _MallInfo2
    return int(libc.mallinfo2().hblkhd)


@pytest.fixture
def restore_heap_setting():
    was = memory.heap_retained()
    yield
    (memory.retain_heap if was else memory.release_heap)()


def test_a_retained_heap_serves_large_blocks_without_mmap(restore_heap_setting):
    """A 4 MiB tensor is a fresh mmap with glibc's starting threshold, a heap block when retained
    (a retain_heap that set nothing, or set only the trim threshold, fails the second half)."""
    n = 1 << 20  # 4 MiB of float32
    assert memory.release_heap()
    before = _mmapped_bytes()
    t = torch.empty(n)
    assert _mmapped_bytes() - before >= 4 * n  # served by mmap
    del t
    assert memory.retain_heap() and memory.heap_retained()
    before = _mmapped_bytes()
    t = torch.empty(n)
    t.fill_(1.0)
    assert _mmapped_bytes() - before < 4 * n  # served from the heap
    del t


def test_default_applies_once_and_respects_the_environment(monkeypatch, restore_heap_setting):
    memory.release_heap()
    monkeypatch.setitem(memory._state, "checked", False)
    monkeypatch.setenv("XFLOW_AUTOBATCH_RETAIN_HEAP", "0")
    memory.ensure_default()
    assert not memory.heap_retained()
    monkeypatch.setitem(memory._state, "checked", False)
    monkeypatch.delenv("XFLOW_AUTOBATCH_RETAIN_HEAP")
    memory.ensure_default()
    assert memory.heap_retained() == (glibc() is not None)


@pytest.fixture
def restore_gc_setting():
    import gc

    before = gc.get_threshold()
    yield
    memory.restore_gc()
    gc.set_threshold(*before)


def test_quiet_gc_freezes_the_setup_and_raises_the_young_threshold(restore_gc_setting):
    import gc

    memory.restore_gc()
    assert gc.get_freeze_count() == 0 and not memory.gc_quiet()
    setup = [[i] for i in range(1000)]  # tracked containers alive at setup time
    memory.quiet_gc()
    assert memory.gc_quiet()
    assert gc.get_threshold()[0] >= memory.GC_THRESHOLD0
    assert gc.get_freeze_count() > len(setup)  # the setup is out of every later collection
    memory.restore_gc()
    assert gc.get_freeze_count() == 0 and not memory.gc_quiet()
    assert gc.get_threshold() == memory._state["gc_default"]


def test_cyclic_garbage_is_still_collected_after_quiet_gc(restore_gc_setting):
    import gc
    import weakref

    memory.quiet_gc()

    class Node:
        pass

    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle created after the freeze
    ref = weakref.ref(a)
    del a, b
    gc.collect()
    assert ref() is None


def test_default_raises_the_gc_threshold_only_when_asked(monkeypatch, restore_gc_setting, restore_heap_setting):
    import gc

    memory.restore_gc()
    monkeypatch.setitem(memory._state, "checked", False)
    monkeypatch.delenv("XFLOW_AUTOBATCH_TUNE_GC", raising=False)
    memory.ensure_default()
    assert gc.get_threshold()[0] == memory._state["gc_default"][0]  # not a default (no measured gain)
    monkeypatch.setitem(memory._state, "checked", False)
    monkeypatch.setenv("XFLOW_AUTOBATCH_TUNE_GC", "1")
    memory.ensure_default()
    assert gc.get_threshold()[0] == memory.GC_THRESHOLD0
    assert gc.get_freeze_count() == 0  # the library never freezes on its own
