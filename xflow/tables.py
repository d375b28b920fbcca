"""Docs tables as code: builders registered by id, reading committed result files under ``results/``.

A technique module registers a builder::

    from xflow.tables import load_result, markdown_table, report_table

    @report_table("runtime.aa_noise")
    def aa_noise() -> str:
        df = load_result("runtime/aa_noise.csv")
        return markdown_table(["variant", "noise floor"], [[r.variant, f"±{100 * r.floor:.1f}%"] for r in ...])

and a docs page holds the block it fills::

    <!-- report:runtime.aa_noise -->
    (generated; do not edit)
    <!-- /report -->

``make report`` (:mod:`xflow.report`) rebuilds every block from the committed files and stamps it
with the machine, date and git sha found in the files' provenance columns
(:func:`xflow.results.provenance`), so no number in ``docs/`` is typed by hand and each one says
where it came from. Result files for docs are small CSVs written with :func:`save_result`.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xflow import paths
from xflow.results import provenance
from xflow.safeio import atomic_output, file_lock

__all__ = ["report_table", "load_result", "with_defaults", "quoting", "save_result", "markdown_table", "TableContext", "registered",
           "fmt", "fmt_ci"]

_REGISTRY: dict[str, Callable[[], str]] = {}


def report_table(table_id: str) -> Callable[[Callable[[], str]], Callable[[], str]]:
    """Register ``fn() -> markdown`` as the builder of docs block ``table_id`` (``area.name``)."""
    if "." not in table_id or any(c.isspace() for c in table_id):
        raise ValueError(f"report table id must look like 'area.name', got {table_id!r}")

    def deco(fn: Callable[[], str]) -> Callable[[], str]:
        if table_id in _REGISTRY and _REGISTRY[table_id] is not fn:
            raise ValueError(f"report table {table_id!r} is registered twice")
        _REGISTRY[table_id] = fn
        return fn
    return deco


def registered() -> dict[str, Callable[[], str]]:
    """Every registered builder by id (after the technique modules were imported)."""
    return dict(_REGISTRY)


@dataclass
class TableContext:
    """The result files a builder read while it ran (for the provenance stamp)."""

    files: list[Path] = field(default_factory=list)
    frames: list[Any] = field(default_factory=list)


_CTX: list[TableContext] = []


def results_root() -> Path:
    """Root of committed result files (``$XFLOW_RESULTS`` or ``<repo>/results``)."""
    return paths.results_dir()


def with_defaults(df, defaults: dict[str, Any] | None):
    """``df`` with each column of ``defaults`` added (when missing) or its empty cells filled:
    how a file written before a column existed reads as if it had it."""
    for k, v in (defaults or {}).items():
        df = df.assign(**{k: df[k].fillna(v) if k in df.columns else v})
    return df


def load_result(relpath: str, *, defaults: dict[str, Any] | None = None):
    """The committed result file ``results/<relpath>`` (``.csv`` or ``.parquet``) as a DataFrame.

    ``defaults`` fill columns that older versions of the file lack or leave empty
    (:func:`with_defaults`). Raises ``FileNotFoundError`` naming the file and the command that
    produces it when absent.
    """
    import pandas as pd

    p = results_root() / relpath
    if not p.is_file() and (paths.repo_root() / "results" / relpath).is_file():
        p = paths.repo_root() / "results" / relpath  # $XFLOW_RESULTS holds new runs; committed ones stay readable
    if not p.is_file():
        raise FileNotFoundError(f"result file {p} is missing: run the benchmark that writes it "
                                f"(see the docs page quoting it), then `make report`")
    df = with_defaults(pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p), defaults)
    if _CTX:
        _CTX[-1].files.append(p)
        _CTX[-1].frames.append(df)
    return df


def _result_lock(path: Path) -> Path:
    """Where the lock of a result file's read-modify-write lives (outside the repository)."""
    import hashlib
    import tempfile

    return Path(tempfile.gettempdir()) / f"xflow-result-{hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]}"


def _kept_rows(p: Path, relpath: str, new, replace_on: Sequence[str], defaults: dict[str, Any]):
    """Rows of the existing ``relpath`` whose ``replace_on`` key no new row has (empty frame if none)."""
    import pandas as pd

    src = p if p.is_file() else paths.repo_root() / "results" / relpath
    if not src.is_file():
        return pd.DataFrame()
    old = pd.read_parquet(src) if src.suffix == ".parquet" else pd.read_csv(src)
    if old.empty:
        return old
    old = with_defaults(old, defaults)
    lost = [k for k in replace_on if k not in old.columns]
    if lost:
        raise ValueError(f"save_result({relpath!r}): the existing file has no column {lost[0]!r} to match "
                         f"rows on; give it a default (defaults={{{lost[0]!r}: ...}})")
    keys = {_key(r) for r in new[list(replace_on)].itertuples(index=False, name=None)}
    mine = [_key(r) in keys for r in old[list(replace_on)].itertuples(index=False, name=None)]
    return old[~pd.Series(mine, index=old.index, dtype=bool)]


def _key(values: tuple) -> tuple[str, ...]:
    """A row key as text, with integral floats as integers: a CSV column that once held an empty
    cell reads back as float (``3.0``), and must still match the new records' ``3``."""
    return tuple(str(int(v)) if isinstance(v, float) and v.is_integer() else str(v) for v in values)


def quoting(df):
    """Mark ``df``, rows of the result file a builder loaded last, as all the table quotes: the
    provenance stamp (machine, dates, git) then describes those rows, not the whole file (a file
    holding several backends' or runs' rows). Returns ``df``."""
    if _CTX and _CTX[-1].frames:
        _CTX[-1].frames[-1] = df
    return df


def save_result(records: Iterable[dict[str, Any]] | Any, relpath: str, *, device: str = "cpu",
                threads: int | None = None, replace_on: Sequence[str] | None = None,
                defaults: dict[str, Any] | None = None) -> Path:
    """Write ``records`` (dicts or a DataFrame) with provenance columns to ``results/<relpath>``
    atomically (CSV); returns the path.

    By default the file is replaced. With ``replace_on`` (key columns) it is merged instead: the
    existing file's rows whose key no new record has are kept, each with its own provenance, and
    the others are replaced (a partial re-run of a benchmark updates only what it measured).
    ``defaults`` fill key columns that older files lack or leave empty. The read-modify-write holds
    a lock, so concurrent runs of one benchmark do not drop each other's rows.
    """
    import pandas as pd

    df = records if isinstance(records, pd.DataFrame) else pd.DataFrame(list(records))
    if df.empty:
        raise ValueError(f"save_result({relpath!r}): no records")
    prov = provenance(device, threads)
    for k, v in prov.items():
        if k not in df.columns:
            df[k] = v
    p = results_root() / relpath
    p.parent.mkdir(parents=True, exist_ok=True)
    if not replace_on:
        with atomic_output(p) as tmp:  # unique temporary name, then rename
            df.to_csv(tmp, index=False)
        return p
    missing = [k for k in replace_on if k not in df.columns]
    if missing:
        raise ValueError(f"save_result({relpath!r}): records have no key column {missing[0]!r}")
    with file_lock(_result_lock(p)):
        kept = _kept_rows(p, relpath, df, replace_on, dict(defaults or {}))
        merged = pd.concat([kept, df], ignore_index=True) if len(kept) else df
        with atomic_output(p) as tmp:
            merged.to_csv(tmp, index=False)
    return p


def fmt(v: Any, digits: int = 3) -> str:
    """A number for a table cell (``—`` for missing/NaN)."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    if isinstance(v, (int,)) and not isinstance(v, bool):
        return str(v)
    try:
        return f"{float(v):.{digits}g}" if abs(float(v)) >= 1000 else f"{float(v):.{digits}f}"
    except (TypeError, ValueError):
        return str(v)


def fmt_ci(value: Any, lo: Any, hi: Any, verdict: str | None = None, digits: int = 2, suffix: str = "×") -> str:
    """``1.01× [0.98, 1.04] same`` for a table cell."""
    if value is None or lo is None or hi is None:
        return "—"
    s = f"{float(value):.{digits}f}{suffix} [{float(lo):.{digits}f}, {float(hi):.{digits}f}]"
    return s + (f" {verdict}" if verdict else "")


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], align: Sequence[str] | None = None) -> str:
    """A GitHub-markdown table (``align`` per column: ``l``, ``r`` or ``c``; default: left)."""
    cells = [[str(c).replace("|", "\\|").replace("\n", " ") for c in r] for r in rows]
    sep = {"l": "---", "r": "---:", "c": ":---:"}
    al = list(align or ["l"] * len(headers))
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join(sep[a] for a in al) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in cells]
    return "\n".join(out)


def build(table_id: str) -> tuple[str, TableContext]:
    """Run builder ``table_id``; returns its markdown and the files it read."""
    if table_id not in _REGISTRY:
        raise KeyError(f"no report table {table_id!r} is registered")
    ctx = TableContext()
    _CTX.append(ctx)
    try:
        text = _REGISTRY[table_id]().rstrip("\n")
    finally:
        _CTX.pop()
    return text, ctx
