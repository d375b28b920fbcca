"""Schedule table and Graphviz rendering of batching decisions."""
from __future__ import annotations

import shutil

import pytest
import torch

from xflow.autobatch.bench import PRESETS
from xflow.autobatch.models import get_model
from xflow.autobatch.viz import record_examples, render_batches, schedule_table


def _small():
    torch.manual_seed(0)
    model = get_model("treelstm", **PRESETS["tiny"]["treelstm"])
    return model, model.make_data(3, seed=2)


def test_schedule_table_covers_every_executed_node_once():
    model, trees = _small()
    g, example_of = record_examples(model, trees, "agenda")
    rows = schedule_table(g, example_of)
    assert len({r["node"] for r in rows}) == len(rows)  # each node ran in exactly one batch
    assert len(rows) == g.stats["n_executed"]
    assert {r["example"] for r in rows} == {0, 1, 2}
    assert max(r["batch_size"] for r in rows) > 1


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz dot not installed")
def test_render_batches_writes_a_png(tmp_path):
    model, trees = _small()
    g, _ = record_examples(model, trees[:1], "depth")
    out = render_batches(g, tmp_path / "g.png")
    assert out.exists() and out.stat().st_size > 0
