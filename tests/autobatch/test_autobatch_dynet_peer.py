"""DyNet peer (dynet38): the same graph with xflow's weights computes xflow's loss; runs interleaved with xflow."""
from __future__ import annotations

import pytest

from xflow.autobatch.dynet_peer import PEER_VARIANTS, dynet_available, peer_losses, run_dynet

pytestmark = pytest.mark.skipif(not dynet_available(), reason="dynet38 not installed (optional peer)")


def test_dynet_peers_compute_xflows_loss_with_xflows_weights():
    got = peer_losses(["bilstm", "bilstm-char", "treelstm", "parser"])
    assert set(got) == {f"{m}/{v}" for m in ("bilstm", "bilstm-char", "treelstm", "parser") for v in PEER_VARIANTS[m]}
    for key, (ours, theirs) in got.items():
        assert ours > 1.0  # a real loss, not a degenerate zero
        assert abs(ours - theirs) <= 1e-5 * abs(ours), key


def test_dynet_runs_in_the_same_measurement_as_xflow():
    cfg = dict(model="treelstm", preset="tiny", batch=2, warmup=0, rounds=2, n_batches=1, modes=["infer"],
               impls=["agenda"], phases=False)
    rec = run_dynet(cfg, autobatch=1, timeout=300)
    variants = {r["variant"] for r in rec if r["metric"] == "time_ms"}
    assert {"agenda", "agenda~aa", "dynet1-unfused"} <= variants
    sp = [r for r in rec if r["metric"] == "speedup" and (r["a"], r["b"]) == ("agenda", "dynet1-unfused")]
    assert len(sp) == 1 and sp[0]["lo"] <= sp[0]["value"] <= sp[0]["hi"]
    losses = {r["variant"]: r["value"] for r in rec if r["metric"] == "loss"}
    assert abs(losses["agenda"] - losses["dynet1-unfused"]) <= 1e-5 * abs(losses["agenda"])
