"""The sparsification experiment: ``run(config) -> records``, shared by CLI, notebook, sweeps and tests.

A config is a flat dict (defaults in :data:`DEFAULTS`; per-model training defaults in
:data:`MODEL_DEFAULTS`)::

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

import functools
import logging
from typing import Any

import torch

from xflow.errors import UnknownName
from xflow.sparsify.baselines import BASELINES, apply_baseline, train_ugs
from xflow.sparsify.layers import prepare_graph
from xflow.sparsify.models import MODELS, build_model
from xflow.sparsify.train import train_model

__all__ = ["DEFAULTS", "MODEL_DEFAULTS", "REFERENCE_DEFAULTS", "REFERENCE_GRAPHS", "PROFILES", "METHODS",
           "IDENTITY", "run", "run_trained", "load_graph", "resolve", "to_wide", "summarize"]

log = logging.getLogger(__name__)

METHODS = ("unifews", "dense") + BASELINES

DEFAULTS: dict[str, Any] = {
    "dataset": "cora", "split": "public", "model": "gcn", "method": "unifews",
    "delta_a": 0.0, "delta_w": 0.0, "target_edge_sparsity": 0.0, "target_weight_sparsity": 0.0,
    "seed": 0, "epochs": None, "lr": None, "weight_decay": None, "threads": None, "batch_norm": None,
    "profile": "xflow", "self_loops": None, "schedule": None, "hidden": None,
    "lock_eval_nodes": False, "largest_component": None, "stratify": None, "normalize_features": None,
    "bn_momentum": None, "propagation": None, "hops": None, "batch_size": None, "device": None,
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
#: their xflow defaults. ``schedule``: see :func:`xflow.sparsify.train.train_model`;
#: ``propagation="push"``: :mod:`xflow.sparsify.decoupled`.
_ITERATIVE_REF = {"lr": 0.001, "weight_decay": 1e-5, "epochs": 200, "schedule": "reference"}
REFERENCE_DEFAULTS: dict[str, dict[str, Any]] = {
    "gcn": {**_ITERATIVE_REF, "hp": {"hidden": 512, "batch_norm": True, "input_dropout": False, "bn_momentum": 0.9}},
    "gat": {**_ITERATIVE_REF, "hp": {"hidden": 512, "heads": 8, "version": 2, "batch_norm": True,
                                     "input_dropout": False, "bn_momentum": 0.9, "dropout": 0.5}},
    "sgc": {"lr": 0.01, "weight_decay": 1e-5, "epochs": 200, "propagation": "push", "hops": 20, "batch_size": 512,
            "hp": {"hidden": 512}},
    "appnp": {"lr": 0.01, "weight_decay": 1e-5, "epochs": 200, "propagation": "push", "hops": 20, "batch_size": 512,
              "hp": {"hidden": 512, "alpha": 0.1}},
}

#: how the reference code's data files shape each graph (see the module docstring and docs/sparsify.md):
#: Cora's ``adj.npz`` = largest component + the whole diagonal as explicit zeros (2,485 nodes, 12,623
#: entries); CiteSeer = all 3,327 nodes with the raw file's 124 self-loops (9,228 entries, Table II);
#: PubMed = 88,648 entries, no self-loops added; OGB (``DataProcess_OGB``: ``setdiag(0)`` +
#: ``eliminate_zeros``, isolated nodes dropped) = no self-loops.
REFERENCE_GRAPHS: dict[str, dict[str, Any]] = {
    "cora": {"largest_component": True, "self_loops": True},
    "citeseer": {"largest_component": False, "self_loops": "raw"},
    "pubmed": {"largest_component": False, "self_loops": "raw"},
    "ogbn": {"largest_component": False, "self_loops": False},
    "synthetic": {"largest_component": False, "self_loops": True},
}

PROFILES = ("xflow", "reference")

#: config keys copied into every record
IDENTITY = ("dataset", "split", "model", "method", "profile", "delta_a", "delta_w", "target_edge_sparsity",
            "target_weight_sparsity", "batch_norm", "hidden", "self_loops", "schedule", "lock_eval_nodes",
            "largest_component", "stratify", "normalize_features", "bn_momentum", "propagation", "hops",
            "batch_size", "seed", "epochs")

#: values of identity keys in records written before the key existed
_IDENTITY_FILL = {"batch_norm": False, "profile": "xflow", "hidden": 0, "self_loops": "True", "schedule": "freeze",
                  "lock_eval_nodes": False, "largest_component": False, "stratify": False,
                  "normalize_features": True, "bn_momentum": 0.1, "propagation": "edge", "hops": 0, "batch_size": 0}


def _graph_kind(dataset: str) -> str:
    d = dataset.lower()
    if ":" in d:
        return "synthetic"
    if d.startswith("ogbn"):
        return "ogbn"
    return d


@functools.lru_cache(maxsize=8)
def _load(dataset: str, split: str, seed: int, self_loops: str, largest_component: bool, stratify: bool,
          normalize_features: bool):
    if ":" in dataset:
        from xflow.sparsify.synthetic import make_synthetic

        kind, n, deg = (dataset.split(":") + ["10"])[:3]
        data = make_synthetic(kind, int(float(n)), float(deg), seed=seed)
    else:
        from xflow.sparsify.datasets import load_dataset

        data = load_dataset(dataset, split=split, seed=seed, normalize_features=normalize_features,
                            largest_component=largest_component, stratify=stratify)
    if self_loops == "raw":
        loops: Any = getattr(data, "raw_self_loops", torch.zeros(data.num_nodes, dtype=torch.bool))
    else:
        loops = self_loops == "True"
    return data, prepare_graph(data.edge_index, data.num_nodes, loops)


def _loops_key(v: Any) -> str:
    if isinstance(v, str):
        if v.lower() in ("raw", "true", "false"):
            return {"raw": "raw", "true": "True", "false": "False"}[v.lower()]
        raise UnknownName(f"self_loops must be True, False or 'raw', got {v!r}")
    return "True" if bool(v) else "False"


def load_graph(dataset: str, split: str = "public", seed: int = 0, self_loops: Any = True, *,
               largest_component: bool = False, stratify: bool = False, normalize_features: bool = True):
    """``(data, graph)`` for a dataset name (cached per process; the public split ignores ``seed``).

    ``self_loops``: ``True`` (every node), ``False`` (none) or ``"raw"`` (the raw file's self-loops).
    """
    public = split == "public" and ":" not in dataset
    return _load(dataset.lower(), split, 0 if public else int(seed), _loops_key(self_loops),
                 bool(largest_component), bool(stratify), bool(normalize_features))


def resolve(config: dict) -> dict[str, Any]:
    """The fully resolved settings of a config: profile defaults filled in, values validated.

    Returns a dict with ``cfg`` (the config with defaults), ``md`` (model defaults with the profile
    applied), ``hp`` (model hyper-parameters) and the resolved graph / training settings.
    """
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
    ref = cfg["profile"] == "reference"
    md = MODEL_DEFAULTS[model_name]
    if ref and model_name in REFERENCE_DEFAULTS:
        md = {**md, **REFERENCE_DEFAULTS[model_name], "hp": {**md["hp"], **REFERENCE_DEFAULTS[model_name]["hp"]}}
    gref = REFERENCE_GRAPHS.get(_graph_kind(cfg["dataset"]), REFERENCE_GRAPHS["synthetic"]) if ref else {}

    def pick(key, profile_value, xflow_value):
        return cfg[key] if cfg[key] is not None else (profile_value if ref else xflow_value)

    out: dict[str, Any] = {"cfg": cfg, "md": md, "ref": ref}
    out["self_loops"] = _loops_key(pick("self_loops", gref.get("self_loops", True), True))
    out["largest_component"] = bool(pick("largest_component", gref.get("largest_component", False), False))
    out["stratify"] = bool(pick("stratify", True, False))
    out["normalize_features"] = bool(pick("normalize_features", False, True))
    prop = cfg["propagation"] or md.get("propagation", "edge")
    if prop not in ("edge", "push"):
        raise UnknownName(f"unknown propagation {prop!r}; choose 'edge' or 'push'")
    if prop == "push" and model_name not in ("sgc", "appnp"):
        raise UnknownName(f"propagation='push' is for the decoupled models sgc and appnp, not {model_name!r}")
    out["propagation"] = prop
    schedule = str(cfg["schedule"] or md.get("schedule", "freeze"))
    if schedule == "reference" and method in ("random", "dspar", "ugs"):
        schedule = "freeze"  # baselines impose fixed masks; keep their own protocol
    out["schedule"] = "minibatch" if prop == "push" else schedule
    out["epochs"] = int(cfg["epochs"] or md["epochs"])
    out["lr"] = float(cfg["lr"] or md["lr"])
    out["weight_decay"] = float(md["weight_decay"] if cfg["weight_decay"] is None else cfg["weight_decay"])
    out["hops"] = int(cfg["hops"] or md.get("hops") or md["hp"].get("K", 0))
    out["batch_size"] = int(cfg["batch_size"] or md.get("batch_size") or 0)
    hp = dict(md["hp"])
    if cfg["batch_norm"] is not None:
        if model_name not in ("gcn", "sgc", "appnp", "gat"):
            raise UnknownName(f"batch_norm is an option of gcn, gat, sgc and appnp, not {model_name!r}")
        hp["batch_norm"] = bool(cfg["batch_norm"])
    if cfg["hidden"] is not None:
        if "hidden" not in hp and model_name != "sgc":
            raise UnknownName(f"hidden is not a hyper-parameter of {model_name!r}")
        hp["hidden"] = int(cfg["hidden"])
    if cfg["bn_momentum"] is not None:
        if model_name not in ("gcn", "gat"):
            raise UnknownName(f"bn_momentum is an option of gcn and gat, not {model_name!r}")
        hp["bn_momentum"] = float(cfg["bn_momentum"])
    if model_name == "sgc" and "hidden" in hp and ref and prop == "edge":
        hp["dropout"] = 0.5
    if prop == "edge" and model_name in ("sgc", "appnp") and cfg["hops"] is not None:
        hp["K"] = out["hops"]
    out["hp"] = hp
    from xflow.sparsify.devices import resolve_device

    out["device"] = str(resolve_device(cfg["device"]))
    return out


def _model_input(data, model_name: str):
    """``data`` with its features as a CSR tensor when they are sparse (Cora's raw bag of words:
    1.3 % non-zero) and the model's first layer is a pruned linear layer: same results, ~5× less
    work per epoch. Decoupled and PyG models get dense features."""
    x = data.x
    if model_name not in ("gcn", "gat") or x.layout != torch.strided or x.dim() != 2 or x.numel() == 0:
        return data
    density = float((x != 0).sum()) / x.numel()
    if density > 0.1:
        return data
    out = data.clone()
    out.x = x.to_sparse_csr()
    return out


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
        from xflow.sparsify.decoupled import run_decoupled

        metrics, model = run_decoupled(data, graph, model=model_name, delta_a=da, delta_w=dw, hops=r["hops"],
                                       alpha=float(hp.get("alpha", 0.0)) if model_name == "appnp" else 0.0,
                                       hidden=int(hp.get("hidden", 512)), epochs=epochs, lr=lr, weight_decay=wd,
                                       batch_size=r["batch_size"] or 512, seed=seed, device=r["device"],
                                       dense=method == "dense")
    else:
        model = build_model(model_name, data.num_features, int(data.y.max()) + 1, delta_a=da, delta_w=dw, **hp)
        inp = _model_input(data, model_name)
        if r["device"] != "cpu":
            from xflow.sparsify.devices import to_device

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
