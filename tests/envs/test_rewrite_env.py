"""RewriteEnv: Gymnasium API compliance, masks, determinism, replay, pickling."""
from __future__ import annotations

import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import xflow.envs
from xflow.envs import ENV_ID
from xflow.errors import XflowError

from .conftest import SMALL

MODELS = ["builder:inception_like", "builder:sibling_convs", "builder:split_concat"]


def _random_rollout(env, seed: int, steps: int = 10):
    """Actions drawn uniformly from the legal ones; returns (actions, rewards, hashes, obs)."""
    rng = np.random.default_rng(seed)
    obs, info = env.reset(seed=seed)
    acts, rews, hashes, observations = [], [], [info["hash"]], [obs]
    for _ in range(steps):
        legal = np.flatnonzero(info["action_mask"])
        a = int(rng.choice(legal))
        obs, r, term, trunc, info = env.step(a)
        acts.append(a), rews.append(r), hashes.append(info["hash"]), observations.append(obs)
        if term or trunc:
            break
    return acts, rews, hashes, observations


def _same_obs(a, b) -> bool:
    from gymnasium.utils.env_checker import data_equivalence

    return data_equivalence(a, b, exact=True)


def test_registered_id_makes_the_env():
    env = gym.make(ENV_ID, model="builder:split_concat", **SMALL)
    assert isinstance(env.unwrapped, xflow.envs.RewriteEnv)
    assert env.spec.id == ENV_ID
    assert env.unwrapped.action_space.n == SMALL["max_candidates"] + 1


@pytest.mark.parametrize("model", MODELS)
def test_check_env_passes(make_env, model):
    env = make_env(model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=True)
    problems = [str(w.message) for w in caught if "render" not in str(w.message)
                and "WARN" in str(w.message)]
    assert not problems, problems


def test_check_env_through_gym_make():
    env = gym.make(ENV_ID, model="builder:inception_like", render_mode="ansi", **SMALL)
    check_env(env.unwrapped)
    env.reset(seed=0)
    env.step(env.unwrapped.stop_action)
    assert "initial cost" in env.render()


def test_observation_holds_graph_and_candidates(make_env):
    env = make_env()
    obs, info = env.reset(seed=0)
    assert obs in env.observation_space
    assert len(obs["candidates"]) == info["n_candidates"] >= 1
    assert obs["graph"].nodes.shape[1] == env.observation_space["graph"].node_space.shape[0]
    assert info["action_mask"].shape == (env.action_space.n,)
    assert info["action_mask"].sum() == info["n_candidates"] + 1
    assert info["action_mask"][env.stop_action]


def test_max_candidates_caps_the_action_set(make_env):
    env = make_env(max_candidates=1)
    obs, info = env.reset(seed=0)
    assert len(obs["candidates"]) <= 1 and env.action_space.n == 2


def test_stop_terminates_without_changing_the_graph(make_env):
    env = make_env()
    _, info0 = env.reset(seed=0)
    _, r, term, trunc, info = env.step(env.stop_action)
    assert term and not trunc and r == 0.0 and info["hash"] == info0["hash"]
    with pytest.raises(XflowError, match="reset"):
        env.step(0)


def test_illegal_action_is_a_noop(make_env):
    env = make_env()
    _, info0 = env.reset(seed=0)
    illegal = int(np.flatnonzero(~info0["action_mask"])[0])
    _, r, term, _, info = env.step(illegal)
    assert info["invalid_action"] and r == 0.0 and info["hash"] == info0["hash"] and not term


def test_horizon_truncates(make_env):
    env = make_env(horizon=1)
    _, info = env.reset(seed=0)
    assert info["n_candidates"] > 0
    _, _, term, trunc, _ = env.step(0)
    assert trunc or (term and not env.candidates)  # truncated unless no rewrite is left


def test_applying_a_candidate_changes_graph_and_reward_matches_cost(make_env):
    env = make_env()
    _, info0 = env.reset(seed=0)
    _, r, _, _, info = env.step(0)
    assert info["hash"] != info0["hash"] and info["rule"]
    expected = (info0["cost"] - info["cost"]) / info0["initial_cost"] * 100
    assert r == pytest.approx(expected)


def test_seeded_rollouts_are_deterministic(make_env):
    a = _random_rollout(make_env(), seed=3)
    b = _random_rollout(make_env(), seed=3)
    assert a[0] == b[0] and a[1] == b[1] and a[2] == b[2]
    assert all(_same_obs(x, y) for x, y in zip(a[3], b[3]))


def test_state_replays_exactly(make_env):
    env = make_env(horizon=6)
    acts, rews, hashes, obs = _random_rollout(env, seed=1)
    state = env.state
    assert list(state.actions) == acts and state.reward == pytest.approx(sum(rews))
    fresh = make_env(horizon=6)
    obs2, _ = fresh.apply(state)
    assert fresh.hash == hashes[-1] and _same_obs(obs2, obs[-1])
    assert fresh.validate(state).ok


def test_validate_reports_a_tampered_state(make_env):
    from dataclasses import replace

    env = make_env(horizon=6)
    _random_rollout(env, seed=1)
    state = env.state
    bad_hash = replace(state, hashes=("0" * 32,) + state.hashes[1:])
    assert not env.validate(bad_hash).ok
    bad_action = replace(state, actions=(env.max_candidates - 1,) + state.actions[1:])
    v = env.validate(bad_action)
    assert not v.ok and "not legal" in v.errors[0]


def test_env_pickles_mid_episode(make_env):
    env = make_env()
    env.reset(seed=0)
    env.step(0)
    clone = pickle.loads(pickle.dumps(env))
    assert clone.hash == env.hash and clone.actions == env.actions
    o1, r1, *_ = env.step(env.stop_action)
    o2, r2, *_ = clone.step(clone.stop_action)
    assert r1 == r2 and _same_obs(o1, o2)


def test_reset_options_switch_model(make_env):
    env = make_env()
    env.reset(seed=0, options={"model": "builder:split_concat"})
    assert env.model_id == "builder:split_concat"


def test_model_proto_is_accepted(make_env):
    from xflow.graphs.builders import build

    env = make_env(build("split_concat"))
    _, info = env.reset(seed=0)
    assert env.model_id.startswith("mem:") and info["n_candidates"] >= 1


def test_bad_arguments_raise(make_env):
    with pytest.raises(XflowError):
        make_env(max_candidates=0)
    with pytest.raises(XflowError):
        make_env(render_mode="human")


def test_measured_reward_only_at_checkpoints_and_episode_end(make_env, tmp_results):
    env = make_env("builder:inception_like", reward="measured", measure_every=2, horizon=3)
    _, info = env.reset(seed=0)
    rewards = []
    for _ in range(3):
        legal = np.flatnonzero(info["action_mask"][:-1])
        _, r, term, trunc, info = env.step(int(legal[0]) if legal.size else env.stop_action)
        rewards.append(r)
        if term or trunc:
            break
    assert env.reward_fn.measured and rewards[0] == 0.0  # step 1 is no checkpoint
    assert np.isfinite(rewards).all()
    assert list((tmp_results / "cache" / "costs" / "latency").glob("*.json"))


def test_hybrid_reward_is_accepted_by_name(make_env, tmp_results):
    env = make_env("builder:split_concat", reward="hybrid", measure_every=1)
    env.reset(seed=0)
    _, r, *_ = env.step(env.stop_action)
    assert np.isfinite(r) and "measured" in env.reward_fn.name
