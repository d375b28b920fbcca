"""The env cache is bounded by bytes, not entries."""
from __future__ import annotations

from xflow.envs.cache import ByteLRU


def test_evicts_least_recently_used_down_to_the_byte_bound():
    c = ByteLRU(100)
    c.put("a", 1, 40)
    c.put("b", 2, 40)
    assert c.get("a") == 1  # a is now the most recent
    c.put("c", 3, 40)  # 120 > 100: evict b (least recent), not a
    assert "b" not in c and c.get("a") == 1 and c.get("c") == 3 and c.nbytes == 80
    for i in range(20):  # many tiny entries fit: the bound is bytes, not a count
        c.put(i, i, 1)
    assert len(c) == 22 and c.nbytes == 100


def test_an_entry_larger_than_the_bound_is_not_kept_and_replacing_updates_the_size():
    c = ByteLRU(10)
    c.put("big", 0, 11)
    assert "big" not in c and c.nbytes == 0
    c.put("x", 0, 6)
    c.put("x", 1, 3)
    assert c.nbytes == 3 and c.get("x") == 1
