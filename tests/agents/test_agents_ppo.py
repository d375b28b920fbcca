"""PPO: subprocess smoke run (cleanrl style), in-process training, sweep task."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from xflow.agents.ppo import Args, run, train
from xflow.envs.state import read_states_csv

TINY = dict(total_timesteps=32, num_steps=16, num_minibatches=2, update_epochs=2, hidden=8,
            gnn_layers=1, max_candidates=8, horizon=4, cost_model="nominal")


def test_ppo_smoke_subprocess(tmp_path):
    cmd = [sys.executable, "-m", "xflow.agents.ppo", "--runs-dir", str(tmp_path),
           "--total-timesteps", "16", "--num-steps", "8", "--num-minibatches", "2",
           "--update-epochs", "1", "--hidden", "8", "--gnn-layers", "1",
           "--max-candidates", "8", "--horizon", "3", "--cost-model", "nominal",
           "--model", "builder:split_concat"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    (run_dir,) = list(tmp_path.iterdir())
    assert {"args.json", "scalars.csv", "episodes.csv", "agent.pt"} <= {p.name for p in run_dir.iterdir()}
    assert json.loads((run_dir / "args.json").read_text())["num_iterations"] == 2


def test_train_in_process_logs_curves_and_replayable_episodes(tmp_path):
    res = train(Args(runs_dir=str(tmp_path), seed=3, **TINY))
    steps, rets = res.curve()
    assert len(rets) >= 1 and (np.diff(steps) >= 0).all()
    tags = {r["tag"] for r in res.scalars}
    assert {"losses/policy_loss", "losses/value_loss", "losses/entropy", "charts/episodic_return"} <= tags
    states = read_states_csv(res.run_dir / "episodes.csv")
    assert len(states) == len(rets)
    from xflow.envs.rewrite import RewriteEnv

    env = RewriteEnv("builder:inception_like", **states[0].config)
    assert env.validate(states[0]).ok


def test_training_is_seeded(tmp_path):
    a = train(Args(runs_dir=str(tmp_path / "a"), seed=5, **TINY))
    b = train(Args(runs_dir=str(tmp_path / "b"), seed=5, **TINY))
    assert a.curve()[1].tolist() == b.curve()[1].tolist()


def test_run_records_train_and_eval(tmp_path):
    recs = run({**TINY, "runs_dir": str(tmp_path), "seed": 1, "save_model": False,
                "eval_models": ["builder:sibling_convs"]})
    phases = {(r["phase"], r["model"]) for r in recs}
    assert ("eval", "builder:sibling_convs") in phases and ("train", "builder:inception_like") in phases
    assert all({"metric", "value", "seed"} <= set(r) for r in recs)


def _epochs_run(res):
    return [r["value"] for r in res.scalars if r["tag"] == "losses/epochs_run"]


def test_target_kl_stops_the_update_epochs(tmp_path):
    base = {**TINY, "total_timesteps": 48, "update_epochs": 3, "save_model": False}
    free = train(Args(runs_dir=str(tmp_path / "a"), seed=2, target_kl=None, **base))
    assert _epochs_run(free) == [3, 3, 3]
    # a KL target nobody meets (approx KL >= 0) stops after the first epoch, except in the warm-up updates
    tight = train(Args(runs_dir=str(tmp_path / "b"), seed=2, target_kl=-1.0, target_kl_warmup=1, **base))
    assert _epochs_run(tight) == [3, 1, 1]


def test_default_profile_is_xrlflow_and_quick_keeps_the_old_values():
    from xflow.agents.ppo import PROFILES, profile_args

    d = Args()
    for k, v in PROFILES["xrlflow"].items():
        assert getattr(d, k) == v, k
    assert (d.learning_rate, d.clip_coef, d.target_kl, d.horizon) == (2.5e-4, 0.1, 0.05, 50)
    q = profile_args("quick", seed=7)
    assert (q.learning_rate, q.clip_coef, q.target_kl, q.horizon, q.seed) == (5e-4, 0.2, None, 20, 7)
    # the budget profile differs from X-RLflow's in the learning rate only
    b = PROFILES["xrlflow-budget"]
    assert {k for k in b if b[k] != PROFILES["xrlflow"][k]} == {"learning_rate"} and b["learning_rate"] == 2.5e-3
    assert set(b) == set(PROFILES["xrlflow"])


def test_ppo_agent_with_diff_encoder_gives_the_full_encodings_logits_and_gradients(monkeypatch):
    """PPO's default agent (diff encoder) scores one real observation exactly like re-encoding every
    candidate graph, gradients included, and really goes through the diff path."""
    import torch

    import xflow.nn.actor_critic as ac
    from xflow.agents.ppo import make_agent, make_env, profile_args

    a = profile_args("xrlflow", model="builder:inception_like", cost_model="nominal", hidden=16, gnn_layers=2)
    assert a.diff_encoder is True
    env = make_env(a)
    obs, info = env.reset(seed=0)
    assert len(obs["candidates"]) >= 2
    torch.manual_seed(0)
    diff = make_agent(a, int(env.action_space.n))
    with torch.no_grad():  # the policy head starts near zero (cleanrl init): spread the logits
        for p in diff.policy.parameters():
            p.normal_(0.0, 0.5)
    full = make_agent(profile_args("xrlflow", hidden=16, gnn_layers=2, diff_encoder=False), int(env.action_space.n))
    full.load_state_dict(diff.state_dict())
    calls = []
    real = ac.encode_candidates
    monkeypatch.setattr(ac, "encode_candidates", lambda *x, **k: calls.append(1) or real(*x, **k))
    mask = info["action_mask"][None]
    grads = []
    for agent in (diff, full):
        logits, value = agent([obs], mask)
        legal = logits[0, torch.as_tensor(mask[0])]
        assert legal.std() > 1e-3  # the logits do not vanish
        (torch.log_softmax(legal, -1)[0] + value.sum()).backward()
        grads.append(torch.cat([p.grad.flatten() for p in agent.parameters() if p.grad is not None]))
        agent.logits = logits.detach()
    assert calls, "the diff encoder was not used"
    np.testing.assert_allclose(diff.logits.numpy(), full.logits.numpy(), atol=1e-4)
    np.testing.assert_allclose(grads[0].numpy(), grads[1].numpy(), atol=1e-4)


def test_training_set_episodes_alternate_between_models_and_time_budget_stops(tmp_path):
    from xflow.agents.ppo import profile_args

    a = profile_args("quick", model="builder:split_concat", extra_models=("builder:transpose_chain",), horizon=2,
                     total_timesteps=64, num_steps=8, runs_dir=str(tmp_path), hidden=8, gnn_layers=1,
                     cost_model="nominal", max_candidates=4, time_budget_s=1e-6)
    res = train(a)
    models = [e["model"] for e in res.episodes]
    assert models[:2] == ["builder:split_concat", "builder:transpose_chain"]
    assert all(m != n for m, n in zip(models, models[1:]))
    assert res.scalars[-1]["step"] == 8  # stopped after the first iteration (budget spent)
    assert (res.run_dir / "agent.pt").exists()


def test_on_iteration_runs_after_every_update_outside_the_budget(tmp_path, monkeypatch):
    from xflow.agents import ppo

    clock = [1000.0]  # a clock that only the callback moves: training itself takes no time
    monkeypatch.setattr(ppo.time, "time", lambda: clock[0])
    a = ppo.profile_args("quick", model="builder:split_concat", horizon=2, total_timesteps=24, num_steps=8,
                         runs_dir=str(tmp_path), hidden=8, gnn_layers=1, cost_model="nominal",
                         max_candidates=4, time_budget_s=50.0, save_model=False)
    calls = []

    def slow_eval(iteration, global_step, agent):
        calls.append((iteration, global_step, agent))
        clock[0] += 100.0  # past the budget: counted against it, training would stop after update 1

    res = train(a, on_iteration=slow_eval)
    assert [(i, s) for i, s, _ in calls] == [(1, 8), (2, 16), (3, 24)]
    assert all(ag is res.agent for _, _, ag in calls)


def test_init_checkpoint_starts_from_its_weights_and_refuses_another_shape(tmp_path):
    import pytest
    import torch

    from xflow.agents.ppo import _load_weights, make_agent
    from xflow.errors import ModelLoadError
    from xflow.nn import GraphActorCritic

    first = train(Args(runs_dir=str(tmp_path / "a"), seed=3, **TINY))
    ckpt = first.run_dir / "agent.pt"
    saved = GraphActorCritic.load(ckpt).state_dict()
    args = Args(runs_dir=str(tmp_path / "b"), seed=4, **TINY)
    fresh = make_agent(args, first.agent.config["num_actions"])
    assert any(not torch.equal(fresh.state_dict()[k], v) for k, v in saved.items())
    _load_weights(fresh, str(ckpt))
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in saved.items())
    # one update on from the checkpoint: close to it (lr 5e-4 steps), not at a random start
    cont = train(Args(runs_dir=str(tmp_path / "c"), seed=4, init_checkpoint=str(ckpt),
                      **{**TINY, "total_timesteps": 16}))
    random = train(Args(runs_dir=str(tmp_path / "d"), seed=4, **{**TINY, "total_timesteps": 16}))

    def dist(agent):
        return sum(float((agent.state_dict()[k].float() - v.float()).abs().sum()) for k, v in saved.items())

    assert dist(cont.agent) < 0.1 * dist(random.agent)
    with pytest.raises(ModelLoadError, match="network config"):
        train(Args(runs_dir=str(tmp_path / "e"), seed=4, init_checkpoint=str(ckpt), **{**TINY, "hidden": 16}))
