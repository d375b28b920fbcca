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
