"""The sparsification experiment: ``run(config) -> records``, shared by CLI, notebook, sweeps and tests.

A config is a flat dict (defaults in :data:`DEFAULTS`; per-model training defaults in
:data:`MODEL_DEFAULTS`; both, with :func:`resolve` and :func:`load_graph`, live in
:mod:`xflow.sparsify.config`)::

    {"dataset": "cora", "split": "public", "model": "gcn", "method": "unifews",
     "delta_a": 0.5, "delta_w": 1.0, "seed": 0, "epochs": 200}

``method`` is ``unifews`` (the deltas), ``dense`` (deltas forced to 0), ``random``/``dspar``/``ugs``
(baselines at ``target_edge_sparsity``/``target_weight_sparsity``). ``dataset`` is ``cora``,
``citeseer``, ``pubmed`` (Planetoid raw files), ``ogbn-<name>`` (OGB-format folder, see
:func:`xflow.sparsify.datasets.load_ogb_node`) or a synthetic ``sbm:<nodes>:<avg_degree>`` /
``powerlaw:<nodes>:<avg_degree>``. Everything is seeded by ``seed`` (weights, random split, baseline
masks, push randomisation).

``profile`` picks the hyper-parameter set: ``"xflow"`` (default; Kipf & Welling GCN: hidden 16, lr 0.01,
self-loops, masks frozen at mid-training) or ``"reference"`` — the gdmnl/Unifews code
(``config/<data>.json``, ``config/<data>_mb.json``, ``run_fb.py``, ``run_mb.py``, ``archs/``):

* graphs as its data files (:data:`REFERENCE_GRAPHS`): Cora = the largest connected component with a
  self-loop on every node (its ``adj.npz`` stores the whole diagonal as explicit zeros, which
  ``tocoo()`` keeps), weight ``1/(d+1)``, never pruned; CiteSeer = the full graph with the 124
  self-loops of the raw file; raw 0/1 features; ``split="random"`` is class-stratified;
* GCN / GAT(v2): hidden 512, BatchNorm (momentum 0.9), dropout only after hidden activations, Adam
  lr 0.001, weight decay 1e-5, 200 epochs, LR halved on plateau, per-epoch edge masks and
  cumulative weight masks (``schedule="reference"``);
* SGC / APPNP: per-feature push propagation with absolute thresholds over 20 hops
  (``propagation="push"``, :mod:`xflow.sparsify.decoupled`), then a 2-layer MLP (hidden 512) trained
  in mini-batches of 512 at lr 0.01.

Single items can be overridden (``self_loops``, ``schedule``, ``hidden``, ``largest_component``,
``stratify``, ``normalize_features``, ``bn_momentum``, ``propagation``, ``hops``, ``batch_size``).
``lock_eval_nodes=True`` adds the reference code's evaluation-time ``node_lock`` (edges into the
evaluated nodes are never pruned, but not counted): the reference always evaluates this way; we
report both.

Records are long format — one metric per row: ``{"metric": "test_acc", "value": 0.81, ...identity}``.
:func:`to_wide` pivots them to one row per run, :func:`summarize` to mean ± std over seeds.
"""
from __future__ import annotations

import logging
from typing import Any

import torch

from xflow.errors import UnknownName
from xflow.sparsify.baselines import apply_baseline, train_ugs
from xflow.sparsify.config import (DEFAULTS, METHODS, MODEL_DEFAULTS, PROFILES, REFERENCE_DEFAULTS, REFERENCE_GRAPHS,
                                   _model_input, load_graph, resolve)
from xflow.sparsify.decoupled import run_decoupled
from xflow.sparsify.devices import to_device
from xflow.sparsify.models import build_model
from xflow.sparsify.train import train_model

__all__ = ["DEFAULTS", "MODEL_DEFAULTS", "REFERENCE_DEFAULTS", "REFERENCE_GRAPHS", "PROFILES", "METHODS",
           "IDENTITY", "run", "run_trained", "load_graph", "resolve", "to_wide", "summarize"]

log = logging.getLogger(__name__)

#: config keys copied into every record
IDENTITY = ("dataset", "split", "model", "method", "profile", "delta_a", "delta_w", "target_edge_sparsity",
            "target_weight_sparsity", "batch_norm", "hidden", "self_loops", "schedule", "lock_eval_nodes",
            "largest_component", "stratify", "normalize_features", "bn_momentum", "propagation", "hops",
            "batch_size", "seed", "epochs")

#: values of identity keys in records written before the key existed
_IDENTITY_FILL = {"batch_norm": False, "profile": "xflow", "hidden": 0, "self_loops": "True", "schedule": "freeze",
                  "lock_eval_nodes": False, "largest_component": False, "stratify": False,
                  "normalize_features": True, "bn_momentum": 0.1, "propagation": "edge", "hops": 0, "batch_size": 0}


def run_trained(config: dict) -> tuple[list[dict], Any]:
    """Like :func:`run`, but also return the trained model (for timing it afterwards)."""
    r = resolve(config)
    cfg, hp = r["cfg"], r["hp"]
    model_name, method = cfg["model"], cfg["method"]
    if cfg["threads"]:
        torch.set_num_threads(int(cfg["threads"]))
    seed = int(cfg["seed"])
    data, graph = load_graph(cfg["dataset"], cfg["split"], seed, r["self_loops"],
                             largest_component=r["largest_component"], stratify=r["stratify"],
                             normalize_features=r["normalize_features"])
    torch.manual_seed(seed)
    da, dw = (float(cfg["delta_a"]), float(cfg["delta_w"])) if method == "unifews" else (0.0, 0.0)
    epochs, lr, wd = r["epochs"], r["lr"], r["weight_decay"]
    if r["propagation"] == "push":
        if method not in ("unifews", "dense"):
            raise UnknownName(f"method {method!r} is not available with propagation='push' (use 'unifews' or 'dense')")

        metrics, model = run_decoupled(data, graph, model=model_name, delta_a=da, delta_w=dw, hops=r["hops"],
                                       alpha=float(hp.get("alpha", 0.0)) if model_name == "appnp" else 0.0,
                                       hidden=int(hp.get("hidden", 512)), epochs=epochs, lr=lr, weight_decay=wd,
                                       batch_size=r["batch_size"] or 512, seed=seed, device=r["device"],
                                       dense=method == "dense")
    else:
        model = build_model(model_name, data.num_features, int(data.y.max()) + 1, delta_a=da, delta_w=dw, **hp)
        inp = _model_input(data, model_name)
        if r["device"] != "cpu":
            model, inp, graph = to_device(r["device"], model, inp, graph)
        if method in ("random", "dspar"):
            apply_baseline(method, model, graph, float(cfg["target_edge_sparsity"]),
                           float(cfg["target_weight_sparsity"]), seed)
            metrics = train_model(model, inp, graph, epochs=epochs, lr=lr, weight_decay=wd, freeze_at=0)
        elif method == "ugs":
            metrics = train_ugs(model, inp, graph, edge_sparsity=float(cfg["target_edge_sparsity"]),
                                weight_sparsity=float(cfg["target_weight_sparsity"]), epochs=epochs, lr=lr,
                                weight_decay=wd)
        else:
            metrics = train_model(model, inp, graph, epochs=epochs, lr=lr, weight_decay=wd, schedule=r["schedule"],
                                  lock_eval_nodes=bool(cfg["lock_eval_nodes"]))
    ident = {k: cfg[k] for k in IDENTITY}
    ident.update(epochs=epochs, delta_a=da, delta_w=dw, batch_norm=bool(hp.get("batch_norm", False)),
                 lock_eval_nodes=bool(cfg["lock_eval_nodes"]), self_loops=r["self_loops"], schedule=r["schedule"],
                 hidden=int(hp.get("hidden") or 0), largest_component=r["largest_component"],
                 stratify=r["stratify"], normalize_features=r["normalize_features"],
                 bn_momentum=float(hp.get("bn_momentum", 0.1)), propagation=r["propagation"],
                 hops=r["hops"] if model_name in ("sgc", "appnp") else 0, batch_size=r["batch_size"])
    ident["num_nodes"], ident["num_edges"] = int(data.num_nodes), int(data.edge_index.shape[1])
    recs = [{**ident, "metric": k, "value": float(v)} for k, v in metrics.items()]
    return recs, model


def run(config: dict) -> list[dict]:
    """Train and evaluate one (dataset, model, method, deltas, seed); return long-format records."""
    return run_trained(config)[0]


def to_wide(records):
    """Long records (list or DataFrame) → one row per run, one column per metric."""
    import pandas as pd

    df = records if isinstance(records, pd.DataFrame) else pd.DataFrame(list(records))
    for k, v in _IDENTITY_FILL.items():  # records from before the option existed
        df = df.assign(**{k: df[k].fillna(v) if k in df.columns else v})
    if "self_loops" in df.columns:  # older records hold booleans
        df = df.assign(self_loops=df["self_loops"].map(lambda v: v if isinstance(v, str) else str(bool(v))))
    keys = [k for k in IDENTITY if k in df.columns]
    wide = df.pivot_table(index=keys, columns="metric", values="value", aggfunc="first").reset_index()
    wide.columns.name = None
    return wide


def summarize(records, metrics: tuple[str, ...] = ("test_acc", "edge_sparsity", "weight_sparsity",
                                                    "total_sparsity", "macs", "mac_reduction")):
    """Mean and std over seeds for each configuration (columns ``<metric>_mean``, ``<metric>_std``)."""
    wide = to_wide(records)
    metrics = tuple(m for m in metrics if m in wide.columns)
    keys = [k for k in IDENTITY if k in wide.columns and k != "seed"]
    g = wide.groupby(keys, dropna=False)[list(metrics)]
    out = g.mean().add_suffix("_mean").join(g.std(ddof=0).add_suffix("_std"))
    out["n_seeds"] = g.size()
    return out.reset_index()
