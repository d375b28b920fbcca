"""The throughput experiment runs end to end through the measurement core (no timing assertions)."""
from __future__ import annotations

import pandas as pd
import pytest

from xflow.autobatch.bench import parse_impl, run
from xflow.errors import UnknownName


def _tiny(**over):
    cfg = dict(model="treelstm", preset="tiny", batch=3, warmup=0, rounds=2, n_batches=1, lr=0.0,
               impls=["eager", "agenda", "agenda-unfused", "hand"], modes=["train"], phases=True)
    cfg.update(over)
    return cfg


def test_run_measures_every_impl_with_intervals_verdicts_and_an_aa_control():
    df = pd.DataFrame(run(_tiny()))
    t = df[df.metric == "time_ms"]
    assert set(t.variant) == {"eager", "agenda", "agenda-unfused", "hand", "agenda:record", "agenda:forward",
                              "agenda~aa"}
    assert (t.value > 0).all() and (t.throughput > 0).all()
    assert {"thread_cpu_ms", "wall_ms", "ci_lo", "ci_hi", "verdict", "noise_floor", "load_before"} <= set(t.columns)
    assert set(t[t.variant == "agenda"].verdict) == {"baseline"}
    sp = df[df.metric == "speedup"].set_index(["a", "b"])
    assert ("agenda", "eager") in sp.index and ("agenda", "hand") in sp.index
    row = sp.loc[("agenda", "eager")]
    assert row.lo <= row.value <= row.hi and row.verdict in ("faster", "slower", "same")
    assert "×" in row.text and row.verdict in row.text
    g = df[(df.metric == "graph") & (df.variant == "agenda")].set_index("stat").value
    assert g["n_groups"] < g["n_nodes"]
    u = df[(df.metric == "graph") & (df.variant == "agenda-unfused")].set_index("stat").value
    assert u["n_nodes"] > g["n_nodes"]  # the unfused cell records the elementwise ops
    losses = df[df.metric == "loss"].set_index("variant").value
    assert losses.max() - losses.min() < 1e-4 * abs(losses.max())  # every impl computes the same loss


def test_impl_names_parse_and_bad_ones_are_typed_errors():
    assert parse_impl("agenda-unfused") == ("autobatch", "agenda", False)
    assert parse_impl("dynet1") == ("dynet", None, True)
    assert parse_impl("eager") == ("eager", None, True)
    with pytest.raises(UnknownName, match="fastest"):
        parse_impl("fastest")
    with pytest.raises(UnknownName):
        parse_impl("hand-unfused")
