"""The planner kernels give identical plans compiled (numba) and interpreted (the pure-Python fallback)."""
from __future__ import annotations

import pytest
import torch

from xflow import autobatch as ab
from xflow.autobatch import _jit
from xflow.autobatch.bench import PRESETS
from xflow.autobatch.models import get_model

numba = pytest.importorskip("numba")


def _plan_and_loss(engine, name, strategy):
    _jit.set_engine(engine)
    try:
        torch.manual_seed(0)
        model = get_model(name, **PRESETS["tiny"][name])
        batch = model.make_data(5, seed=3)
        with ab.Graph(strategy) as g:
            losses = model.loss_autobatch(batch)
            loss = g.forward_batch(losses).sum()
        loss.backward()
        grad = model.lstm.weight_hh_l0.grad if hasattr(model, "lstm") else model.u_l.grad
        return g.plans, g.segments[-1].group_gathers, float(loss.detach()), grad.clone()
    finally:
        _jit._engine = None  # back to the default choice


@pytest.mark.parametrize("name, strategy", [("bilstm", "agenda"), ("treelstm", "agenda-level"), ("bilstm", "depth")])
def test_compiled_and_interpreted_engines_agree(name, strategy):
    p1, k1, l1, g1 = _plan_and_loss("numba", name, strategy)
    p2, k2, l2, g2 = _plan_and_loss("python", name, strategy)
    assert p1 == p2 and k1 == k2
    assert l1 == pytest.approx(l2, rel=1e-6) and torch.allclose(g1, g2, atol=1e-6)
    assert len(p1[0]) > 5


def test_engine_switch_is_validated():
    with pytest.raises(ValueError, match="numba"):
        _jit.set_engine("cython")
