"""X-RLflow's evaluation protocol for one model: the policy vs greedy / beam / random search.

:func:`evaluate_policy` runs every method on the same start graph (the zoo/builder/file model,
loaded and folded as the environment loads it), under the same cost model (the policy's), and
reports per method

* the **predicted cost ratio** (final / initial cost; < 1 is a predicted gain),
* the **measured speed-up** of the method's final graph vs the original on ``backend`` (ONNX
  Runtime at level ``all`` by default; ``torch`` / ``torch-cuda``: the generated PyTorch module),
  all distinct final graphs plus the original and an A/A control timed in one interleaved run of
  the measurement core (:func:`xflow.runtime.latency.measure_on_backend`), each with its
  interval and verdict; a method that returns the original graph unchanged gets ``unchanged``,
* the **search time** (wall seconds of the search, verification included).

Stochastic methods (``rl-sample``: the policy's sampled actions; ``random``) run once per seed
and are summarised by the IQM over seeds with a percentile-bootstrap interval
(:func:`xflow.agents.evaluation.bootstrap_ci`); ``rl`` (arg-max actions), ``greedy`` and ``beam``
are deterministic. Random search gets one walk of the policy's horizon per seed: the budget of
one policy episode.

:func:`shaped_model_id` turns ``--shape input=dims`` into the zoo config that re-exports the model
at that input shape (batch size; sequence length for sequence models; image size for image
models), or raises a one-line error.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xflow.costs.registry import make_cost_model
from xflow.errors import DeviceUnavailable, XflowError
from xflow.graphs import zoo
from xflow.graphs.model_ids import parse_model_id, resolve_graph
from xflow.paths import repo_root
from xflow.rewrites.search import beam_search, greedy_search, random_search
from xflow.rewrites.searches.taso import taso_search
from xflow.rewrites.searches.tensat import tensat_search
from xflow.runtime.backend import BACKENDS, torch_cuda_available
from xflow.runtime.latency import measure_on_backend

__all__ = ["DEFAULT_POLICY", "default_policy", "parse_shape", "shaped_model_id", "evaluate_policy", "measure_finals",
           "STOCHASTIC", "METHODS"]

log = logging.getLogger(__name__)

#: The committed pretrained policy (``benchmarks/rl_pretrain.py``), relative to the repository root.
DEFAULT_POLICY = "data/policies/xrlflow_pretrained.pt"

#: Methods run once per seed (the rest are deterministic).
STOCHASTIC = ("rl-sample", "random")
#: Every method :func:`evaluate_policy` knows (``taso`` / ``tensat`` only when asked for).
METHODS = ("rl", "rl-sample", "greedy", "beam", "random", "taso", "tensat")


def default_policy() -> Path:
    """Path of the committed pretrained policy; a clear error when it is missing."""
    path = repo_root() / DEFAULT_POLICY
    if not path.exists():
        raise XflowError(f"the pretrained policy {DEFAULT_POLICY} is missing from this checkout; restore it "
                         "(git checkout -- data/policies) or train one with benchmarks/rl_pretrain.py, "
                         "or pass --checkpoint/--policy")
    return path


def parse_shape(text: str) -> tuple[str, tuple[int, ...]]:
    """``"input=1x3x224x224"`` (or ``1,3,224,224``) → ``("input", (1, 3, 224, 224))``."""
    name, sep, dims = text.partition("=")
    parts = dims.replace(",", "x").split("x") if sep else []
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if not name or not shape or any(d < 1 for d in shape):
        raise XflowError(f"--shape {text!r} is not NAME=DIMS with positive integer dims "
                         "(e.g. input=2x3x224x224 or input=1,64,768)")
    return name, shape


def _input_dims(model) -> dict[str, tuple[int, ...]]:
    inits = {t.name for t in model.graph.initializer}
    return {i.name: tuple(int(d.dim_value) for d in i.type.tensor_type.shape.dim)
            for i in model.graph.input if i.name not in inits}


def shaped_model_id(model_id: str, shapes: Mapping[str, Sequence[int]]) -> str:
    """The model id re-exporting ``model_id`` at input ``shapes`` (``{input name: dims}``).

    Only zoo models re-export: dim 0 becomes ``batch``; for sequence models (``seq`` in the config)
    dim 1 becomes ``seq``; for image models (``image_size``) dims 2 and 3 (equal) become
    ``image_size``. Any other change (channels, hidden width) is an error naming what may change.
    """
    if not shapes:
        return model_id

    scheme, name, kw = parse_model_id(model_id)
    if scheme != "zoo":
        raise XflowError(f"--shape re-exports zoo models only, and {model_id!r} is a {scheme} model; "
                         "export it at the shape you want and pass the .onnx file")
    defaults = zoo.resolve_config(name, **{k: v for k, v in kw.items() if k != "batch"})
    current = _input_dims(zoo.load(name, **kw))
    new = dict(kw)
    for in_name, dims in shapes.items():
        dims = tuple(int(d) for d in dims)
        if in_name not in current:
            raise XflowError(f"{model_id} has no input {in_name!r}; its inputs: "
                             + ", ".join(f"{k} {list(v)}" for k, v in current.items()))
        cur = current[in_name]
        if len(dims) != len(cur):
            raise XflowError(f"--shape {in_name}: {len(dims)} dims given, the input has {len(cur)} ({list(cur)})")
        new["batch"] = dims[0]
        if "seq" in defaults and len(cur) == 3:
            if dims[2] != cur[2]:
                raise XflowError(f"--shape {in_name}: only batch (dim 0) and sequence length (dim 1) can change "
                                 f"for {name}; its hidden width is {cur[2]}")
            new["seq"] = dims[1]
        elif "image_size" in defaults and len(cur) == 4:
            if dims[1] != cur[1] or dims[2] != dims[3]:
                raise XflowError(f"--shape {in_name}: only batch (dim 0) and a square image size (dims 2, 3) "
                                 f"can change for {name}; it has {cur[1]} channels")
            patch = defaults.get("patch")
            if patch and dims[2] % int(patch):
                raise XflowError(f"--shape {in_name}: the image size of {name} must be a multiple of its "
                                 f"patch size {patch}, got {dims[2]}")
            new["image_size"] = dims[2]
        elif dims[1:] != cur[1:]:
            raise XflowError(f"--shape {in_name}: only the batch size (dim 0) of {name} can change")
    query = "&".join(f"{k}={v}" for k, v in sorted(new.items()))
    return f"zoo:{name}?{query}"


def _summary(values: Sequence[float]) -> dict[str, float]:
    from xflow.agents.evaluation import bootstrap_ci

    point, lo, hi = bootstrap_ci(values)
    return {"iqm": point, "lo": lo, "hi": hi}


def _run_search(method: str, graph, cost, agent, *, seed: int, horizon: int, cost_name: str,
                time_budget_s: float, beam_budget: int, max_candidates: int):
    from xflow.agents.search import rl_search

    if method in ("rl", "rl-sample"):
        return rl_search(graph.model, agent, horizon=horizon, cost_model=cost_name, sample=method == "rl-sample",
                         seed=seed)
    if method == "greedy":
        return greedy_search(graph, cost, budget=horizon, time_budget_s=time_budget_s, max_candidates=max_candidates)
    if method == "beam":
        return beam_search(graph, cost, budget=beam_budget, time_budget_s=time_budget_s,
                           max_candidates=max_candidates)
    if method == "random":
        return random_search(graph, cost, n_walks=1, walk_length=horizon, seed=seed, time_budget_s=time_budget_s,
                             max_candidates=max_candidates)
    if method == "taso":
        return taso_search(graph.model, cost, budget=beam_budget, time_budget_s=time_budget_s,
                           max_candidates=max_candidates)
    if method == "tensat":
        return tensat_search(graph.model, cost, time_limit_s=time_budget_s, ilp_time_s=time_budget_s)
    raise XflowError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")


_UNCHANGED = {"measured_speedup": 1.0, "speedup_lo": 1.0, "speedup_hi": 1.0, "verdict": "unchanged"}


def _check_backend(backend: str, measure: bool) -> None:
    """Fail before any search when the measurement backend is unknown or not usable here."""
    if backend not in BACKENDS:
        raise XflowError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if measure and backend == "torch-cuda" and not torch_cuda_available():
        raise DeviceUnavailable("backend 'torch-cuda' needs a CUDA GPU, and torch sees none here; "
                                "use --backend torch or ort")


def measure_finals(original: Any, original_hash: str, finals: Mapping[str, Any], *, threads: int = 1,
                   rounds: int = 20, max_seconds: float | None = None, warmup: int = 3,
                   backend: str = "ort") -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Measured speed-up of every distinct final graph of a search over the original, in one run.

    ``finals`` maps content hash -> ONNX model (the original's hash, if present, is not timed: it is
    ``unchanged``). All graphs and an A/A control (a second session of the original) are timed in
    interleaved rounds by the measurement core on ``backend``
    (:func:`~xflow.runtime.latency.measure_on_backend`): ``ort`` (ORT with every optimization),
    ``torch`` or ``torch-cuda`` (the generated PyTorch module), ``threads`` intra-op threads. Returns ``(per_hash, info)``: per hash
    ``measured_speedup`` (original time / graph time), its 95 % interval ``speedup_lo``/``speedup_hi``
    and ``verdict``; ``info`` holds the backend, the original's median, the noise floor and the run
    conditions.
    """
    _check_backend(backend, True)
    out: dict[str, dict[str, Any]] = {original_hash: dict(_UNCHANGED)}
    labels = {h: f"g{i}" for i, h in enumerate(h for h in finals if h != original_hash)}
    if not labels:
        return out, {}
    models = {"original": original, **{lab: finals[h] for h, lab in labels.items()}}
    meas = measure_on_backend(models, backend, baseline="original", threads=threads, warmup=warmup, rounds=rounds,
                              max_seconds=max_seconds)
    for h, lab in labels.items():
        c = meas.compare(lab)
        out[h] = {"measured_speedup": float(c.speedup), "speedup_lo": float(c.speedup_ci[0]),
                  "speedup_hi": float(c.speedup_ci[1]), "verdict": str(c.verdict)}
    info = {"backend": backend, "original_ms": meas.median_ms("original"), "noise_floor": meas.noise_floor(),
            "threads": threads, "graphs_timed": len(labels), **meas.conditions(), "busy": bool(meas.busy)}
    return out, info


def evaluate_policy(policy: str | Path, model_id: str, *, shapes: Mapping[str, Sequence[int]] | None = None,
                    methods: Sequence[str] = ("rl", "rl-sample", "greedy", "beam", "random"),
                    seeds: int = 5, cost_model: str | None = None, horizon: int | None = None,
                    repeats: int = 20, threads: int = 1, time_budget_s: float = 60.0, beam_budget: int = 30,
                    measure: bool = True, progress: bool = False, backend: str = "ort") -> dict[str, Any]:
    """Every method on ``model_id`` (re-shaped by ``shapes``); see the module docstring.

    ``backend`` is where the final graphs are measured (:func:`measure_finals`); the searches and
    the predicted ratios do not depend on it. Returns ``{"model", "model_id", "policy",
    "cost_model", "policy_cost_model" (the one the policy was trained with), "horizon", "backend", "methods": [row, …],
    "runs": [per-seed row, …], "measurement": {...}}``: one row per method with ``predicted_ratio``
    (IQM for stochastic methods) and its ``predicted_lo/hi``, ``measured_speedup`` with
    ``speedup_lo/hi`` and ``verdict`` (stochastic: IQM of the per-seed speed-ups with a bootstrap
    interval, ``verdict`` the per-seed verdict counts), ``search_time_s``, ``n_rewrites``.
    """
    import torch

    from xflow.nn import GraphActorCritic

    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise XflowError(f"unknown method(s) {', '.join(bad)}; choose from {', '.join(METHODS)}")
    if seeds < 1:
        raise XflowError(f"seeds must be >= 1, got {seeds}")
    _check_backend(backend, measure)
    torch.set_num_threads(1)
    agent, extra = GraphActorCritic.load_with_extra(policy)
    saved = extra.get("args", {})
    trained_cost = saved.get("cost_model", "calibrated")
    cost_name = cost_model or trained_cost
    horizon = int(horizon or saved.get("horizon", 20))
    max_candidates = agent.num_actions - 1
    mid = shaped_model_id(model_id, shapes or {})
    graph = resolve_graph(mid)
    cost = make_cost_model(cost_name)
    orig_hash = graph.content_hash

    runs: list[dict[str, Any]] = []
    finals: dict[str, Any] = {}  # graph hash -> onnx model (distinct final graphs to time)
    plan = [(m, s) for m in methods for s in (range(seeds) if m in STOCHASTIC else [0])]
    it = plan
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(plan, desc=f"searches on {mid}")
    for method, seed in it:
        t0 = time.perf_counter()
        res = _run_search(method, graph, cost, agent, seed=seed, horizon=horizon, cost_name=cost_name,
                          time_budget_s=time_budget_s, beam_budget=beam_budget, max_candidates=max_candidates)
        wall = time.perf_counter() - t0
        g = res.graph
        h = g.content_hash if res.actions else orig_hash
        if h != orig_hash:
            finals.setdefault(h, g.model)
        # every method's ratio under the one cost model (the policy's), whatever the search used
        ratio = float(cost(g)) / float(cost(graph)) if res.actions else 1.0
        runs.append({"method": method, "seed": seed, "predicted_ratio": ratio, "search_time_s": wall,
                     "n_rewrites": len(res.actions), "rules": " ".join(a["rule"] for a in res.actions),
                     "graph": h})
        log.info("%s seed %d on %s: predicted x%.4f, %d rewrites, %.1f s", method, seed, mid, ratio,
                 len(res.actions), wall)

    meas_info: dict[str, Any] = {}
    per_graph: dict[str, dict[str, Any]] = {orig_hash: dict(_UNCHANGED)}
    if measure and finals:
        per_graph, meas_info = measure_finals(graph.model, orig_hash, finals, threads=threads, rounds=repeats,
                                              backend=backend)
        meas_info["repeats"] = repeats
    for r in runs:
        r.update(per_graph.get(r["graph"], {"measured_speedup": None, "speedup_lo": None, "speedup_hi": None,
                                            "verdict": "not measured"}))

    rows = []
    for method in methods:
        rs = [r for r in runs if r["method"] == method]
        pred = _summary([r["predicted_ratio"] for r in rs])
        row: dict[str, Any] = {"method": method, "seeds": len(rs), "stochastic": method in STOCHASTIC,
                               "predicted_ratio": pred["iqm"], "predicted_lo": pred["lo"], "predicted_hi": pred["hi"],
                               "search_time_s": float(np.median([r["search_time_s"] for r in rs])),
                               "n_rewrites": float(np.median([r["n_rewrites"] for r in rs]))}
        sp = [r["measured_speedup"] for r in rs]
        if all(v is not None for v in sp):
            if method in STOCHASTIC:
                s = _summary(sp)
                counts = {v: sum(r["verdict"] == v for r in rs) for v in ("faster", "same", "slower", "unchanged")}
                row.update(measured_speedup=s["iqm"], speedup_lo=s["lo"], speedup_hi=s["hi"],
                           verdict=", ".join(f"{n} {v}" for v, n in counts.items() if n))
            else:
                r0 = rs[0]
                row.update(measured_speedup=r0["measured_speedup"], speedup_lo=r0["speedup_lo"],
                           speedup_hi=r0["speedup_hi"], verdict=r0["verdict"])
        else:
            row.update(measured_speedup=None, speedup_lo=None, speedup_hi=None, verdict="not measured")
        if method not in STOCHASTIC:
            row["rules"] = rs[0]["rules"]
        rows.append(row)
    return {"model": model_id, "model_id": mid, "shapes": {k: list(v) for k, v in (shapes or {}).items()},
            "policy": str(policy), "cost_model": cost_name, "policy_cost_model": trained_cost,
            "horizon": horizon, "backend": backend,
            "methods": rows, "runs": runs,
            "measurement": meas_info}
