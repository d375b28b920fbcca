"""Node-classification graphs for the sparsification experiments: Planetoid (Cora, CiteSeer, PubMed)
and OGB-format folders (``ogbn-*``), with splits.

The raw Planetoid files (``ind.<name>.{x,tx,allx,y,ty,ally,graph,test.index}``) are looked up in
:func:`xflow.paths.data_dirs` under ``Planetoid/<Name>/raw`` (``$XFLOW_DATA``, ``<repo>/data``,
``<repo>/../shared/data``). Those folders may be read-only, so the raw files are symlinked into
``<cache>/datasets/Planetoid/<Name>/raw`` and PyG writes ``processed/`` there. When no copy is found
PyG's own download is tried (into the cache); when that fails too, :class:`~xflow.errors.DatasetNotFound`
names the files and where to put them.

Splits
------
* ``public``: the standard Planetoid split (20 labels per class, 500 val, 1000 test).
* ``random``: a seeded random 50/25/25 train/val/test node split (the Unifews paper's setting);
  with ``stratify=True`` it is class-stratified with ``int(0.5 n)`` / ``int(0.25 n)`` training /
  validation nodes, as the reference code's ``split_stratify`` (``utils/data_processor.py``).

``largest_component=True`` keeps the largest connected component (PyG's
``LargestConnectedComponents``): for Cora this is exactly the reference's ``data/cora`` graph
(2,485 nodes, 5,069 undirected edges, same node order and labels; checked against its
``adj.npz``/``labels.npz``). ``normalize_features=False`` keeps the raw 0/1 bag-of-words features
(the reference's iterative models read ``feats.npy`` unnormalised).

OGB format (:func:`load_ogb_node`): ``<data dir>/<name>/`` (``ogbn-arxiv`` or ``ogbn_arxiv``) holding
``raw/edge.csv.gz``, ``raw/node-feat.csv.gz``, ``raw/node-label.csv.gz`` and
``split/<kind>/{train,valid,test}.csv.gz`` — the layout the ``ogb`` package downloads. These files
cannot be downloaded here; a missing file raises :class:`~xflow.errors.DatasetNotFound` naming it.

STATS

======== ======= ======== ========== ========
Name     #nodes  #edges   #features  #classes
======== ======= ======== ========== ========
Cora     2,708   10,556   1,433      7
CiteSeer 3,327   9,104    3,703      6
PubMed   19,717  88,648   500        3
======== ======= ======== ========== ========

(Cora's largest component: 2,485 nodes, 10,138 directed edges.)
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from xflow import paths
from xflow.errors import DatasetNotFound, UnknownName
from xflow.safeio import file_lock, read_checked_json, sha256_file, write_checked_json

__all__ = ["PLANETOID_NAMES", "raw_file_names", "find_planetoid_raw", "load_planetoid", "random_split",
           "stratified_split", "keep_largest_component", "raw_self_loop_nodes", "load_ogb_node", "OGB_FILES", "find_ogb_dir", "is_ogb_name",
           "load_dataset"]

log = logging.getLogger(__name__)

PLANETOID_NAMES = {"cora": "Cora", "citeseer": "CiteSeer", "pubmed": "PubMed"}
_SUFFIXES = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")


def raw_file_names(name: str) -> list[str]:
    """The eight raw Planetoid files PyG needs for ``name`` (e.g. ``ind.cora.x``)."""
    return [f"ind.{_canonical(name).lower()}.{s}" for s in _SUFFIXES]


def _canonical(name: str) -> str:
    key = name.lower()
    if key not in PLANETOID_NAMES:
        raise UnknownName(f"unknown Planetoid dataset {name!r}; choose one of {sorted(PLANETOID_NAMES)}")
    return PLANETOID_NAMES[key]


def find_planetoid_raw(name: str) -> Path | None:
    """First ``<data dir>/Planetoid/<Name>/raw`` holding all raw files, or ``None``."""
    canon = _canonical(name)
    for d in paths.data_dirs():
        raw = d / "Planetoid" / canon / "raw"
        if raw.is_dir() and all((raw / f).exists() for f in raw_file_names(name)):
            return raw
    return None


def _stage_raw(src_raw: Path, root: Path, canon: str) -> None:
    """Symlink (or copy) the raw files into the writable ``root/<Name>/raw``.

    The cache outlives checkouts: a link left by a checkout that has since moved or been deleted
    dangles, so a missing *or dangling* entry is replaced, atomically (a temporary link renamed
    over it), so concurrent loaders never see a half-staged file.
    """
    import shutil

    dst = root / canon / "raw"
    dst.mkdir(parents=True, exist_ok=True)
    for f in raw_file_names(canon):
        target = dst / f
        if target.exists():  # follows links: a live link or a real copy
            continue
        if target.is_symlink():
            log.warning("cached raw file %s points to %s, which is gone; re-linking it to %s",
                        target, os.readlink(target), src_raw / f)
        tmp = dst / f".{f}.{os.getpid()}.tmp"
        tmp.unlink(missing_ok=True)
        try:
            os.symlink((src_raw / f).resolve(), tmp)
        except OSError:  # filesystems without symlinks
            shutil.copyfile(src_raw / f, tmp)
        os.replace(tmp, target)


def load_planetoid(name: str, *, split: str = "public", seed: int = 0, download: bool = True,
                   normalize_features: bool = True, largest_component: bool = False, stratify: bool = False):
    """Load Cora/CiteSeer/PubMed as a PyG ``Data`` with ``train_mask``/``val_mask``/``test_mask``.

    Args:
        name: ``'cora'``, ``'citeseer'`` or ``'pubmed'`` (case-insensitive).
        split: ``'public'`` (standard Planetoid split) or ``'random'`` (seeded 50/25/25).
        seed: seed of the random split (ignored for ``'public'``).
        download: try PyG's download when no local copy exists.
        normalize_features: row-normalise the bag-of-words features (PyG ``NormalizeFeatures``).
        largest_component: keep only the largest connected component (reference-code graphs).
        stratify: make the random split class-stratified (reference ``split_stratify``).

    Raises:
        DatasetNotFound: no local copy and the download failed (or was disabled).
        UnknownName: unsupported dataset or split name.
    """
    from torch_geometric.datasets import Planetoid
    from torch_geometric.transforms import NormalizeFeatures

    canon = _canonical(name)
    if split not in ("public", "random"):
        raise UnknownName(f"unknown split {split!r}; choose 'public' or 'random'")
    root = paths.cache_dir("datasets", "Planetoid")
    cached_raw = root / canon / "raw"
    src = find_planetoid_raw(name)
    if src is not None:
        _stage_raw(src, root, canon)
    elif not all((cached_raw / f).exists() for f in raw_file_names(name)):
        if not download:
            raise DatasetNotFound(_missing_message(canon, "download disabled"))
    transform = NormalizeFeatures() if normalize_features else None

    with file_lock(root / canon):  # one process builds processed/ at a time
        ds = _open_planetoid(Planetoid, root, canon, transform)
    data = ds[0]
    data.name = canon
    data.raw_self_loops = raw_self_loop_nodes(cached_raw / f"ind.{canon.lower()}.graph", data.num_nodes)
    if largest_component:
        data = keep_largest_component(data)
    if split == "random":
        data = stratified_split(data, seed=seed) if stratify else random_split(data, seed=seed)
    return data


_CHECK_FILE = ".xflow-check.json"


def _processed_digests(processed: Path) -> dict[str, str]:
    return {p.name: sha256_file(p) for p in sorted(processed.glob("*.pt"))}


def _processed_ok(processed: Path) -> bool | None:
    """``True``/``False`` when ``processed/`` matches / fails its recorded content check,
    ``None`` when there is nothing to check (no folder, or built before checks existed)."""
    if not processed.is_dir():
        return None
    check = processed / _CHECK_FILE
    if not check.exists():
        return None
    want = read_checked_json(check)
    return want is not None and want == _processed_digests(processed)


def _open_planetoid(planetoid_cls, root: Path, canon: str, transform):
    """``Planetoid(root, canon)``, rebuilding a truncated or corrupt ``processed/`` from the raw files.

    The processed tensors carry a content check (``processed/.xflow-check.json``: SHA-256 per
    file); a mismatch, or a processed file PyG cannot read while the raw files are present, is
    reported with its path, the folder removed and rebuilt once.
    """
    import shutil

    processed = root / canon / "processed"
    raw_ok = all((root / canon / "raw" / f).exists() for f in raw_file_names(canon))
    if _processed_ok(processed) is False:
        log.warning("corrupt processed dataset %s (content check failed); removed it, rebuilding from raw files",
                    processed)
        shutil.rmtree(processed, ignore_errors=True)
    try:
        ds = planetoid_cls(str(root), canon, transform=transform)
    except Exception as exc:  # noqa: BLE001 - any download/parse failure becomes a typed error
        if not (raw_ok and processed.is_dir()):
            raise DatasetNotFound(_missing_message(canon, f"{type(exc).__name__}: {exc}")) from exc
        log.warning("corrupt processed dataset %s (%s); removed it, rebuilding from raw files",
                    processed, type(exc).__name__)
        shutil.rmtree(processed, ignore_errors=True)
        try:
            ds = planetoid_cls(str(root), canon, transform=transform)
        except Exception as exc2:  # noqa: BLE001
            raise DatasetNotFound(_missing_message(canon, f"{type(exc2).__name__}: {exc2}")) from exc2
    if processed.is_dir() and _processed_ok(processed) is None:
        write_checked_json(processed / _CHECK_FILE, _processed_digests(processed))
    return ds


def _missing_message(canon: str, why: str) -> str:
    where = ", ".join(str(d / "Planetoid" / canon / "raw") for d in paths.data_dirs())
    files = ", ".join(raw_file_names(canon))
    return (f"dataset {canon} not found and could not be downloaded ({why}). Put the raw Planetoid "
            f"files [{files}] into one of: {where} (or set $XFLOW_DATA to a folder holding "
            f"Planetoid/{canon}/raw).")


def random_split(data, *, seed: int = 0, fractions: tuple[float, float, float] = (0.5, 0.25, 0.25)):
    """Return a copy of ``data`` with a seeded random train/val/test node split.

    ``fractions`` are the train/val/test shares (the Unifews paper uses 50/25/25). The same seed
    always gives the same split, so baselines and Unifews runs see identical nodes.
    """
    if abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) < 0:
        raise ValueError(f"split fractions must be non-negative and sum to 1, got {fractions}")
    n = data.num_nodes
    g = torch.Generator().manual_seed(int(seed))
    perm = torch.randperm(n, generator=g)
    n_tr = int(round(fractions[0] * n))
    n_va = int(round(fractions[1] * n))
    out = data.clone()
    for key, idx in (("train_mask", perm[:n_tr]), ("val_mask", perm[n_tr:n_tr + n_va]),
                     ("test_mask", perm[n_tr + n_va:])):
        m = torch.zeros(n, dtype=torch.bool)
        m[idx] = True
        setattr(out, key, m)
    return out


def raw_self_loop_nodes(graph_file: Path, num_nodes: int) -> torch.Tensor:
    """``(N,)`` bool: nodes whose raw Planetoid adjacency (``ind.<name>.graph``) lists themselves.

    PyG drops these self-loops; the reference code keeps them (CiteSeer: 124 nodes, so its graph has
    9,104 + 124 = 9,228 entries, the count in the paper's Table II). All-false if unreadable.
    """
    import pickle

    mask = torch.zeros(int(num_nodes), dtype=torch.bool)
    try:
        with open(graph_file, "rb") as f:
            adj = pickle.load(f, encoding="latin1")
    except (OSError, pickle.UnpicklingError, EOFError) as exc:
        log.warning("could not read %s for raw self-loops: %s", graph_file, exc)
        return mask
    loops = [int(k) for k, nbrs in adj.items() if k in nbrs and int(k) < num_nodes]
    if loops:
        mask[torch.tensor(loops)] = True
    return mask


def stratified_split(data, *, seed: int = 0, fractions: tuple[float, float] = (0.5, 0.25)):
    """Return a copy of ``data`` with a seeded, class-stratified train/val/test split.

    ``int(fractions[0]·n)`` training and ``int(fractions[1]·n)`` validation nodes (the rest test),
    as the reference code's ``split_stratify`` (two stratified ``train_test_split`` calls). Each
    class gets its share of every part (largest remainders decide the rounding), so the class
    histogram of each part matches the graph's to within one node per class. The node sets differ
    from scikit-learn's for the same seed (our own generator); the procedure is the same.
    """
    n = int(data.num_nodes)
    n_tr, n_va = int(fractions[0] * n), int(fractions[1] * n)
    if n_tr + n_va > n or min(n_tr, n_va) < 0:
        raise ValueError(f"stratified split fractions {fractions} do not fit {n} nodes")
    y = data.y.view(-1).long()
    g = torch.Generator().manual_seed(int(seed))
    idx = torch.arange(n)
    train = _stratified_take(idx, y, n_tr, g)
    rest = torch.ones(n, dtype=torch.bool)
    rest[train] = False
    val = _stratified_take(idx[rest], y[rest], n_va, g)
    out = data.clone()
    masks = {"train_mask": train, "val_mask": val}
    for key, sel in masks.items():
        m = torch.zeros(n, dtype=torch.bool)
        m[sel] = True
        setattr(out, key, m)
    out.test_mask = ~(out.train_mask | out.val_mask)
    return out


def _stratified_take(idx: torch.Tensor, y: torch.Tensor, k: int, g: torch.Generator) -> torch.Tensor:
    """``k`` of ``idx`` drawn per class in proportion to the class sizes (largest remainder rounding)."""
    classes, counts = torch.unique(y, return_counts=True)
    share = counts.double() * k / max(1, idx.numel())
    take = share.floor().long()
    left = int(k - int(take.sum()))
    if left > 0:
        frac = share - take.double()
        order = torch.argsort(frac + 1e-9 * torch.rand(frac.shape, generator=g, dtype=torch.float64), descending=True)
        take[order[:left]] += 1
    out = []
    for c, t in zip(classes.tolist(), take.tolist()):
        members = idx[y == c]
        out.append(members[torch.randperm(members.numel(), generator=g)[:t]])
    return torch.cat(out) if out else idx[:0]


def keep_largest_component(data):
    """The largest connected component of ``data`` (node order kept), as PyG's transform does."""
    from torch_geometric.transforms import LargestConnectedComponents

    out = LargestConnectedComponents()(data)
    if hasattr(data, "name"):
        out.name = data.name
    return out


# -- OGB-format node-classification folders -----------------------------------------------------
#: the files an OGB node-classification folder must hold (``<kind>`` is any split folder)
OGB_FILES = ("raw/edge.csv.gz", "raw/node-feat.csv.gz", "raw/node-label.csv.gz",
             "split/<kind>/train.csv.gz", "split/<kind>/valid.csv.gz", "split/<kind>/test.csv.gz")


def is_ogb_name(name: str) -> bool:
    """Whether ``name`` names an OGB node-property dataset (``ogbn-...``)."""
    return name.lower().startswith("ogbn-") or name.lower().startswith("ogbn_")


def find_ogb_dir(name: str) -> Path | None:
    """First ``<data dir>/<name>`` (``-`` or ``_`` spelling, optionally under ``OGB/``) holding the raw files."""
    key = name.lower()
    spellings = {key, key.replace("-", "_"), key.replace("_", "-")}
    for d in paths.data_dirs():
        for base in (d, d / "OGB", d / "ogb"):
            for s in sorted(spellings):
                root = base / s
                if (root / "raw" / "edge.csv.gz").exists():
                    return root
    return None


def _ogb_missing(name: str, root: Path | None, missing: list[str]) -> str:
    where = ", ".join(str(d / name.lower().replace("-", "_")) for d in paths.data_dirs())
    found = f" (found {root}, but it lacks {', '.join(missing)})" if root is not None else ""
    return (f"OGB dataset {name} not found{found}. Put the OGB node-classification files "
            f"[{', '.join(OGB_FILES)}] (as downloaded by the `ogb` package) into one of: {where}, "
            f"or set $XFLOW_DATA to a folder holding {name.lower().replace('-', '_')}/. They cannot be downloaded here.")


def load_ogb_node(name: str, *, drop_isolated: bool = True, split: str = "official", seed: int = 0):
    """Load an OGB node-classification dataset from its raw CSV files (no ``ogb`` package needed).

    Edges are symmetrised and de-duplicated, self-loops dropped; isolated nodes are removed with
    ``drop_isolated`` (the reference code's ``DataProcess_OGB.fetch``). ``split='official'`` uses the
    dataset's own split files; ``'random'`` a seeded 50/25/25 split.

    Raises:
        DatasetNotFound: the folder or one of :data:`OGB_FILES` is missing (the message names them).
    """
    import numpy as np
    import pandas as pd
    from torch_geometric.data import Data

    root = find_ogb_dir(name)
    if root is None:
        raise DatasetNotFound(_ogb_missing(name, None, list(OGB_FILES)))
    need = [root / "raw" / f for f in ("edge.csv.gz", "node-feat.csv.gz", "node-label.csv.gz")]
    splits = sorted((root / "split").glob("*/train.csv.gz")) if (root / "split").is_dir() else []
    missing = [str(p.relative_to(root)) for p in need if not p.exists()]
    if split == "official" and not splits:
        missing.append("split/<kind>/train.csv.gz")
    if missing:
        raise DatasetNotFound(_ogb_missing(name, root, missing))
    try:
        edges = pd.read_csv(need[0], header=None).to_numpy(dtype=np.int64)
        x = pd.read_csv(need[1], header=None).to_numpy(dtype=np.float32)
        y = pd.read_csv(need[2], header=None).to_numpy()
    except Exception as exc:  # noqa: BLE001 - a corrupt file becomes a clear error
        raise DatasetNotFound(f"OGB dataset {name} at {root} could not be read ({type(exc).__name__}: {exc}); "
                              f"re-download its raw files") from exc
    n = x.shape[0]
    if edges.ndim != 2 or edges.shape[1] != 2 or (edges.size and (edges.min() < 0 or edges.max() >= n)):
        raise DatasetNotFound(f"OGB dataset {name}: {need[0]} must hold 'src,dst' rows with node ids < {n}")
    src = torch.from_numpy(np.concatenate([edges[:, 0], edges[:, 1]]))
    dst = torch.from_numpy(np.concatenate([edges[:, 1], edges[:, 0]]))
    keep = src != dst
    key = torch.unique(src[keep] * n + dst[keep])
    ei = torch.stack([key // n, key % n])
    yv = torch.from_numpy(np.nan_to_num(y[:, 0].astype(np.float64), nan=-1).astype(np.int64))
    tr = va = te = None
    if split == "official":
        sd = splits[0].parent
        tr, va, te = (torch.from_numpy(pd.read_csv(sd / f"{k}.csv.gz", header=None).to_numpy().ravel())
                      for k in ("train", "valid", "test"))
    nodes = torch.arange(n)
    if drop_isolated:
        deg = torch.bincount(ei[0], minlength=n)
        nodes = (deg > 0).nonzero().view(-1)
        remap = torch.full((n,), -1, dtype=torch.long)
        remap[nodes] = torch.arange(nodes.numel())
        ei = remap[ei]
        if tr is not None:
            tr, va, te = (remap[t][remap[t] >= 0] for t in (tr, va, te))
    m = nodes.numel()
    data = Data(x=torch.from_numpy(x)[nodes], edge_index=ei, y=yv[nodes].clamp(min=0), num_nodes=m)
    data.name = name.lower()
    if split == "official":
        for key_, t in (("train_mask", tr), ("val_mask", va), ("test_mask", te)):
            mk = torch.zeros(m, dtype=torch.bool)
            mk[t] = True
            setattr(data, key_, mk)
        return data
    if split != "random":
        raise UnknownName(f"unknown split {split!r} for {name}; choose 'official' or 'random'")
    return random_split(data, seed=seed)


def load_dataset(name: str, *, split: str = "public", seed: int = 0, normalize_features: bool = True,
                 largest_component: bool = False, stratify: bool = False):
    """Any supported dataset by name: Planetoid (``cora``, ``citeseer``, ``pubmed``) or ``ogbn-*``.

    For OGB data ``split='public'`` means the dataset's official split; ``largest_component`` and
    ``normalize_features`` apply to Planetoid graphs only.
    """
    if is_ogb_name(name):
        return load_ogb_node(name, split="official" if split == "public" else split, seed=seed)
    return load_planetoid(name, split=split, seed=seed, normalize_features=normalize_features,
                          largest_component=largest_component, stratify=stratify)
