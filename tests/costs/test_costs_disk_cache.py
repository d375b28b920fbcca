"""The one on-disk cost cache: corrupt files are rebuilt, junk entries ignored, writes merge."""
import json

from xflow.costs.disk_cache import load_costs, store_cost


def test_corrupt_file_is_rebuilt_and_writes_merge(tmp_path):
    p = tmp_path / "c.json"
    p.write_text("{not json")
    assert load_costs(p) == {}
    store_cost(p, "a", 1.5)
    store_cost(p, "b", 2)
    assert json.loads(p.read_text()) == {"a": 1.5, "b": 2.0}  # the second write kept the first entry


def test_non_finite_and_non_numeric_entries_are_ignored(tmp_path):
    p = tmp_path / "c.json"
    p.write_text('{"ok": 3.0, "nan": NaN, "inf": Infinity, "flag": true, "s": "4"}')
    assert load_costs(p) == {"ok": 3.0}
    p.write_text("[1, 2]")
    assert load_costs(p) == {}


def test_store_costs_replaces_or_keeps_what_is_on_disk(tmp_path):
    """``keep_existing``: the first value stored wins (ort-context's first-seen table across
    processes); without it the new value replaces the old (kills: the flag ignored either way)."""
    from xflow.costs.disk_cache import store_costs

    p = tmp_path / "c.json"
    assert store_costs(p, {"a": 1.0}) == {"a": 1.0}
    assert store_costs(p, {"a": 5.0, "b": 2.0}, keep_existing=True) == {"a": 1.0, "b": 2.0}
    assert store_costs(p, {"b": 3.0}) == {"b": 3.0}
    assert json.loads(p.read_text()) == {"a": 1.0, "b": 3.0}
