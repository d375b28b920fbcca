"""The throughput experiment runs end to end and reports phases and ratios (no timing assertions)."""
from __future__ import annotations

import pandas as pd

from xflow.autobatch.bench import run


def test_run_returns_long_records_for_every_impl_and_mode():
    rec = run(dict(model="treelstm", preset="tiny", batch=3, warmup=0, repeats=1, n_batches=1, lr=0.0))
    df = pd.DataFrame(rec)
    tp = df[df.metric == "throughput"]
    assert set(tp.impl) == {"eager", "none", "depth", "agenda", "hand"}
    assert set(tp["mode"]) == {"train", "infer"}
    assert (tp.value > 0).all()
    agenda = df[(df.impl == "agenda") & (df["mode"] == "train")].set_index("metric").value
    for k in ("construct_s", "schedule_s", "execute_s", "backward_s", "update_s", "n_nodes", "n_groups"):
        assert k in agenda.index
    assert agenda["n_groups"] < agenda["n_nodes"]
    losses = df[(df.metric == "loss") & (df["mode"] == "infer")].value
    assert losses.max() - losses.min() < 1e-3 * abs(losses.max())  # every impl computes the same loss
    assert {"speedup_vs_eager", "ratio_to_hand"} <= set(df.metric)
