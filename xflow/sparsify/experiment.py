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

__all__ = ["DEFAULTS", "MODEL_DEFAULTS", "METHODS", "IDENTITY", "run", "load_graph", "to_wide", "summarize"]

log = logging.getLogger(__name__)

METHODS = ("unifews", "dense") + BASELINES

DEFAULTS: dict[str, Any] = {
    "dataset": "cora", "split": "public", "model": "gcn", "method": "unifews",
    "delta_a": 0.0, "delta_w": 0.0, "target_edge_sparsity": 0.0, "target_weight_sparsity": 0.0,
    "seed": 0, "epochs": None, "lr": None, "weight_decay": None, "threads": None, "batch_norm": None,
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

#: config keys copied into every record
IDENTITY = ("dataset", "split", "model", "method", "delta_a", "delta_w", "target_edge_sparsity",
            "target_weight_sparsity", "batch_norm", "seed", "epochs")


@functools.lru_cache(maxsize=8)
def _load(dataset: str, split: str, seed: int):
    if ":" in dataset:
        from xflow.sparsify.synthetic import make_synthetic

        kind, n, deg = (dataset.split(":") + ["10"])[:3]
        data = make_synthetic(kind, int(float(n)), float(deg), seed=seed)
    else:
        from xflow.sparsify.datasets import load_planetoid

        data = load_planetoid(dataset, split=split, seed=seed)
    return data, prepare_graph(data.edge_index, data.num_nodes)


def load_graph(dataset: str, split: str = "public", seed: int = 0):
    """``(data, graph)`` for a dataset name (cached per process; the public split ignores ``seed``)."""
    return _load(dataset.lower(), split, 0 if split == "public" and ":" not in dataset else int(seed))


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
    md = MODEL_DEFAULTS[model_name]
    epochs = int(cfg["epochs"] or md["epochs"])
    lr = float(cfg["lr"] or md["lr"])
    wd = float(md["weight_decay"] if cfg["weight_decay"] is None else cfg["weight_decay"])
    if cfg["threads"]:
        torch.set_num_threads(int(cfg["threads"]))
    seed = int(cfg["seed"])
    data, graph = load_graph(cfg["dataset"], cfg["split"], seed)
    torch.manual_seed(seed)
    da, dw = (float(cfg["delta_a"]), float(cfg["delta_w"])) if method == "unifews" else (0.0, 0.0)
    hp = dict(md["hp"])
    if cfg["batch_norm"] is not None:
        if model_name not in ("gcn", "sgc", "appnp"):
            raise UnknownName(f"batch_norm is an option of gcn, sgc and appnp, not {model_name!r}")
        hp["batch_norm"] = bool(cfg["batch_norm"])
    model = build_model(model_name, data.num_features, int(data.y.max()) + 1, delta_a=da, delta_w=dw, **hp)
    if method in ("random", "dspar"):
        apply_baseline(method, model, graph, float(cfg["target_edge_sparsity"]), float(cfg["target_weight_sparsity"]), seed)
        metrics = train_model(model, data, graph, epochs=epochs, lr=lr, weight_decay=wd, freeze_at=0)
    elif method == "ugs":
        metrics = train_ugs(model, data, graph, edge_sparsity=float(cfg["target_edge_sparsity"]),
                            weight_sparsity=float(cfg["target_weight_sparsity"]), epochs=epochs, lr=lr, weight_decay=wd)
    else:
        metrics = train_model(model, data, graph, epochs=epochs, lr=lr, weight_decay=wd)
    ident = {k: cfg[k] for k in IDENTITY}
    ident.update(epochs=epochs, delta_a=da, delta_w=dw, batch_norm=bool(cfg["batch_norm"]))
    ident["num_nodes"], ident["num_edges"] = int(data.num_nodes), int(data.edge_index.shape[1])
    return [{**ident, "metric": k, "value": float(v)} for k, v in metrics.items()]


def to_wide(records):
    """Long records (list or DataFrame) → one row per run, one column per metric."""
    import pandas as pd

    df = records if isinstance(records, pd.DataFrame) else pd.DataFrame(list(records))
    keys = [k for k in IDENTITY if k in df.columns]
    if "batch_norm" in df.columns:  # records from before the option existed
        df = df.assign(batch_norm=df["batch_norm"].fillna(False).astype(bool))
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
