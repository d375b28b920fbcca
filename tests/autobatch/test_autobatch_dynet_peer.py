"""Optional DyNet peer (dynet38): skipped when DyNet is not installed."""
from __future__ import annotations

import pytest

from xflow.autobatch.dynet_peer import dynet_available, run_dynet


@pytest.mark.skipif(not dynet_available(), reason="dynet38 not installed (optional peer)")
def test_dynet_peer_reports_throughput_with_autobatching():
    cfg = dict(model="treelstm", preset="tiny", batch=2, warmup=0, repeats=1, seed=0, n_batches=1, modes=["infer"])
    rec = run_dynet(cfg, autobatch=(1,), timeout=120)
    tp = [r for r in rec if r["metric"] == "throughput"]
    assert [r["impl"] for r in tp] == ["dynet-1"]
    assert tp[0]["value"] > 0
