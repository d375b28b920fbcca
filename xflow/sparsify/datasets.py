"""Planetoid citation graphs (Cora, CiteSeer) for the sparsification experiments, with splits.

The raw Planetoid files (``ind.<name>.{x,tx,allx,y,ty,ally,graph,test.index}``) are looked up in
:func:`xflow.paths.data_dirs` under ``Planetoid/<Name>/raw`` (``$XFLOW_DATA``, ``<repo>/data``,
``<repo>/../shared/data``). Those folders may be read-only, so the raw files are symlinked into
``<cache>/datasets/Planetoid/<Name>/raw`` and PyG writes ``processed/`` there. When no copy is found
PyG's own download is tried (into the cache); when that fails too, :class:`~xflow.errors.DatasetNotFound`
names the files and where to put them.

Splits
------
* ``public``: the standard Planetoid split (20 labels per class, 500 val, 1000 test).
* ``random``: a seeded random 50/25/25 train/val/test node split (the Unifews paper's setting).

STATS

======== ======= ======== ========== ========
Name     #nodes  #edges   #features  #classes
======== ======= ======== ========== ========
Cora     2,708   10,556   1,433      7
CiteSeer 3,327   9,104    3,703      6
======== ======= ======== ========== ========
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from xflow import paths
from xflow.errors import DatasetNotFound, UnknownName

__all__ = ["PLANETOID_NAMES", "raw_file_names", "find_planetoid_raw", "load_planetoid", "random_split"]

log = logging.getLogger(__name__)

PLANETOID_NAMES = {"cora": "Cora", "citeseer": "CiteSeer"}
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
    """Symlink (or copy) the raw files into the writable ``root/<Name>/raw``."""
    dst = root / canon / "raw"
    dst.mkdir(parents=True, exist_ok=True)
    for f in raw_file_names(canon):
        target = dst / f
        if target.exists():
            continue
        try:
            os.symlink((src_raw / f).resolve(), target)
        except OSError:  # filesystems without symlinks
            import shutil

            shutil.copyfile(src_raw / f, target)


def load_planetoid(name: str, *, split: str = "public", seed: int = 0, download: bool = True,
                   normalize_features: bool = True):
    """Load Cora/CiteSeer as a PyG ``Data`` with ``train_mask``/``val_mask``/``test_mask``.

    Args:
        name: ``'cora'`` or ``'citeseer'`` (case-insensitive).
        split: ``'public'`` (standard Planetoid split) or ``'random'`` (seeded 50/25/25).
        seed: seed of the random split (ignored for ``'public'``).
        download: try PyG's download when no local copy exists.
        normalize_features: row-normalise the bag-of-words features (PyG ``NormalizeFeatures``).

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
    from xflow.safeio import file_lock

    with file_lock(root / canon):  # one process builds processed/ at a time
        ds = _open_planetoid(Planetoid, root, canon, transform)
    data = ds[0]
    data.name = canon
    if split == "random":
        data = random_split(data, seed=seed)
    return data


_CHECK_FILE = ".xflow-check.json"


def _processed_digests(processed: Path) -> dict[str, str]:
    from xflow.safeio import sha256_file

    return {p.name: sha256_file(p) for p in sorted(processed.glob("*.pt"))}


def _processed_ok(processed: Path) -> bool | None:
    """``True``/``False`` when ``processed/`` matches / fails its recorded content check,
    ``None`` when there is nothing to check (no folder, or built before checks existed)."""
    from xflow.safeio import read_checked_json

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

    from xflow.safeio import write_checked_json

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
