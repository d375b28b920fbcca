"""One sweep runner for every experiment: a grid of configs → cached, resumable runs on Ray.

An experiment is a function ``run(config: dict) -> list[dict] | dict`` returning result records.
:func:`run_sweep` hashes each config (with the function's qualified name), skips configs whose
result is already cached (so a killed sweep resumes where it stopped), runs the rest as Ray tasks
(local Ray by default; the cluster at ``$RAY_ADDRESS`` when set), shows a tqdm progress bar, and
records a failing config with its traceback without stopping the others.

Cache layout: ``<cache>/sweeps/<name>/<hash>.json`` holding ``{"status", "config", "records",
"error"}`` inside a content-checked envelope (:func:`xflow.safeio.write_checked_json`): a truncated
or tampered entry is reported with its path, deleted and re-run. Entries are written atomically
under a per-entry lock, so two identical sweeps at once never collide. Delete the folder to re-run
everything.

Ray start-up is retried while ``$XFLOW_RAY_START_TIMEOUT_S`` (default 90 s) leaves room — a busy
machine can make one attempt time out — and the sweep then runs locally with a warning rather than
failing (later sweeps of the process skip Ray for a while); a config whose Ray worker died is re-run
locally too.
"""
from __future__ import annotations

import functools
import hashlib
import itertools
import json
import logging
import os
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xflow import paths
from xflow.safeio import discard_corrupt, file_lock, read_checked_json, write_checked_json

__all__ = ["grid", "config_hash", "run_sweep", "SweepResult", "example_task"]

log = logging.getLogger(__name__)

Task = Callable[[dict], "list[dict] | dict"]


def grid(**axes: Iterable[Any]) -> list[dict]:
    """Cartesian product of keyword axes: ``grid(a=[1, 2], b=['x'])`` → 2 configs."""
    keys = list(axes)
    return [dict(zip(keys, vals)) for vals in itertools.product(*(list(axes[k]) for k in keys))]


def _fn_id(fn: Callable) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """Hash of xflow's own source files: part of every sweep cache key, so results cached by an
    older version of the code (other record columns, a fixed bug) are never served as current."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        h.update(str(f.relative_to(root)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def config_hash(fn: Callable | str, config: Mapping[str, Any]) -> str:
    """Stable 16-hex-digit hash of (function id, config, :func:`code_version`) — the cache key of one run."""
    fid = fn if isinstance(fn, str) else _fn_id(fn)
    blob = json.dumps({"fn": fid, "config": config, "code": code_version()}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _call(fn: Task, config: dict, catch: bool = True) -> dict:
    """Run one config; with ``catch`` never raises — failures come back with their traceback."""
    try:
        out = fn(dict(config))
        records = [out] if isinstance(out, Mapping) else list(out or [])
        return {"status": "ok", "records": [dict(r) for r in records], "error": None}
    except Exception as exc:  # noqa: BLE001 - a sweep must survive any failing config
        if not catch:
            raise
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


def _ray_start_timeout_s() -> float:
    try:
        return max(1.0, float(os.environ.get("XFLOW_RAY_START_TIMEOUT_S", "90")))
    except ValueError:
        return 90.0


_RAY_RETRY_AFTER_S = 600.0
_ray_unavailable_until = 0.0  # after a failed start, later sweeps of this process skip Ray until then


def _ray_init() -> Any | None:
    """``ray`` once started (or already running); ``None`` when it could not start in time.

    Each ``ray.init`` attempt waits up to Ray's own 30 s for the node to register; on a loaded
    machine that can expire, so a failed attempt is retried (after ``ray.shutdown``) while
    ``$XFLOW_RAY_START_TIMEOUT_S`` (default 90 s) leaves room for another. When Ray does not
    start, the caller runs locally, and later sweeps of this process skip Ray for 10 minutes
    instead of paying the start-up timeout again.
    """
    global _ray_unavailable_until
    import ray

    if ray.is_initialized():
        return ray
    if time.monotonic() < _ray_unavailable_until:
        log.warning("Ray could not start earlier in this process; running this sweep locally")
        return None
    address = os.environ.get("RAY_ADDRESS") or None
    kwargs: dict[str, Any] = dict(
        ignore_reinit_error=True, include_dashboard=False, log_to_driver=False,
        logging_level=logging.WARNING,
    )
    if address is None:
        kwargs["num_cpus"] = os.cpu_count() or 1
    budget = _ray_start_timeout_s()
    start = time.monotonic()
    attempt, last, longest = 0, None, 0.0
    while True:
        attempt += 1
        t0 = time.monotonic()
        try:
            ray.init(address=address, **kwargs)
            if attempt > 1:
                log.warning("Ray started on attempt %d", attempt)
            return ray
        except Exception as exc:  # noqa: BLE001 - start-up failures take many forms
            last = exc
            log.warning("Ray start-up attempt %d failed after %.0f s: %s", attempt, time.monotonic() - t0,
                        (str(exc).splitlines() or [type(exc).__name__])[0])
            try:
                ray.shutdown()
            except Exception:  # noqa: BLE001
                pass
        longest = max(longest, time.monotonic() - t0)
        pause = min(2.0 * attempt, 10.0)
        if time.monotonic() - start + pause + longest > budget:  # no room for another attempt
            break
        time.sleep(pause)
    _ray_unavailable_until = time.monotonic() + _RAY_RETRY_AFTER_S
    log.warning("Ray did not start (%d attempt(s) in %.0f s; %s: %s); running this sweep locally in this "
                "process (set XFLOW_RAY_START_TIMEOUT_S to wait longer)", attempt, time.monotonic() - start,
                type(last).__name__, (str(last).splitlines() or [""])[0])
    return None


def _entry_ok(entry: Any) -> bool:
    return (isinstance(entry, dict) and entry.get("status") in ("ok", "failed")
            and isinstance(entry.get("records"), list))


def run_sweep(
    fn: Task,
    configs: Sequence[Mapping[str, Any]],
    *,
    name: str,
    backend: str = "ray",
    retry_failed: bool = True,
    progress: bool | None = True,
    cache: Path | None = None,
    num_cpus_per_task: float = 1.0,
    on_result: Callable[[str, dict, dict], None] | None = None,
    add_config: bool = True,
    raise_failures: bool = False,
    desc: str | None = None,
) -> SweepResult:
    """Run ``fn`` on every config (cached by :func:`config_hash`), return a :class:`SweepResult`.

    ``backend='ray'`` (default) schedules runs as Ray tasks (falling back to local runs with a
    warning when Ray cannot start); ``backend='local'`` runs them in this process (debugging, or
    when Ray is unwanted). Each record gets ``config_hash`` and, with ``add_config``, the config's
    keys as columns (record keys win on conflict). ``on_result(hash, config, entry)`` is called for
    every newly finished config *before* it is cached (e.g. to append its records to a result
    file), so an interrupted sweep keeps every finished unit. ``raise_failures`` (local backend)
    lets a failing config's exception propagate instead of recording it. ``progress=None`` shows
    the bar only on a terminal.
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
        entry = read_checked_json(cache_dir / f"{h}.json")  # corrupt entries: warned, removed
        if entry is not None and not _entry_ok(entry):
            discard_corrupt(cache_dir / f"{h}.json", "not a sweep entry")
            entry = None
        if entry is not None and (entry["status"] == "ok" or not retry_failed):
            result.n_cached += 1
            _collect(result, h, cfg, entry, add_config)
            continue
        todo.append((h, cfg))

    def finish(h: str, cfg: dict, entry: dict) -> None:
        entry = {**entry, "config": cfg}
        if on_result is not None:
            on_result(h, cfg, entry)
        target = cache_dir / f"{h}.json"
        with file_lock(target):  # unique temp file + rename: a killed sweep never leaves half a file
            write_checked_json(target, entry)
        result.n_new += 1
        _collect(result, h, cfg, entry, add_config)

    disable = True if (not todo or progress is False) else (None if progress is None else False)
    bar = tqdm(total=len(todo), desc=desc or f"sweep {name}", disable=disable)
    ray = _ray_init() if backend == "ray" and todo else None
    if ray is None:
        for h, cfg in todo:
            finish(h, cfg, _call(fn, cfg, catch=not raise_failures))
            bar.update()
    else:
        remote = ray.remote(num_cpus=num_cpus_per_task)(_call)
        pending = {remote.remote(fn, cfg): (h, cfg) for h, cfg in todo}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                h, cfg = pending.pop(ref)
                try:
                    entry = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - the worker died (OOM, node lost): run it here
                    log.warning("sweep %s: Ray task for config %s failed (%s); re-running it locally",
                                name, h, type(exc).__name__)
                    entry = _call(fn, cfg)
                finish(h, cfg, entry)
                bar.update()
    bar.close()
    if result.failures:
        log.warning("sweep %s: %d of %d configs failed", name, result.n_failed, len(seen))
    return result


def _collect(result: SweepResult, h: str, cfg: dict, entry: dict, add_config: bool = True) -> None:
    if entry["status"] != "ok":
        result.failures[h] = entry.get("error") or "unknown error"
        return
    for r in entry["records"]:
        result.records.append({**(cfg if add_config else {}), **r, "config_hash": h})


def example_task(config: dict) -> list[dict]:
    """A tiny experiment for tests and docs: ``value = x ** 2``; raises when ``config['fail']``."""
    if config.get("fail"):
        raise RuntimeError(f"example_task asked to fail for x={config.get('x')}")
    return [{"metric": "square", "value": float(config["x"]) ** 2}]
