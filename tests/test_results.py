"""Result records carry provenance and are append-only."""
from __future__ import annotations

from xflow.results import read_results, write_records


def test_records_append_with_provenance(tmp_results):
    write_records([{"metric": "latency_ms", "value": 1.5, "model": "m"}], "demo")
    write_records([{"metric": "latency_ms", "value": 2.5, "model": "m", "threads": 2}], "demo")
    df = read_results("demo")
    assert len(df) == 2
    for col in ("git_sha", "versions", "device", "threads", "timestamp", "metric", "value"):
        assert col in df.columns
    assert sorted(df["value"]) == [1.5, 2.5]
    assert 2 in set(df["threads"])
