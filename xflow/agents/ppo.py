# docs: docs/rl.md ; after cleanrl's ppo.py (https://docs.cleanrl.dev/rl-algorithms/ppo/#ppopy)
"""PPO with action masking over graph-rewrite candidates, in one readable file.

The agent is X-RLflow's: a GATv2 encoder embeds the current graph and every candidate graph, a
policy head scores the candidates (plus "stop"), a value head the current graph
(:class:`xflow.nn.GraphActorCritic`).

Defaults: X-RLflow's public code (:data:`PROFILES` ``"xrlflow"``; ``"quick"`` keeps this file's
earlier, faster settings for toy runs). Each value with its source in ucamrl/xrlflow at commit
``adfa0db966f9eb6c9373c021999a11907bf29b5d`` (``R`` = ``python/graph_rewriter/examples/
run_gat_hierarchical_rl_v2.py``, ``A`` = ``python/graph_rewriter/agents/gat_hierarchical_agent_v2.py``):

=======================  ==========  ==========================================================
setting                  value       source
=======================  ==========  ==========================================================
learning rate            2.5e-4      ``R:105`` ``"learning_rate": 2.5e-4``
clip ratio               0.1         ``R:106`` ``"clip_ratio": 0.1`` (also clips the value, ``A:458``)
grad-norm clip           0.5         ``R:107`` ``"global_norm": 0.5`` (``A:100``)
target KL                0.05        ``R:108`` ``"target_kl": 0.05``; checked after each epoch once
                                     more than 10 updates were done (``A:285-286``)
γ, GAE λ                 0.99, 0.95  ``R:103-104``
minibatches, epochs      8, 3        ``R:111-112`` ``"n_minibatch": 8, "update_round": 3``
value, entropy coef      0.5, 0.01   ``A:472`` ``J = actor_loss + 0.5 * vf_loss - 0.01 * entropy_bonus``
horizon                  50          ``R:32`` (the loop ends at ``timestep > horizon``, ``R:233``: 51 steps)
GAT heads/width/steps    4, 64, 5    ``R:95-97``
Adam ε, adv. norm        1e-5, yes   ``A:101``, ``A:425`` (per minibatch)
=======================  ==========  ==========================================================

Known differences (kept on purpose, see docs/rl.md): X-RLflow's action is hierarchical (rule, then
one of ``max_num_candidates = 200`` locations, ``R:34``) where ours is one flat candidate list of
``max_candidates``; it updates after every 30 episodes (``R:35``, ``R:264``) where we roll out a
fixed ``num_steps``; its learning rate decays linearly to 0 over
``num_episodes * update_round // episodes_per_batch = 500`` optimizer steps (``A:94-98``), which,
counted per minibatch step, is reached after about 21 of its 166 updates — we anneal over the
whole run (cleanrl).

Run::

    .venv/bin/python -m xflow.agents.ppo --model builder:inception_like --total-timesteps 512

Writes ``{runs_dir}/{run_name}/``: ``args.json``, ``scalars.csv`` (``step, tag, value`` with tags
``charts/*`` and ``losses/*``), ``episodes.csv`` (every training episode as a replayable
:class:`~xflow.envs.state.EpisodeState`) and ``agent.pt`` (:meth:`GraphActorCritic.load`).
"""
from __future__ import annotations

import csv
import logging
import random
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import numpy as np
import torch
import tyro

from xflow import paths
from xflow.agents.evaluation import evaluate_agent
from xflow.envs import ENV_ID  # importing xflow.envs registers the environment
from xflow.envs.features import EDGE_DIM, NODE_DIM
from xflow.envs.state import write_states_csv
from xflow.errors import ModelLoadError, UnknownName
from xflow.nn import GraphActorCritic
from xflow.results import write_records
from xflow.safeio import atomic_output, atomic_write_json

__all__ = ["Args", "PROFILES", "TrainResult", "make_env", "profile_args", "train", "run"]

log = logging.getLogger(__name__)


@dataclass
class Args:
    """PPO configuration (each field is a ``--flag`` of the command line)."""

    exp_name: str = "ppo"
    """the name of this experiment"""
    seed: int = 1
    """seed of the experiment"""
    torch_deterministic: bool = True
    """if toggled, `torch.backends.cudnn.deterministic=False`"""
    torch_threads: int = 1
    """torch intra-op threads (1 is fastest for these tiny graphs: no spin-waiting)"""
    runs_dir: str = "runs"
    """where run directories go (`{runs_dir}/{run_name}`)"""
    save_model: bool = True
    """whether to save the agent to `{run_dir}/agent.pt`"""
    write_results: bool = False
    """also append the training curve to `results/rl_ppo_train` (xflow.results.write_records)"""

    init_checkpoint: str = ""
    """start from this checkpoint's weights (continue a training run; its network config must match
    this run's; Adam's moments start fresh, as they are not saved); empty: random weights"""

    # Environment arguments
    env_id: str = ENV_ID
    """the id of the environment"""
    model: str = "builder:inception_like"
    """model id of the training graph (builder:NAME, zoo:NAME, file:PATH)"""
    extra_models: tuple[str, ...] = ()
    """more training graphs: episodes cycle through `model` and these in turn (a training set)"""
    max_candidates: int = 64
    """size of the candidate part of the action space"""
    horizon: int = 50
    """episode length limit (X-RLflow: 50)"""
    reward: str = "cost"
    """reward: cost | measured | hybrid"""
    cost_model: str = "calibrated"
    """cost model (xflow.costs): calibrated | nominal | measured-ops | measured | ort | torch"""
    measure_every: int = 10
    """measured reward every k steps (measured/hybrid rewards)"""

    # Algorithm specific arguments
    total_timesteps: int = 2048
    """total timesteps of the experiments"""
    time_budget_s: float = 0.0
    """stop after the PPO iteration that ends past this many seconds of training (0: no limit)"""
    learning_rate: float = 2.5e-4
    """the learning rate of the optimizer (X-RLflow: 2.5e-4)"""
    num_steps: int = 128
    """the number of steps to run per policy rollout"""
    anneal_lr: bool = True
    """toggle learning rate annealing"""
    gamma: float = 0.99
    """the discount factor gamma"""
    gae_lambda: float = 0.95
    """the lambda for the general advantage estimation"""
    num_minibatches: int = 8
    """the number of mini-batches (X-RLflow: 8)"""
    update_epochs: int = 3
    """the K epochs to update the policy (X-RLflow: 3)"""
    norm_adv: bool = True
    """toggles advantages normalization"""
    clip_coef: float = 0.1
    """the surrogate clipping coefficient (X-RLflow: 0.1)"""
    clip_vloss: bool = True
    """toggles whether or not to use a clipped loss for the value function"""
    ent_coef: float = 0.01
    """coefficient of the entropy"""
    vf_coef: float = 0.5
    """coefficient of the value function"""
    max_grad_norm: float = 0.5
    """the maximum norm for the gradient clipping"""
    target_kl: float | None = 0.05
    """stop an update's epochs once the approximate KL exceeds this (X-RLflow: 0.05; None: never)"""
    target_kl_warmup: int = 11
    """the first this many updates never stop early (X-RLflow checks once `update_step > 10`: 11)"""
    hidden: int = 64
    """GNN and head width"""
    gnn_layers: int = 5
    """message-passing steps of the GAT encoder (X-RLflow: 5)"""
    heads: int = 4
    """attention heads (X-RLflow: 4)"""
    diff_encoder: bool = True
    """score candidates from their local difference to the current graph (exact, xflow.nn.diff_encoder;
    one minibatch update on squeezenet1_1 1.49x [1.30, 1.60] faster, thread CPU, busy machine; rollout
    steps the same)"""

    # to be filled in runtime
    batch_size: int = 0
    """the batch size (computed in runtime)"""
    minibatch_size: int = 0
    """the mini-batch size (computed in runtime)"""
    num_iterations: int = 0
    """the number of iterations (computed in runtime)"""


#: Named default profiles: ``xrlflow`` (the defaults of :class:`Args`, from X-RLflow's public code,
#: see the module docstring) and ``quick`` (this file's earlier defaults: shorter episodes, a
#: smaller GNN, faster updates; the toy benchmarks and notebooks' quick runs); ``xrlflow-budget``
#: (X-RLflow's with a 10x learning rate, below: the pretrained policy and the ablations).
PROFILES: dict[str, dict[str, Any]] = {
    "xrlflow": {"learning_rate": 2.5e-4, "clip_coef": 0.1, "target_kl": 0.05, "target_kl_warmup": 11,
                "horizon": 50, "gamma": 0.99, "gae_lambda": 0.95, "num_minibatches": 8, "update_epochs": 3,
                "ent_coef": 0.01, "vf_coef": 0.5, "max_grad_norm": 0.5, "hidden": 64, "gnn_layers": 5,
                "heads": 4},
    "quick": {"learning_rate": 5e-4, "clip_coef": 0.2, "target_kl": None, "target_kl_warmup": 0,
              "horizon": 20, "gamma": 0.99, "gae_lambda": 0.95, "num_minibatches": 4, "update_epochs": 4,
              "ent_coef": 0.01, "vf_coef": 0.5, "max_grad_norm": 0.5, "hidden": 64, "gnn_layers": 3,
              "heads": 2},
}


# X-RLflow's settings with a 10x learning rate, for CPU budgets of ~10 PPO updates of 128 steps:
# there X-RLflow's lr 2.5e-4 leaves the policy where it started (approx. KL < 5e-5 per update,
# entropy flat, the returns of a random policy; the ``lr 2.5e-4`` rows of ``envs.rl_ablation`` in
# docs/rl.md). X-RLflow's own updates use batches of 30 episodes (~1500 steps, minibatches of ~190),
# far less noisy per Adam step than our 16-step minibatches.
PROFILES["xrlflow-budget"] = {**PROFILES["xrlflow"], "learning_rate": 2.5e-3}


def profile_args(profile: str = "xrlflow", **overrides: Any) -> "Args":
    """:class:`Args` of a named :data:`PROFILES` entry, with ``overrides`` on top."""
    if profile not in PROFILES:
        raise UnknownName(f"unknown PPO profile {profile!r}; choose one of {', '.join(PROFILES)}")
    return Args(**{**PROFILES[profile], **overrides})


@dataclass
class TrainResult:
    """What :func:`train` returns: the run directory, the agent and the logged scalars."""

    run_name: str
    run_dir: Path
    agent: GraphActorCritic
    scalars: list[dict] = field(default_factory=list)
    episodes: list[dict] = field(default_factory=list)

    def curve(self, tag: str = "charts/episodic_return") -> tuple[np.ndarray, np.ndarray]:
        """``(steps, values)`` of one logged tag."""
        rows = [r for r in self.scalars if r["tag"] == tag]
        return (np.array([r["step"] for r in rows], dtype=np.int64),
                np.array([r["value"] for r in rows], dtype=np.float64))


def make_env(args: Args, model: str | None = None) -> gym.Env:
    """The (unwrapped) rewrite environment configured by ``args``."""
    env = gym.make(args.env_id, model=model or args.model, max_candidates=args.max_candidates,
                   horizon=args.horizon, reward=args.reward, cost_model=args.cost_model,
                   measure_every=args.measure_every)
    return env.unwrapped


def make_agent(args: Args, num_actions: int) -> GraphActorCritic:
    """The actor-critic for an action space of ``num_actions``."""
    return GraphActorCritic(num_actions, NODE_DIM, EDGE_DIM, hidden_channels=args.hidden,
                            num_layers=args.gnn_layers, heads=args.heads, diff_encoder=args.diff_encoder)


def _load_weights(agent: GraphActorCritic, path: str) -> None:
    """Copy ``path``'s weights into ``agent``; a checkpoint of another network shape is refused."""
    start = GraphActorCritic.load(path)
    if start.config != agent.config:
        diff = {k: (start.config.get(k), v) for k, v in agent.config.items() if start.config.get(k) != v}
        raise ModelLoadError(f"checkpoint {path} has another network config than this run "
                             f"(checkpoint, run): {diff}; pass the checkpoint's settings or train from scratch")
    agent.load_state_dict(start.state_dict())
    log.info("starting from the weights of %s", path)


def train(args: Args, on_iteration: Callable[[int, int, GraphActorCritic], None] | None = None) -> TrainResult:
    """Train PPO as configured; returns the agent and its curves (also written to the run dir).

    ``on_iteration(iteration, global_step, agent)``, when given, runs after every PPO update (an
    evaluation rollout, a checkpoint); its time is left out of ``args.time_budget_s``.
    """
    args.batch_size = int(args.num_steps)
    args.minibatch_size = max(1, int(args.batch_size // args.num_minibatches))
    args.num_iterations = max(1, args.total_timesteps // args.batch_size)
    model_tag = re.sub(r"[^A-Za-z0-9_.-]+", "-", args.model).strip("-")[:60]
    run_name = f"{model_tag}__{args.exp_name}__{args.seed}__{int(time.time())}"

    Path(args.runs_dir).mkdir(parents=True, exist_ok=True)
    base, n = run_name, 1
    while True:  # a run never shares (and overwrites) another run's folder, even in the same second
        run_dir = Path(args.runs_dir) / run_name
        try:
            run_dir.mkdir()
            break
        except FileExistsError:
            n += 1
            run_name = f"{base}-{n}"
    atomic_write_json(run_dir / "args.json", asdict(args), indent=2, sort_keys=True)
    scalars: list[dict] = []

    def add_scalar(tag: str, value: float, step: int) -> None:
        scalars.append({"step": int(step), "tag": tag, "value": float(value)})

    # TRY NOT TO MODIFY: seeding
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.backends.cudnn.deterministic = args.torch_deterministic
    torch.set_num_threads(max(1, args.torch_threads))

    # env setup
    train_models = [args.model, *args.extra_models]
    envs = [make_env(args, model=m) for m in train_models]
    env_i, env = 0, envs[0]
    assert isinstance(env.action_space, gym.spaces.Discrete), "only discrete action space is supported"
    agent = make_agent(args, int(env.action_space.n))
    if args.init_checkpoint:
        _load_weights(agent, args.init_checkpoint)
    optimizer = torch.optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5)

    # ALGO Logic: Storage setup (one env; observations are graphs, kept as Python objects)
    obs_buf: list[dict] = [None] * args.num_steps  # type: ignore[list-item]
    masks = np.zeros((args.num_steps, env.action_space.n), dtype=bool)
    actions = torch.zeros(args.num_steps, dtype=torch.long)
    logprobs = torch.zeros(args.num_steps)
    rewards = torch.zeros(args.num_steps)
    dones = torch.zeros(args.num_steps)
    values = torch.zeros(args.num_steps)

    # TRY NOT TO MODIFY: start the game
    global_step = 0
    start_time = time.time()
    next_obs, info = env.reset(seed=args.seed)
    next_mask = info["action_mask"]
    next_done = 0.0
    episodes: list[dict] = []
    states = []

    for iteration in range(1, args.num_iterations + 1):
        # Annealing the rate if instructed to do so.
        if args.anneal_lr:
            frac = 1.0 - (iteration - 1.0) / args.num_iterations
            optimizer.param_groups[0]["lr"] = frac * args.learning_rate

        for step in range(args.num_steps):
            global_step += 1
            obs_buf[step] = next_obs
            masks[step] = next_mask
            dones[step] = next_done

            # ALGO LOGIC: action logic
            with torch.no_grad():
                action, logprob, _, value = agent.get_action_and_value([next_obs], next_mask[None])
            values[step] = value[0]
            actions[step] = action[0]
            logprobs[step] = logprob[0]

            # TRY NOT TO MODIFY: execute the game and log data.
            next_obs, reward, terminated, truncated, info = env.step(int(action[0]))
            rewards[step] = float(reward)
            next_done = float(terminated or truncated)
            if next_done:
                state = env.state
                states.append(state)
                ep = {"global_step": global_step, "model": train_models[env_i],
                      "episodic_return": env.episode_reward,
                      "episodic_length": env.steps, "final_cost": info["cost"],
                      "initial_cost": info["initial_cost"]}
                episodes.append(ep)
                add_scalar("charts/episodic_return", ep["episodic_return"], global_step)
                add_scalar("charts/episodic_length", ep["episodic_length"], global_step)
                add_scalar("charts/final_cost_ratio", info["cost"] / info["initial_cost"], global_step)
                if len(envs) > 1:  # the next training graph, seeded on its first episode
                    env_i = (env_i + 1) % len(envs)
                    env = envs[env_i]
                    first = len(episodes) < len(envs)
                    next_obs, info = env.reset(seed=args.seed + env_i if first else None)
                else:
                    next_obs, info = env.reset()
                log.info("episode %d (%s): return %.3f", len(episodes), ep["model"], ep["episodic_return"])
            next_mask = info["action_mask"]

        # bootstrap value if not done
        with torch.no_grad():
            next_value = agent.get_value([next_obs])[0]
            advantages = torch.zeros_like(rewards)
            lastgaelam = 0.0
            for t in reversed(range(args.num_steps)):
                if t == args.num_steps - 1:
                    nextnonterminal = 1.0 - next_done
                    nextvalues = next_value
                else:
                    nextnonterminal = 1.0 - dones[t + 1]
                    nextvalues = values[t + 1]
                delta = rewards[t] + args.gamma * nextvalues * nextnonterminal - values[t]
                advantages[t] = lastgaelam = (
                    delta + args.gamma * args.gae_lambda * nextnonterminal * lastgaelam)
            returns = advantages + values

        # flatten the batch (one env: already flat)
        b_obs, b_masks = obs_buf, masks
        b_logprobs, b_actions = logprobs, actions
        b_advantages, b_returns, b_values = advantages, returns, values

        # Optimizing the policy and value network
        b_inds = np.arange(args.batch_size)
        clipfracs = []
        epochs_run = 0
        for epoch in range(args.update_epochs):
            epochs_run += 1
            np.random.shuffle(b_inds)
            for start in range(0, args.batch_size, args.minibatch_size):
                mb_inds = b_inds[start:start + args.minibatch_size]
                _, newlogprob, entropy, newvalue = agent.get_action_and_value(
                    [b_obs[i] for i in mb_inds], b_masks[mb_inds], b_actions[mb_inds])
                logratio = newlogprob - b_logprobs[mb_inds]
                ratio = logratio.exp()

                with torch.no_grad():
                    # calculate approx_kl http://joschu.net/blog/kl-approx.html
                    old_approx_kl = (-logratio).mean()
                    approx_kl = ((ratio - 1) - logratio).mean()
                    clipfracs += [((ratio - 1.0).abs() > args.clip_coef).float().mean().item()]

                mb_advantages = b_advantages[mb_inds]
                if args.norm_adv and len(mb_inds) > 1:
                    mb_advantages = (mb_advantages - mb_advantages.mean()) / (mb_advantages.std() + 1e-8)

                # Policy loss
                pg_loss1 = -mb_advantages * ratio
                pg_loss2 = -mb_advantages * torch.clamp(ratio, 1 - args.clip_coef, 1 + args.clip_coef)
                pg_loss = torch.max(pg_loss1, pg_loss2).mean()

                # Value loss
                if args.clip_vloss:
                    v_loss_unclipped = (newvalue - b_returns[mb_inds]) ** 2
                    v_clipped = b_values[mb_inds] + torch.clamp(
                        newvalue - b_values[mb_inds], -args.clip_coef, args.clip_coef)
                    v_loss_clipped = (v_clipped - b_returns[mb_inds]) ** 2
                    v_loss = 0.5 * torch.max(v_loss_unclipped, v_loss_clipped).mean()
                else:
                    v_loss = 0.5 * ((newvalue - b_returns[mb_inds]) ** 2).mean()

                entropy_loss = entropy.mean()
                loss = pg_loss - args.ent_coef * entropy_loss + v_loss * args.vf_coef

                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                optimizer.step()

            # X-RLflow: stop on the last minibatch's KL, once `target_kl_warmup` updates have been done
            if (args.target_kl is not None and iteration - 1 >= args.target_kl_warmup
                    and approx_kl > args.target_kl):
                break

        y_pred, y_true = b_values.numpy(), b_returns.numpy()
        var_y = np.var(y_true)
        explained_var = np.nan if var_y == 0 else 1 - np.var(y_true - y_pred) / var_y

        # TRY NOT TO MODIFY: record rewards for plotting purposes
        add_scalar("charts/learning_rate", optimizer.param_groups[0]["lr"], global_step)
        add_scalar("losses/value_loss", v_loss.item(), global_step)
        add_scalar("losses/policy_loss", pg_loss.item(), global_step)
        add_scalar("losses/entropy", entropy_loss.item(), global_step)
        add_scalar("losses/old_approx_kl", old_approx_kl.item(), global_step)
        add_scalar("losses/approx_kl", approx_kl.item(), global_step)
        add_scalar("losses/clipfrac", float(np.mean(clipfracs)), global_step)
        add_scalar("losses/epochs_run", epochs_run, global_step)
        add_scalar("losses/explained_variance", float(explained_var), global_step)
        add_scalar("charts/SPS", global_step / max(time.time() - start_time, 1e-9), global_step)
        log.info("iteration %d/%d, step %d, SPS %d", iteration, args.num_iterations, global_step,
                 int(global_step / max(time.time() - start_time, 1e-9)))
        if args.save_model:  # a long run keeps its latest finished iteration
            agent.save(run_dir / "agent.pt", args=asdict(args), run_name=run_name, iterations=iteration)
        if on_iteration is not None:
            t_cb = time.time()
            on_iteration(iteration, global_step, agent)
            start_time += time.time() - t_cb  # the callback's time is not training time
        if args.time_budget_s and time.time() - start_time >= args.time_budget_s:
            log.info("time budget of %.0f s spent after iteration %d", args.time_budget_s, iteration)
            break

    with atomic_output(run_dir / "scalars.csv") as tmp, tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["step", "tag", "value"])
        w.writeheader()
        w.writerows(scalars)
    write_states_csv(states, run_dir / "episodes.csv")
    if args.write_results:
        write_records([{"run_name": run_name, "model": args.model, "seed": args.seed,
                        "step": r["step"], "metric": r["tag"], "value": r["value"]}
                       for r in scalars], "rl_ppo_train")
    for e in envs:
        e.close()
    return TrainResult(run_name, run_dir, agent, scalars, episodes)


def run(config: dict[str, Any]) -> list[dict]:
    """Sweep task: train with ``config`` (``Args`` fields), evaluate on ``eval_models``.

    The run directory (checkpoint ``agent.pt``) defaults to ``cache_dir('rl_runs')`` and is
    recorded in every record's ``run_dir``.

    Returns long-format records (``model``, ``seed``, ``phase`` train/eval, ``metric``, ``value``),
    for :func:`xflow.sweep.run_sweep` (e.g. over seeds and training models).
    """

    config = dict(config)
    eval_models = list(config.pop("eval_models", []) or [])
    config.setdefault("runs_dir", str(paths.cache_dir("rl_runs")))
    args = Args(**config)
    res = train(args)
    records = [{"model": args.model, "seed": args.seed, "phase": "train", "step": r["step"],
                "metric": r["tag"], "value": r["value"], "run_dir": str(res.run_dir)}
               for r in res.scalars]
    for m in [args.model, *eval_models]:
        env = make_env(args, model=m)
        for row in evaluate_agent(res.agent, env, episodes=1, seed=args.seed):
            for k in ("episodic_return", "final_cost_ratio", "best_cost_ratio", "episodic_length"):
                records.append({"model": m, "train_model": args.model, "seed": args.seed,
                                "run_dir": str(res.run_dir),
                                "phase": "eval", "step": res.scalars[-1]["step"] if res.scalars else 0,
                                "metric": f"eval/{k}", "value": float(row[k])})
    return records


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    result = train(tyro.cli(Args))
    steps, rets = result.curve()
    print(f"run: {result.run_dir}")  # noqa: T201 - command-line entry point
    if len(rets):
        print(f"episodes: {len(rets)}, last return {rets[-1]:.3f}, best {rets.max():.3f}")  # noqa: T201
