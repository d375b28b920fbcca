"""The sparsification experiment: ``run(config) -> records``, shared by CLI, notebook, sweeps and tests.

A config is a flat dict (defaults in :data:`DEFAULTS`; per-model training defaults in
:data:`MODEL_DEFAULTS`)::

    {"dataset": "cora", "split": "public", "model": "gcn", "method": "unifews",
     "delta_a": 0.5, "delta_w": 1.0, "seed": 0, "epochs": 200}

``method`` is ``unifews`` (the deltas), ``dense`` (deltas forced to 0), ``random``/``dspar``/``ugs``
(baselines at ``target_edge_sparsity``/``target_weight_sparsity``). ``batch_norm`` (gcn/sgc/appnp, default off) normalises hidden
activations / propagated features, which softens the degree-dependent shrinkage that edge pruning
leaves (the Unifews reference code uses BatchNorm). ``dataset`` is ``cora``, ``citeseer`` or a
synthetic ``sbm:<nodes>:<avg_degree>`` / ``powerlaw:<nodes>:<avg_degree>``. Everything is seeded by
``seed`` (weights, random split, baseline masks).

``profile`` picks the hyper-parameter set: ``"xflow"`` (default; Kipf & Welling GCN: hidden 16, lr 0.01,
self-loops, masks frozen at mid-training) or ``"reference"`` — the settings of the gdmnl/Unifews code
(``config/cora.json``, ``run_fb.py``): hidden 512, BatchNorm, dropout only after hidden activations,
lr 0.001, weight decay 1e-5, 200 epochs, LR halved on plateau, ``Â = D^{-1/2} A D^{-1/2}`` without
self-loops, per-epoch edge masks and cumulative weight masks (``schedule="reference"``). Use it with
``split="random"`` (the paper's 50/25/25 setting). ``self_loops``, ``schedule`` and ``hidden`` override
single items of the profile. ``lock_eval_nodes=True`` adds the reference code's evaluation-time
``node_lock`` (edges into the evaluated nodes are never pruned, but not counted) — an artefact,
reported separately.

Records are long format — one metric per row: ``{"metric": "test_acc", "value": 0.81, ...identity}``.
:func:`to_wide` pivots them to one row per run, :func:`summarize` to mean ± std over seeds.
"""
from __future__ import annotations

import functools
import logging
from typing import Any

import torch

from xflow.errors import UnknownName
from xflow.sparsify.baselines import BASELINES, apply_baseline, train_ugs
from xflow.sparsify.layers import prepare_graph
from xflow.sparsify.models import MODELS, build_model
from xflow.sparsify.train import train_model

__all__ = ["DEFAULTS", "MODEL_DEFAULTS", "REFERENCE_DEFAULTS", "PROFILES", "METHODS", "IDENTITY", "run", "load_graph", "to_wide", "summarize"]

log = logging.getLogger(__name__)

METHODS = ("unifews", "dense") + BASELINES

DEFAULTS: dict[str, Any] = {
    "dataset": "cora", "split": "public", "model": "gcn", "method": "unifews",
    "delta_a": 0.0, "delta_w": 0.0, "target_edge_sparsity": 0.0, "target_weight_sparsity": 0.0,
    "seed": 0, "epochs": None, "lr": None, "weight_decay": None, "threads": None, "batch_norm": None,
    "profile": "xflow", "self_loops": None, "schedule": None, "hidden": None,
    "lock_eval_nodes": False,
}

#: training hyper-parameters (lr, weight decay, epochs) and model hyper-parameters per model
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "gcn": {"lr": 0.01, "weight_decay": 5e-4, "epochs": 200, "hp": {"hidden": 16}},
    "gcn_pyg": {"lr": 0.01, "weight_decay": 5e-4, "epochs": 200, "hp": {"hidden": 16}},
    "gat": {"lr": 0.005, "weight_decay": 5e-4, "epochs": 200, "hp": {"hidden": 8, "heads": 8}},
    "gat_pyg": {"lr": 0.005, "weight_decay": 5e-4, "epochs": 200, "hp": {"hidden": 8, "heads": 8}},
    "sgc": {"lr": 0.2, "weight_decay": 5e-5, "epochs": 100, "hp": {"K": 2}},
    "appnp": {"lr": 0.01, "weight_decay": 5e-4, "epochs": 200, "hp": {"hidden": 64, "K": 10, "alpha": 0.1}},
}

#: the gdmnl/Unifews reference settings (``profile="reference"``), per model; unlisted models keep
#: their xflow defaults. ``graph``: self-loops in Â; ``schedule``: see :func:`xflow.sparsify.train.train_model`.
REFERENCE_DEFAULTS: dict[str, dict[str, Any]] = {
    "gcn": {"lr": 0.001, "weight_decay": 1e-5, "epochs": 200, "self_loops": False, "schedule": "reference",
            "hp": {"hidden": 512, "batch_norm": True, "input_dropout": False}},
    "sgc": {"lr": 0.01, "weight_decay": 1e-5, "epochs": 200, "self_loops": True, "schedule": "reference",
            "hp": {"K": 2, "batch_norm": True, "hidden": 512}},
}

PROFILES = ("xflow", "reference")

#: config keys copied into every record
IDENTITY = ("dataset", "split", "model", "method", "profile", "delta_a", "delta_w", "target_edge_sparsity",
            "target_weight_sparsity", "batch_norm", "hidden", "self_loops", "schedule", "lock_eval_nodes",
            "seed", "epochs")

#: values of identity keys in records written before the key existed
_IDENTITY_FILL = {"batch_norm": False, "profile": "xflow", "hidden": 0, "self_loops": True, "schedule": "freeze",
                  "lock_eval_nodes": False}


@functools.lru_cache(maxsize=8)
def _load(dataset: str, split: str, seed: int, self_loops: bool = True):
    if ":" in dataset:
        from xflow.sparsify.synthetic import make_synthetic

        kind, n, deg = (dataset.split(":") + ["10"])[:3]
        data = make_synthetic(kind, int(float(n)), float(deg), seed=seed)
    else:
        from xflow.sparsify.datasets import load_planetoid

        data = load_planetoid(dataset, split=split, seed=seed)
    return data, prepare_graph(data.edge_index, data.num_nodes, self_loops)


def load_graph(dataset: str, split: str = "public", seed: int = 0, self_loops: bool = True):
    """``(data, graph)`` for a dataset name (cached per process; the public split ignores ``seed``)."""
    return _load(dataset.lower(), split, 0 if split == "public" and ":" not in dataset else int(seed),
                 bool(self_loops))


def run(config: dict) -> list[dict]:
    """Train and evaluate one (dataset, model, method, deltas, seed); return long-format records."""
    unknown = set(config) - set(DEFAULTS)
    if unknown:
        raise UnknownName(f"unknown config keys {sorted(unknown)}; allowed: {sorted(DEFAULTS)}")
    cfg = {**DEFAULTS, **config}
    model_name, method = cfg["model"], cfg["method"]
    if model_name not in MODELS:
        raise UnknownName(f"unknown model {model_name!r}; choose one of {sorted(MODELS)}")
    if method not in METHODS:
        raise UnknownName(f"unknown method {method!r}; choose one of {list(METHODS)}")
    if cfg["profile"] not in PROFILES:
        raise UnknownName(f"unknown profile {cfg['profile']!r}; choose one of {list(PROFILES)}")
    md = MODEL_DEFAULTS[model_name]
    if cfg["profile"] == "reference" and model_name in REFERENCE_DEFAULTS:
        md = {**md, **REFERENCE_DEFAULTS[model_name], "hp": {**md["hp"], **REFERENCE_DEFAULTS[model_name]["hp"]}}
    self_loops = bool(md.get("self_loops", True) if cfg["self_loops"] is None else cfg["self_loops"])
    schedule = str(cfg["schedule"] or md.get("schedule", "freeze"))
    if schedule == "reference" and method in ("random", "dspar", "ugs"):
        schedule = "freeze"  # baselines impose fixed masks; keep their own protocol
    epochs = int(cfg["epochs"] or md["epochs"])
    lr = float(cfg["lr"] or md["lr"])
    wd = float(md["weight_decay"] if cfg["weight_decay"] is None else cfg["weight_decay"])
    if cfg["threads"]:
        torch.set_num_threads(int(cfg["threads"]))
    seed = int(cfg["seed"])
    data, graph = load_graph(cfg["dataset"], cfg["split"], seed, self_loops)
    torch.manual_seed(seed)
    da, dw = (float(cfg["delta_a"]), float(cfg["delta_w"])) if method == "unifews" else (0.0, 0.0)
    hp = dict(md["hp"])
    if cfg["batch_norm"] is not None:
        if model_name not in ("gcn", "sgc", "appnp"):
            raise UnknownName(f"batch_norm is an option of gcn, sgc and appnp, not {model_name!r}")
        hp["batch_norm"] = bool(cfg["batch_norm"])
    if cfg["hidden"] is not None:
        if "hidden" not in hp and model_name != "sgc":
            raise UnknownName(f"hidden is not a hyper-parameter of {model_name!r}")
        hp["hidden"] = int(cfg["hidden"])
    if model_name == "sgc" and "hidden" in hp and cfg["profile"] == "reference":
        hp["dropout"] = 0.5
    model = build_model(model_name, data.num_features, int(data.y.max()) + 1, delta_a=da, delta_w=dw, **hp)
    if method in ("random", "dspar"):
        apply_baseline(method, model, graph, float(cfg["target_edge_sparsity"]), float(cfg["target_weight_sparsity"]), seed)
        metrics = train_model(model, data, graph, epochs=epochs, lr=lr, weight_decay=wd, freeze_at=0)
    elif method == "ugs":
        metrics = train_ugs(model, data, graph, edge_sparsity=float(cfg["target_edge_sparsity"]),
                            weight_sparsity=float(cfg["target_weight_sparsity"]), epochs=epochs, lr=lr, weight_decay=wd)
    else:
        metrics = train_model(model, data, graph, epochs=epochs, lr=lr, weight_decay=wd, schedule=schedule,
                              lock_eval_nodes=bool(cfg["lock_eval_nodes"]))
    ident = {k: cfg[k] for k in IDENTITY}
    ident.update(epochs=epochs, delta_a=da, delta_w=dw, batch_norm=bool(hp.get("batch_norm", False)))
    ident.update(lock_eval_nodes=bool(cfg["lock_eval_nodes"]), self_loops=self_loops, schedule=schedule,
                 hidden=int(hp.get("hidden") or 0))
    ident["num_nodes"], ident["num_edges"] = int(data.num_nodes), int(data.edge_index.shape[1])
    return [{**ident, "metric": k, "value": float(v)} for k, v in metrics.items()]


def to_wide(records):
    """Long records (list or DataFrame) → one row per run, one column per metric."""
    import pandas as pd

    df = records if isinstance(records, pd.DataFrame) else pd.DataFrame(list(records))
    keys = [k for k in IDENTITY if k in df.columns]
    for k, v in _IDENTITY_FILL.items():  # records from before the option existed
        df = df.assign(**{k: df[k].fillna(v) if k in df.columns else v})
    wide = df.pivot_table(index=keys, columns="metric", values="value", aggfunc="first").reset_index()
    wide.columns.name = None
    return wide


def summarize(records, metrics: tuple[str, ...] = ("test_acc", "edge_sparsity", "weight_sparsity",
                                                    "total_sparsity", "macs", "mac_reduction", "infer_time_s")):
    """Mean and std over seeds for each configuration (columns ``<metric>_mean``, ``<metric>_std``)."""
    wide = to_wide(records)
    keys = [k for k in IDENTITY if k in wide.columns and k != "seed"]
    g = wide.groupby(keys, dropna=False)[list(metrics)]
    out = g.mean().add_suffix("_mean").join(g.std(ddof=0).add_suffix("_std"))
    out["n_seeds"] = g.size()
    return out.reset_index()
