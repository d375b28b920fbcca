"""Reward objects: per-step cost delta, measured checkpoints, measured correction."""
from __future__ import annotations

import pytest

from xflow.envs.rewards import CostDelta, CostWithMeasured, MeasuredDelta, make_reward
from xflow.errors import UnknownName


class TableCost:
    """A cost model that looks the cost up by key (the 'graphs' are just their keys)."""

    def __init__(self, table: dict[str, float], name: str = "table") -> None:
        self.table, self.name, self.calls = table, name, 0

    def cost(self, model, key=None):
        self.calls += 1
        return self.table[key]


PATH = ["g0", "g1", "g2", "g3", "g4"]
PRED = {"g0": 10.0, "g1": 9.0, "g2": 9.5, "g3": 7.0, "g4": 6.0}
MEAS = {"g0": 20.0, "g1": 19.0, "g2": 21.0, "g3": 18.0, "g4": 22.0}


def _episode(reward) -> list[float]:
    reward.reset(PATH[0], PATH[0])
    out = []
    for t in range(1, len(PATH)):
        out.append(reward.update(PATH[t - 1], PATH[t], prev_key=PATH[t - 1], new_key=PATH[t],
                                 step=t, done=t == len(PATH) - 1))
    return out


def test_cost_delta_is_relative_to_initial_and_telescopes():
    r = _episode(CostDelta(TableCost(PRED)))
    assert r[0] == pytest.approx(10.0)  # (10 - 9) / 10 * 100
    assert sum(r) == pytest.approx((10.0 - 6.0) / 10.0 * 100)


def test_measured_delta_only_at_checkpoints():
    r = _episode(MeasuredDelta(every=2, cost_model=TableCost(MEAS)))
    assert r[0] == 0.0 and r[2] == 0.0
    assert r[1] == pytest.approx((20 - 21) / 20 * 100)
    assert sum(r) == pytest.approx((20 - 22) / 20 * 100)


def test_hybrid_is_dense_but_returns_the_measured_improvement():
    reward = CostWithMeasured(TableCost(PRED), every=3, measured=TableCost(MEAS))
    r = _episode(reward)
    assert r[0] == pytest.approx(10.0)  # dense step before any checkpoint
    assert sum(r) == pytest.approx((20 - 22) / 20 * 100)


def test_make_reward_names():
    assert make_reward("cost", cost_model=TableCost(PRED)) == "table-delta"
    assert make_reward("hybrid", cost_model=TableCost(PRED), measure_every=5).sparse.every == 5
    with pytest.raises(UnknownName):
        make_reward("speed")


def test_make_reward_takes_any_registered_cost_model():
    from xflow.costs.ort_optimized import OrtOptimizedCost
    from xflow.costs.torch_kernels import TorchKernelCost

    assert isinstance(make_reward("cost", cost_model="ort").cost_model, OrtOptimizedCost)
    assert make_reward("cost", cost_model="torch") == "torch-delta"
    measured = make_reward("measured", measured_model=TableCost(MEAS), measure_every=2)
    assert sum(_episode(measured)) == pytest.approx((20 - 22) / 20 * 100)
    hybrid = make_reward("hybrid", cost_model=TableCost(PRED), measured_model="ort", measure_every=2)
    assert isinstance(hybrid.sparse.cost_model, OrtOptimizedCost)
    assert isinstance(make_reward("cost", cost_model=TorchKernelCost()).cost_model, TorchKernelCost)


def test_env_with_the_ort_cost_model_resets_and_steps_on_a_real_model():
    """The per-node costs of a candidate's region run in ONNX Runtime: the region graph needs the
    source's opset and its small constants (split sizes) — it failed at reset on squeezenet1_1."""
    import math

    import gymnasium as gym

    import xflow.envs  # noqa: F401

    env = gym.make("xflow/GraphRewrite-v2", model="zoo:squeezenet1_1", cost_model="ort", horizon=2)
    obs, _ = env.reset(seed=0)
    assert len(obs["candidates"]) > 0 and float(obs["graph_cost"][0]) > 0
    _, reward, *_ = env.step(0)
    assert math.isfinite(float(reward))
