"""xflow.runtime.heap: glibc's allocator controls, shared by the cost layer and autobatching."""
from __future__ import annotations

import pytest

from xflow.runtime import heap

pytestmark = pytest.mark.skipif(heap.glibc() is None, reason="needs glibc")


def test_trim_runs_on_glibc():
    assert heap.trim() is True
    assert heap.trim(collect=False) is True


def test_set_thresholds_reports_rejected_values(monkeypatch):
    assert heap.set_thresholds(128 * 1024, 128 * 1024) is True

    class _Refuses:  # a libc whose mallopt refuses the trim threshold (returns 0)
        def __init__(self):
            self.calls = []

        def mallopt(self, param, value):
            self.calls.append((param, value))
            return 0 if param == heap.M_TRIM_THRESHOLD else 1

    fake = _Refuses()
    monkeypatch.setattr(heap, "_libc", [fake])
    assert heap.set_thresholds(1 << 20, 1 << 21) is False
    assert fake.calls == [(heap.M_MMAP_THRESHOLD, 1 << 20), (heap.M_TRIM_THRESHOLD, 1 << 21)]


def test_ort_optimized_release_heap_goes_through_the_core(monkeypatch):
    from xflow.costs import ort_optimized

    calls = []
    monkeypatch.setattr(ort_optimized, "trim", lambda collect=True: calls.append(collect) or True)
    ort_optimized.release_heap()
    assert calls == [True]
