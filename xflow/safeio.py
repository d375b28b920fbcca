"""Safe file writes and self-checking cache entries, for every file xflow writes.

Three guarantees, one helper each:

* **Atomic writes** — :func:`atomic_output` yields a uniquely named temporary path next to the
  target and renames it over the target only when the body finished without an exception
  (``os.replace`` is atomic on POSIX), so a killed run never leaves half a file and two processes
  writing the same target never share a temporary file. :func:`atomic_write_bytes`,
  :func:`atomic_write_text`, :func:`atomic_write_json` and :func:`atomic_copy` build on it.
* **Locks** — :func:`file_lock` is an advisory ``flock`` on ``<path>.lock`` for caches that several
  processes fill at once (read-merge-write of one JSON file, one sweep entry).
* **Content checks** — :func:`write_checked_json` stores ``{"sha256": h, "data": payload}`` with
  ``h = sha256(canonical JSON of payload)``; :func:`read_checked_json` returns the payload, or
  ``None`` when the file is missing — and when it is truncated, unparsable or fails its check it
  logs a warning naming the path, deletes it and returns ``None`` so the caller rebuilds the
  entry. Binary artefacts (ONNX exports, checkpoints) carry a sidecar ``<file>.sha256``
  (:func:`write_checksum` / :func:`verify_checksum`).

:func:`same_file` tells whether two paths name one file after resolving links (used by the CLI to
refuse an output that would overwrite an input).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_output",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "atomic_copy",
    "file_lock",
    "same_file",
    "sha256_bytes",
    "sha256_file",
    "payload_sha256",
    "write_checked_json",
    "read_checked_json",
    "write_checksum",
    "verify_checksum",
    "discard_corrupt",
]

log = logging.getLogger(__name__)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a unique temporary path in ``path``'s folder; on success rename it to ``path``.

    The temporary name is ``.<name>.<random>.tmp<suffix>`` (``suffix`` defaults to the target's,
    so writers that pick a format by extension — ``onnx.save``, ``to_parquet`` — still work). On
    an exception the temporary file is removed and ``path`` is left as it was.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    sfx = target.suffix if suffix is None else suffix
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".tmp{sfx}", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        try:  # keep the usual permissions (mkstemp creates 0600)
            mode = target.stat().st_mode & 0o777 if target.exists() else 0o666 & ~_umask()
            os.chmod(tmp, mode)
        except OSError:  # pragma: no cover - best effort
            pass
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_output`); return the path."""
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically; return the path."""
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path: str | os.PathLike, obj: Any, **dumps_kwargs: Any) -> Path:
    """Write ``json.dumps(obj, **dumps_kwargs)`` to ``path`` atomically; return the path."""
    return atomic_write_text(path, json.dumps(obj, **dumps_kwargs))


def atomic_copy(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Copy the bytes of ``src`` to ``dst`` atomically (refuses ``src`` and ``dst`` being one file)."""
    if same_file(src, dst):
        raise ValueError(f"atomic_copy: source and destination are the same file: {src}")
    with atomic_output(dst) as tmp:
        shutil.copyfile(src, tmp)
    return Path(dst)


@contextlib.contextmanager
def file_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``<path>.lock`` (blocks until free).

    Processes that read-modify-write one cache file, or may compute the same entry at once, take
    this lock around the critical section. Without ``fcntl`` (Windows) it is a no-op.
    """
    lock_path = Path(f"{path}.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX
        yield
        return
    with open(lock_path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether ``a`` and ``b`` name the same file (after resolving symlinks; hard links count)."""
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    try:
        if pa.exists() and pb.exists():
            return os.path.samefile(pa, pb)
    except OSError:
        pass
    return pa.resolve() == pb.resolve()


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes (streamed, so large exports need no extra memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def payload_sha256(payload: Any) -> str:
    """SHA-256 of the canonical JSON of ``payload`` (sorted keys, no spaces) — its content check."""
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return sha256_bytes(blob.encode())


def discard_corrupt(path: str | os.PathLike, reason: str) -> None:
    """Log that cache entry ``path`` is corrupt (``reason``) and delete it so it gets rebuilt."""
    p = Path(path)
    log.warning("corrupt cache entry %s (%s); removed it, it will be rebuilt", p, reason)
    try:
        p.unlink(missing_ok=True)
        Path(f"{p}.sha256").unlink(missing_ok=True)
    except OSError as exc:  # pragma: no cover - read-only cache
        log.warning("could not remove %s: %s", p, exc)


def write_checked_json(path: str | os.PathLike, payload: Any, **dumps_kwargs: Any) -> Path:
    """Atomically write ``{"sha256": payload_sha256(payload), "data": payload}`` to ``path``.

    ``payload`` is round-tripped through JSON first (``default=str``), so what is checked is
    exactly what a reader gets back.
    """
    data = json.loads(json.dumps(payload, default=str))
    return atomic_write_json(path, {"sha256": payload_sha256(data), "data": data}, **dumps_kwargs)


def read_checked_json(path: str | os.PathLike, *, discard: bool = True) -> Any | None:
    """The payload stored by :func:`write_checked_json`, or ``None`` if missing or corrupt.

    A file that does not parse, lacks the envelope, or whose payload fails its SHA-256 check is
    reported (log warning with its path) and, with ``discard`` (default), deleted.
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("cannot read cache entry %s: %s", p, exc)
        return None
    reason = None
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        reason = f"not valid JSON ({len(raw)} bytes: {exc.__class__.__name__})"
    else:
        if not isinstance(obj, dict) or set(obj) != {"sha256", "data"}:
            reason = "no content check (old format or foreign file)"
        elif payload_sha256(obj["data"]) != obj["sha256"]:
            reason = "content check failed (SHA-256 mismatch)"
        else:
            return obj["data"]
    if discard:
        discard_corrupt(p, reason)
    else:
        log.warning("corrupt cache entry %s (%s)", p, reason)
    return None


def write_checksum(path: str | os.PathLike) -> str:
    """Write ``<path>.sha256`` holding the file's SHA-256 and size; return the digest."""
    p = Path(path)
    digest = sha256_file(p)
    atomic_write_text(f"{p}.sha256", f"{digest} {p.stat().st_size}\n")
    return digest


def verify_checksum(path: str | os.PathLike, *, discard: bool = True) -> bool:
    """Whether ``path`` exists and matches its ``<path>.sha256`` sidecar.

    A file without a sidecar, or whose size or digest differs, is reported (log warning naming
    the path) and, with ``discard``, removed together with the sidecar; returns ``False`` then.
    """
    p = Path(path)
    side = Path(f"{p}.sha256")
    if not p.exists():
        return False
    reason = None
    try:
        digest, size = side.read_text().split()
    except (OSError, ValueError):
        reason = "no checksum sidecar"
    else:
        actual_size = p.stat().st_size
        if str(actual_size) != size:
            reason = f"size {actual_size} bytes, expected {size} (truncated?)"
        elif sha256_file(p) != digest:
            reason = "content check failed (SHA-256 mismatch)"
        else:
            return True
    if discard:
        discard_corrupt(p, reason)
    else:
        log.warning("corrupt file %s (%s)", p, reason)
    return False
