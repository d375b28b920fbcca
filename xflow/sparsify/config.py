"""A sparsification experiment's settings: defaults per model and profile, validation, the graphs.

:func:`resolve` fills a flat config (see :mod:`xflow.sparsify.experiment`) with the defaults of its
model and ``profile`` (``"xflow"`` or ``"reference"``: the gdmnl/Unifews settings) and validates it;
:func:`load_graph` loads a dataset the way the resolved settings say (cached per process). They sit
below the experiment (an app module) so that the timing and reproduction modules can use them too.
"""
from __future__ import annotations

import functools
from typing import Any

import torch

from xflow.errors import UnknownName
from xflow.sparsify.baselines import BASELINES
from xflow.sparsify.datasets import load_dataset
from xflow.sparsify.devices import resolve_device
from xflow.sparsify.layers import prepare_graph
from xflow.sparsify.models import MODELS
from xflow.sparsify.synthetic import make_synthetic

__all__ = ["DEFAULTS", "MODEL_DEFAULTS", "REFERENCE_DEFAULTS", "REFERENCE_GRAPHS", "PROFILES", "METHODS",
           "load_graph", "resolve"]

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
        kind, n, deg = (dataset.split(":") + ["10"])[:3]
        data = make_synthetic(kind, int(float(n)), float(deg), seed=seed)
    else:
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
