"""The graph-rewrite environment ``xflow/GraphRewrite-v2`` (after X-RLflow, MLSys 2023)."""
from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import onnx
from gymnasium import spaces
from gymnasium.spaces import GraphInstance

from xflow.costs.base import CostModel
from xflow.costs.registry import make_cost_model
from xflow.envs.cache import ByteLRU
from xflow.envs.candidate_set import VERIFY_MODES, CandidateSet, LazyCandidate
from xflow.envs.features import GraphFeatures, IncrementalFeaturizer, diff_parts, graph_space
from xflow.envs.rewards import Reward, make_reward
from xflow.envs.state import EpisodeState, StateValidation
from xflow.errors import XflowError
from xflow.graphs.ir import Graph
from xflow.graphs.model_ids import register_model, resolve_graph
from xflow.rewrites.candidates import Candidate

__all__ = ["RewriteEnv", "Candidate", "LazyCandidate", "CandidateGraphs", "StepRecord"]

log = logging.getLogger(__name__)

Obs = dict[str, Any]


@dataclass(frozen=True)
class StepRecord:
    """One step of the current episode, for trajectories in notebooks and reports."""

    step: int
    action: int
    rule: str | None
    location: str | None
    hash: str
    cost: float
    reward: float


def _rule_name(rule: Any) -> str:
    return str(getattr(rule, "name", rule))


class CandidateGraphs(tuple):
    """The ``candidates`` entry of an observation: one :class:`GraphInstance` per candidate,
    built on first access from the current graph's features and the candidate's local
    difference (:func:`xflow.envs.features.diff_instance`) — so a step never featurizes a
    candidate graph, and an encoder that scores candidates from their differences
    (:meth:`xflow.nn.GraphActorCritic` with ``diff_encoder``) never builds them at all.

    A ``tuple`` (Gymnasium's ``Sequence`` space checks that) whose raw items are the
    :class:`~xflow.rewrites.candidates.EditDiff` objects; indexing and iterating give the
    instances. :attr:`diffs`, :attr:`base` (the current graph's
    :class:`~xflow.envs.features.GraphFeatures`) and :attr:`costs` (each candidate graph's
    predicted cost: current cost − removed + added per-node costs) serve the diff encoder.
    """

    def __new__(cls, diffs, base: GraphFeatures, costs: list[float]):
        obj = super().__new__(cls, diffs)
        obj.base = base
        obj.costs = costs
        obj._built = [None] * len(diffs)
        return obj

    @property
    def diffs(self) -> tuple:
        """The candidates' :class:`~xflow.rewrites.candidates.EditDiff` objects."""
        return tuple(tuple.__iter__(self))

    def __getitem__(self, i):
        if isinstance(i, slice):
            return tuple(self[j] for j in range(*i.indices(len(self))))
        if i < 0:
            i += len(self)
        return self.parts(i)[0]

    def parts(self, i: int):
        """:func:`xflow.envs.features.diff_parts` of candidate ``i`` (built once)."""
        g = self._built[i]
        if g is None:
            d = tuple.__getitem__(self, i)
            g = self._built[i] = diff_parts(self.base, d, d.node_costs)
        return g

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __reduce__(self):
        return (_rebuild_candidate_graphs, (self.diffs, self.base, self.costs))


def _rebuild_candidate_graphs(diffs, base, costs):
    return CandidateGraphs(diffs, base, costs)


class RewriteEnv(gym.Env[Obs, int]):
    """
    ## Description

    Optimize an ONNX tensor graph by applying verified subgraph substitutions one at a time, as
    in X-RLflow (He, Parker, Yoneki, MLSys 2023). At each step the agent sees the current graph
    and every graph one rewrite away, and picks one of them or stops. Unlike greedy search it
    may accept a temporarily worse graph to reach a better one.

    ## Action Space

    ``Discrete(max_candidates + 1)``. Action ``i < max_candidates`` applies candidate ``i`` (the
    (rule × location) rewrites of the current graph that pass the check of ``verify``, first of
    each edit signature, in rule-registry then site order); action ``max_candidates``
    (:attr:`stop_action`, X-RLflow's no-op) ends the episode. Only the first ``n_candidates``
    indices and the stop action are legal: ``obs["action_mask"]`` / ``info["action_mask"]``.
    An illegal action leaves the graph unchanged (reward 0, ``info["invalid_action"] = True``).

    ## Observation Space

    ``Dict`` with

    * ``graph``: ``Graph(Box(0, 64, (NODE_DIM,)), Box(0, 64, (EDGE_DIM,)))`` — the current graph;
      node features end with the operator's cost under the node cost model (X-RLflow's per-op
      runtime);
    * ``candidates``: ``Sequence(Graph(...), stack=False)`` — the candidate graphs in action
      order, a :class:`CandidateGraphs` built on access from each candidate's local difference;
    * ``graph_cost``: ``Box(0, 1e9, (1,))`` — the current graph's cost (ms) under ``cost_model``
      (X-RLflow's graph-level ``globals``);
    * ``action_mask``: ``MultiBinary(max_candidates + 1)``.

    Nodes carry an op-type one-hot plus attributes, edges tensor-shape features
    (:mod:`xflow.envs.features`); each ``GraphInstance`` converts to a PyG ``Data`` with
    :func:`xflow.nn.batching.to_data`.

    ## Incremental steps

    A step builds only the chosen candidate; the candidate set moves incrementally
    (:class:`~xflow.envs.candidate_set.CandidateSet`: only sites near the change are checked
    again), features are updated incrementally
    (:class:`~xflow.envs.features.IncrementalFeaturizer`), candidates are described by their
    :class:`~xflow.rewrites.candidates.EditDiff`. ``incremental=False`` rebuilds everything every
    step (the reference the tests compare against). Start states (the loaded graph's candidate
    set) are cached by graph hash and model id in a byte-bounded LRU (``cache_bytes``).

    ## Rewards

    A reward object (:mod:`xflow.envs.rewards`): by default the cost-model delta
    ``(c(prev) − c(new)) / c(initial) × 100``; ``reward="measured"`` uses real ONNX Runtime
    latency every ``measure_every`` steps and at episode end; ``"hybrid"`` adds to the dense
    cost-model reward a measured correction at those checkpoints.

    ## Starting State

    The graph named by ``model`` (a model id such as ``builder:inception_like`` or
    ``zoo:squeezenet1_1`` — see :mod:`xflow.graphs.model_ids` — an ``onnx.ModelProto`` or an
    :class:`xflow.graphs.Graph`), or ``reset(options={"model": id})``.
    The start is deterministic; the seed only seeds :attr:`np_random` (unused by the dynamics).

    ## Episode End

    Terminated when the stop action is taken or no rewrite applies; truncated after
    ``horizon`` steps.

    ## Arguments

    ``gymnasium.make("xflow/GraphRewrite-v2", model="builder:inception_like",
    max_candidates=500, horizon=100, reward="cost", cost_model="calibrated", measure_every=10,
    rules=None, verify="shape", node_cost_model=None, hops=1, incremental=True,
    cache_bytes=256 << 20)``

    * ``rules``: rule names (default: every registered rule).
    * ``verify``: ``"shape"`` (default: a candidate is offered only when every tensor leaving
      its changed region keeps its shape and dtype, by local shape inference), ``False``,
      ``"local"`` / ``"full"`` (additionally run the rewritten region / whole model in ONNX
      Runtime: slow; ``True`` means ``"local"``).
    * ``node_cost_model``: the model of the per-node cost features (default: ``cost_model`` when
      it breaks a graph down per node, else ``"nominal"``).
    * ``hops``: how far from a rewrite's changed nodes sites are re-checked.
    * ``cache_size``: ignored (the cache is bounded by ``cache_bytes``).
    * ``cost_model``: a name of :data:`xflow.costs.COST_MODELS` (``"calibrated"``: the roofline
      calibrated on this device; ``"nominal"``, ``"measured-ops"``, ``"measured"``) or a
      :class:`~xflow.costs.CostModel`.

    The state replays exactly: :attr:`state` is an
    :class:`~xflow.envs.state.EpisodeState` ``(model_id, actions)``; :meth:`apply` replays one
    and :meth:`validate` checks a replay reaches the same graphs.

    ## Version History

    * v0: initial version.
    * v1: graphs are the onnx-ir IR; graph hashes use encoding v2 (states recorded under v0 do
      not replay their hashes); the cost-model name ``analytic`` became ``calibrated``.
      Later in v1 (issue 12): incremental steps, ``verify="shape"`` by default, candidates
      deduplicated by edit signature, per-node cost column (``NODE_DIM`` + 1), ``graph_cost`` and
      ``action_mask`` in the observation.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, model: str | onnx.ModelProto | Graph = "builder:inception_like", *,
                 max_candidates: int = 500, horizon: int = 100, reward: str | Reward = "cost",
                 cost_model: str | CostModel = "calibrated", measure_every: int = 10,
                 rules: list[str] | None = None, verify: bool | str = "shape", device: str = "cpu",
                 threads: int = 1, render_mode: str | None = None, cache_size: int | None = None,
                 cache_bytes: int = 256 << 20, node_cost_model: str | CostModel | None = None,
                 hops: int = 1, incremental: bool = True) -> None:
        if max_candidates < 1 or horizon < 1:
            raise XflowError(f"max_candidates ({max_candidates}) and horizon ({horizon}) must be >= 1")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise XflowError(f"render_mode {render_mode!r} not supported; use one of "
                             f"{self.metadata['render_modes']} or None")
        if verify is True:
            verify = "local"
        if verify not in VERIFY_MODES:
            raise XflowError(f"verify={verify!r} is not one of {VERIFY_MODES}")
        if hops < 0 or cache_bytes < 0:
            raise XflowError(f"hops ({hops}) and cache_bytes ({cache_bytes}) must be >= 0")
        if not isinstance(model, str):
            model = register_model(Graph.of(model).content_hash[:16], model)
        self._kwargs = dict(model=model, max_candidates=max_candidates, horizon=horizon,
                            reward=reward, cost_model=cost_model, measure_every=measure_every,
                            rules=list(rules) if rules is not None else None, verify=verify,
                            device=device, threads=threads, render_mode=render_mode,
                            cache_size=cache_size, cache_bytes=cache_bytes,
                            node_cost_model=node_cost_model, hops=hops, incremental=incremental)
        self.model_id: str = model
        self.max_candidates = int(max_candidates)
        self.horizon = int(horizon)
        self.rules = list(rules) if rules is not None else None
        self.verify = verify
        self.hops = int(hops)
        self.incremental = bool(incremental)
        self.render_mode = render_mode
        self.cost_model: CostModel = make_cost_model(cost_model, device=device, threads=threads)
        self.node_cost_model = self._node_cost_model(node_cost_model, device, threads)
        self.reward_fn: Reward = make_reward(reward, cost_model=self.cost_model,
                                             measure_every=measure_every)
        self.action_space = spaces.Discrete(self.max_candidates + 1)
        self.observation_space = spaces.Dict({
            "graph": graph_space(),
            "candidates": spaces.Sequence(graph_space(), stack=False),
            "graph_cost": spaces.Box(0.0, 1e9, shape=(1,), dtype=np.float32),
            "action_mask": spaces.MultiBinary(self.max_candidates + 1),
        })
        self._cache = ByteLRU(cache_bytes)
        self._models: dict[str, Graph] = {}
        self._cset = CandidateSet(self.rules, hops=self.hops, verify=self.verify)
        self._featurizer = IncrementalFeaturizer()
        self._features_now: GraphFeatures | None = None
        self._reset_fields()

    def _node_cost_model(self, spec, device: str, threads: int):
        """The model of the per-node cost features: ``spec`` when given, else the env's cost
        model when it breaks a graph down per node (``breakdown``), else the nominal roofline."""
        if spec is not None:
            m = make_cost_model(spec, device=device, threads=threads)
        else:
            m = self.cost_model
        if not hasattr(m, "breakdown"):
            log.info("cost model %s has no per-node breakdown; node cost features use the nominal roofline",
                     getattr(m, "name", m))
            m = make_cost_model("nominal", device=device, threads=threads)
        return m

    # -- bookkeeping --------------------------------------------------------------------------
    def _reset_fields(self) -> None:
        self.model: Graph | None = None
        self.initial_model: Graph | None = None
        self.hash: str = ""
        self.candidates: list[LazyCandidate] = []
        self.actions: list[int] = []
        self.hashes: list[str] = []
        self.trajectory: list[StepRecord] = []
        self.episode_reward = 0.0
        self.initial_cost = 0.0
        self.steps = 0
        self._t0 = time.perf_counter()
        self._done = False
        self._node_costs: dict[str, float] = {}

    @property
    def stop_action(self) -> int:
        """Index of the stop (X-RLflow's no-op, which terminates) action (``max_candidates``)."""
        return self.max_candidates

    def _load(self, model_id: str) -> Graph:
        if model_id not in self._models:
            self._models[model_id] = resolve_graph(model_id)
        return self._models[model_id]

    def _per_node_costs(self, graph: Graph) -> dict[str, float]:
        return {r["node"]: float(r["ms"]) for r in self.node_cost_model.breakdown(graph)}

    def _enter(self, graph: Graph, key: str, prev: Graph | None) -> None:
        """Make ``graph`` current: candidates (incrementally from ``prev`` when it is one rewrite
        back), features (incrementally), per-node costs."""
        # only loaded (start) graphs are cached: sites name nodes, and a graph reached by two
        # rewrite paths can hash equal while its generated node names differ
        key = (key, self.model_id)
        cached = self._cache.get(key) if prev is None else None
        if cached is not None:
            sites, order = cached
            self._cset.graph, self._cset.sites, self._cset.order = graph, dict(sites), list(order)
            self._cset.last_checked = 0
        elif prev is not None and self.incremental and graph.changes is not None:
            self._cset.advance(graph)
        else:
            self._cset.build(graph)
            if prev is None:
                self._cache.put(key, (dict(self._cset.sites), list(self._cset.order)), self._cset_nbytes())
        self._node_costs = self._per_node_costs(graph)
        featurizer = self._featurizer if self.incremental else IncrementalFeaturizer()  # fresh: from scratch
        self._features_now = featurizer.features(graph, self._node_costs)
        self.candidates = self._cset.candidates(self.max_candidates)

    def _cset_nbytes(self) -> int:
        return sum(s.diff.nbytes if s.diff is not None else 256 for s in self._cset.sites.values()) + 4096

    def _diff_costs(self, c: LazyCandidate) -> dict[str, float]:
        d = c.diff
        if d.node_costs is None:
            nodes = list(d.nodes) + list(d.rewired_nodes)
            d.node_costs = ({r["node"]: float(r["ms"]) for r in self.node_cost_model.breakdown(
                d.region_graph(self._cset.graph.ir.graph.opset_imports))}
                            if nodes else {})
        return d.node_costs

    def candidate_costs(self) -> list[float]:
        """Predicted cost (ms, under the node cost model) of each candidate graph from its local
        difference: current total − removed/rewired nodes + added/rewired nodes."""
        total = sum(self._node_costs.values())
        out = []
        for c in self.candidates:
            d = c.diff
            added = self._diff_costs(c)
            out.append(total - sum(self._node_costs.get(n, 0.0) for n in d.removed | d.rewired)
                       + sum(added.values()))
        return out

    def _obs(self) -> Obs:
        for c in self.candidates:
            self._diff_costs(c)
        cost = self.cost_model.cost(self.model, self.hash)
        return {
            "graph": GraphInstance(*(a.copy() for a in self._features_now.instance)),
            "candidates": CandidateGraphs([c.diff for c in self.candidates], self._features_now,
                                          self.candidate_costs()),
            "graph_cost": np.asarray([cost], dtype=np.float32),
            "action_mask": self.action_mask().astype(np.int8),
        }

    def action_mask(self) -> np.ndarray:
        """Legal actions now: the first ``len(candidates)`` indices and the stop action."""
        mask = np.zeros(self.max_candidates + 1, dtype=bool)
        mask[: len(self.candidates)] = True
        mask[self.stop_action] = True
        return mask

    def _info(self, **extra: Any) -> dict[str, Any]:
        return {
            "action_mask": self.action_mask(),
            "n_candidates": len(self.candidates),
            "cost": self.cost_model.cost(self.model, self.hash),
            "initial_cost": self.initial_cost,
            "step": self.steps,
            "hash": self.hash,
            "rechecked_sites": self._cset.last_checked,
            **extra,
        }

    # -- Gymnasium API ------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[Obs, dict[str, Any]]:
        """Start an episode on the configured graph (``options={"model": id}`` switches it)."""
        super().reset(seed=seed)
        if options and options.get("model"):
            model = options["model"]
            if not isinstance(model, str):
                model = register_model(Graph.of(model).content_hash[:16], model)
            self.model_id = model
        self._reset_fields()
        self.initial_model = self._load(self.model_id)
        self.model = self.initial_model
        self.hash = self.model.content_hash
        self._enter(self.model, self.hash, None)
        self.initial_cost = self.cost_model.cost(self.model, self.hash)
        self.reward_fn.reset(self.model, self.hash)
        return self._obs(), self._info()

    def step(self, action: int) -> tuple[Obs, float, bool, bool, dict[str, Any]]:
        """Apply candidate ``action`` (or stop); see the class docstring."""
        if self.model is None:
            raise XflowError("call reset() before step()")
        if self._done:
            raise XflowError("the episode is over (stop, no rewrite left or horizon reached); "
                             "call reset() before step()")
        action = int(action)
        prev, prev_key = self.model, self.hash
        stop = action == self.stop_action
        invalid = not stop and not (0 <= action < len(self.candidates))
        rule = loc = None
        if not stop and not invalid:
            cand = self.candidates[action]
            rule, loc = _rule_name(cand.rule), str(cand.location)
            self.model, self.hash = cand.graph, cand.hash
            for c in self.candidates:
                c.release()
            self._enter(self.model, self.hash, prev)
        self.steps += 1
        self.actions.append(action)
        self.hashes.append(self.hash)
        terminated = stop or not self.candidates
        truncated = not terminated and self.steps >= self.horizon
        reward = self.reward_fn.update(prev, self.model, prev_key=prev_key, new_key=self.hash,
                                       step=self.steps, done=terminated or truncated)
        self.episode_reward += reward
        self._done = terminated or truncated
        cost = self.cost_model.cost(self.model, self.hash)
        self.trajectory.append(StepRecord(self.steps, action, rule, loc, self.hash, cost, reward))
        info = self._info(rule=rule, location=loc, invalid_action=invalid)
        return self._obs(), float(reward), bool(terminated), bool(truncated), info

    def render(self) -> str | None:
        """``ansi``: one line per step so far (rule, location, cost)."""
        if self.render_mode != "ansi":
            return None
        lines = [f"{self.model_id}: initial cost {self.initial_cost:.4f} ms"]
        for r in self.trajectory:
            lines.append(f"  {r.step:3d} {r.rule or 'stop/noop':<28} {r.location or '':<40} "
                         f"cost {r.cost:.4f} ms  reward {r.reward:+.3f}")
        return "\n".join(lines)

    # -- replay (after CompilerGym's CompilerEnvState) ----------------------------------------
    @property
    def state(self) -> EpisodeState:
        """The replayable state of the current episode."""
        return EpisodeState(model_id=self.model_id, actions=tuple(self.actions),
                            hashes=tuple(self.hashes), reward=self.episode_reward,
                            walltime=time.perf_counter() - self._t0,
                            config=self.replay_config())

    def replay_config(self) -> dict[str, Any]:
        """The settings a replay needs (they determine the candidates and the episode end)."""
        cfg = {"max_candidates": self.max_candidates, "horizon": self.horizon,
               "verify": self.verify, "hops": self.hops,
               "rules": None if self.rules is None else [_rule_name(r) for r in self.rules]}
        for k in ("reward", "cost_model"):
            if isinstance(self._kwargs[k], str):
                cfg[k] = self._kwargs[k]
        return cfg

    def apply(self, state: EpisodeState) -> tuple[Obs, dict[str, Any]]:
        """Reset to ``state.model_id`` and replay ``state.actions``; returns the last (obs, info).

        Raises :class:`~xflow.errors.XflowError` if an action is illegal at its step (the state
        was recorded with other rules or ``max_candidates``).
        """
        obs, info = self.reset(options={"model": state.model_id})
        for i, a in enumerate(state.actions):
            legal = 0 <= a < len(info["action_mask"]) and bool(info["action_mask"][a])
            if not legal:
                raise XflowError(f"replay of {state.model_id}: action {a} at step {i + 1} is not "
                                 f"legal ({info['n_candidates']} candidates); was the state "
                                 f"recorded with other settings ({state.config})?")
            obs, _, term, trunc, info = self.step(a)
            if (term or trunc) and i + 1 < len(state.actions):
                raise XflowError(f"replay of {state.model_id}: episode ended at step {i + 1} of "
                                 f"{len(state.actions)}")
        return obs, info

    def fork(self, **overrides: Any) -> "RewriteEnv":
        """A new environment with the same settings (``overrides`` replace some), sharing the
        candidate and feature caches."""
        kwargs = dict(self._kwargs)
        kwargs["model"] = self.model_id
        kwargs.update(overrides)
        if isinstance(kwargs["reward"], Reward):
            kwargs["reward"] = copy.deepcopy(kwargs["reward"])
        other = RewriteEnv(**kwargs)
        other._cache, other._models = self._cache, self._models
        return other

    def validate(self, state: EpisodeState, *, check_reward: bool = True) -> StateValidation:
        """Replay ``state`` in a fork (with the state's recorded settings) and check it reaches
        the recorded graphs and, unless the reward is measured or ``check_reward=False``, the
        recorded reward."""
        errors: list[str] = []
        overrides = {k: v for k, v in state.config.items() if k in self._kwargs}
        other = self.fork(**overrides)
        try:
            other.apply(state)
        except XflowError as exc:
            return StateValidation(ok=False, errors=(str(exc),))
        if state.hashes and tuple(other.hashes) != tuple(state.hashes):
            first = next(i for i, (a, b) in enumerate(zip(other.hashes, state.hashes)) if a != b) \
                if any(a != b for a, b in zip(other.hashes, state.hashes)) else len(other.hashes)
            errors.append(f"graph hash differs from the recorded one at step {first + 1}")
        if check_reward and state.reward is not None and not other.reward_fn.measured and \
                not np.isclose(other.episode_reward, state.reward, rtol=1e-6, atol=1e-9):
            errors.append(f"reward {other.episode_reward:.6g} != recorded {state.reward:.6g}")
        return StateValidation(ok=not errors, errors=tuple(errors), reward=other.episode_reward,
                               final_hash=other.hash)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_cache"] = ByteLRU(self._cache.max_bytes)
        return state
