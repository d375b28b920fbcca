"""One sweep runner for every experiment: a grid of configs → cached, resumable runs on Ray.

An experiment is a function ``run(config: dict) -> list[dict] | dict`` returning result records.
:func:`run_sweep` hashes each config (with the function's qualified name), skips configs whose
result is already cached (so a killed sweep resumes where it stopped), runs the rest as Ray tasks
(local Ray by default; the cluster at ``$RAY_ADDRESS`` when set), shows a tqdm progress bar, and
records a failing config with its traceback without stopping the others.

Cache layout: ``<cache>/sweeps/<name>/<hash>.json`` holding ``{"status", "config", "records",
"error"}``. Delete the folder to re-run everything.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xflow import paths

__all__ = ["grid", "config_hash", "run_sweep", "SweepResult", "example_task"]

log = logging.getLogger(__name__)

Task = Callable[[dict], "list[dict] | dict"]


def grid(**axes: Iterable[Any]) -> list[dict]:
    """Cartesian product of keyword axes: ``grid(a=[1, 2], b=['x'])`` → 2 configs."""
    keys = list(axes)
    return [dict(zip(keys, vals)) for vals in itertools.product(*(list(axes[k]) for k in keys))]


def _fn_id(fn: Callable) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def config_hash(fn: Callable | str, config: Mapping[str, Any]) -> str:
    """Stable 16-hex-digit hash of (function id, config) — the cache key of one run."""
    fid = fn if isinstance(fn, str) else _fn_id(fn)
    blob = json.dumps({"fn": fid, "config": config}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _call(fn: Task, config: dict) -> dict:
    """Run one config; never raises — failures come back with their traceback."""
    try:
        out = fn(dict(config))
        records = [out] if isinstance(out, Mapping) else list(out or [])
        return {"status": "ok", "records": [dict(r) for r in records], "error": None}
    except Exception as exc:  # noqa: BLE001 - a sweep must survive any failing config
        return {
            "status": "failed",
            "records": [],
            "error": f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}",
        }


@dataclass
class SweepResult:
    """What a sweep did: records of all successful runs plus counts and failures."""

    name: str
    records: list[dict] = field(default_factory=list)
    n_new: int = 0
    n_cached: int = 0
    failures: dict[str, str] = field(default_factory=dict)  # config hash -> traceback

    def frame(self):
        """Records as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.records)

    @property
    def n_failed(self) -> int:
        return len(self.failures)


def _ray_init() -> Any:
    import ray

    if not ray.is_initialized():
        address = os.environ.get("RAY_ADDRESS") or None
        kwargs: dict[str, Any] = dict(
            ignore_reinit_error=True, include_dashboard=False, log_to_driver=False,
            logging_level=logging.WARNING,
        )
        if address is None:
            kwargs["num_cpus"] = os.cpu_count() or 1
        ray.init(address=address, **kwargs)
    return ray


def run_sweep(
    fn: Task,
    configs: Sequence[Mapping[str, Any]],
    *,
    name: str,
    backend: str = "ray",
    retry_failed: bool = True,
    progress: bool = True,
    cache: Path | None = None,
    num_cpus_per_task: float = 1.0,
) -> SweepResult:
    """Run ``fn`` on every config (cached by :func:`config_hash`), return a :class:`SweepResult`.

    ``backend='ray'`` (default) schedules runs as Ray tasks; ``backend='local'`` runs them in this
    process (debugging, or when Ray is unwanted). Each record gets ``config_hash`` and the config's
    keys as columns (record keys win on conflict).
    """
    from tqdm.auto import tqdm

    if backend not in ("ray", "local"):
        raise ValueError(f"backend must be 'ray' or 'local', got {backend!r}")
    cache_dir = Path(cache) if cache else paths.cache_dir("sweeps", name)
    cache_dir.mkdir(parents=True, exist_ok=True)
    result = SweepResult(name=name)
    todo: list[tuple[str, dict]] = []
    seen: set[str] = set()
    for cfg in configs:
        cfg = dict(cfg)
        h = config_hash(fn, cfg)
        if h in seen:
            continue
        seen.add(h)
        f = cache_dir / f"{h}.json"
        if f.exists():
            entry = json.loads(f.read_text())
            if entry["status"] == "ok" or not retry_failed:
                result.n_cached += 1
                _collect(result, h, cfg, entry)
                continue
        todo.append((h, cfg))

    def finish(h: str, cfg: dict, entry: dict) -> None:
        entry = {**entry, "config": cfg}
        tmp = cache_dir / f".{h}.tmp"
        tmp.write_text(json.dumps(entry, default=str))
        tmp.replace(cache_dir / f"{h}.json")  # atomic: a killed sweep never leaves half a file
        result.n_new += 1
        _collect(result, h, cfg, entry)

    bar = tqdm(total=len(todo), desc=f"sweep {name}", disable=not progress or not todo)
    if backend == "local" or not todo:
        for h, cfg in todo:
            finish(h, cfg, _call(fn, cfg))
            bar.update()
    else:
        ray = _ray_init()
        remote = ray.remote(num_cpus=num_cpus_per_task)(_call)
        pending = {remote.remote(fn, cfg): (h, cfg) for h, cfg in todo}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                h, cfg = pending.pop(ref)
                try:
                    entry = ray.get(ref)
                except Exception as exc:  # worker crash
                    entry = {"status": "failed", "records": [], "error": repr(exc)}
                finish(h, cfg, entry)
                bar.update()
    bar.close()
    if result.failures:
        log.warning("sweep %s: %d of %d configs failed", name, result.n_failed, len(seen))
    return result


def _collect(result: SweepResult, h: str, cfg: dict, entry: dict) -> None:
    if entry["status"] != "ok":
        result.failures[h] = entry.get("error") or "unknown error"
        return
    for r in entry["records"]:
        result.records.append({**cfg, **r, "config_hash": h})


def example_task(config: dict) -> list[dict]:
    """A tiny experiment for tests and docs: ``value = x ** 2``; raises when ``config['fail']``."""
    if config.get("fail"):
        raise RuntimeError(f"example_task asked to fail for x={config.get('x')}")
    return [{"metric": "square", "value": float(config["x"]) ** 2}]
