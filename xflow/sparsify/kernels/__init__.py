"""Compiled CPU kernels for :mod:`xflow.sparsify` (``unifews_kernels.c``), loaded through ``ctypes``.

The C file has no torch or Python headers, so it builds with the system C compiler in about a
second (``cc -O3 -march=native -shared``) into ``<cache>/kernels/libxf_<hash>.so``, keyed by the
source, the flags and the CPU model (a copy built elsewhere is never reused). When no compiler is
found or the build fails, :func:`available` is false, a warning is logged once, and every caller
falls back to its pure-torch path (which the tests also use as the reference for each kernel).
Set ``XFLOW_NO_KERNELS=1`` to force the fallback.

Every wrapper takes and returns CPU tensors, checks dtypes/contiguity, and calls the kernel on
the calling thread (single-threaded: thread CPU time is the deciding clock when they are timed).
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch
from torch import Tensor

from xflow import paths

__all__ = ["available", "library", "push", "spmm_rows", "scatter_rows", "prune_spmm", "spmm_t", "spmm_panel", "pack_panels", "row_norms", "col_norms", "edge_rule", "sddmm_t",
           "masked_absmax", "weight_rule", "spmm_rows_skip", "spmm_rows_masked", "edge_threshold",
           "scatter_rows_keep", "build_error"]

log = logging.getLogger(__name__)

_SRC = Path(__file__).with_name("unifews_kernels.c")
_FLAGS = ["-O3", "-march=native", "-fno-math-errno", "-funroll-loops", "-fPIC", "-shared", "-std=c99"]
_ERROR: list[str] = []


def _cpu_model() -> str:
    """CPU model and feature flags (``-march=native`` code must not move to another CPU)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        picked = {ln.split(":", 1)[0].strip(): ln for ln in lines if ln.startswith(("model name", "flags"))}
        if picked:
            return "\n".join(sorted(picked.values()))
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _compiler() -> str | None:
    for c in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if c and shutil.which(c):
            return c
    return None


@functools.lru_cache(maxsize=1)
def library() -> ctypes.CDLL | None:
    """The loaded kernel library, building it on first use; ``None`` if it cannot be built."""
    if os.environ.get("XFLOW_NO_KERNELS"):
        _ERROR.append("disabled by XFLOW_NO_KERNELS")
        return None
    cc = _compiler()
    if cc is None:
        _ERROR.append("no C compiler (cc/gcc/clang) on PATH")
        log.warning("xflow.sparsify kernels unavailable (%s); using the torch fallbacks", _ERROR[-1])
        return None

    src = _SRC.read_bytes()
    key = hashlib.sha256(src + " ".join([cc] + _FLAGS).encode() + _cpu_model().encode()).hexdigest()[:16]
    out_dir = paths.cache_dir("kernels")
    lib_path = out_dir / f"libxf_{key}.so"
    if not lib_path.exists():
        with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
            tmp_lib = Path(tmp) / lib_path.name
            proc = subprocess.run([cc, *_FLAGS, str(_SRC), "-o", str(tmp_lib), "-lm"], capture_output=True,
                                  text=True, timeout=300)
            if proc.returncode != 0 or not tmp_lib.exists():
                _ERROR.append(f"{cc} failed: {proc.stderr.strip()[:500]}")
                log.warning("xflow.sparsify kernels unavailable (%s); using the torch fallbacks", _ERROR[-1])
                return None
            os.replace(tmp_lib, lib_path)  # atomic: concurrent builders never see half a file
    try:
        lib = ctypes.CDLL(str(lib_path))
    except OSError as exc:  # a corrupt cache entry: rebuild once
        _ERROR.append(f"could not load {lib_path}: {exc}")
        lib_path.unlink(missing_ok=True)
        log.warning("xflow.sparsify kernels unavailable (%s); using the torch fallbacks", _ERROR[-1])
        return None
    i64, f64, u64, p = ctypes.c_int64, ctypes.c_double, ctypes.c_uint64, ctypes.c_void_p
    lib.xf_push.restype = i64
    lib.xf_push.argtypes = [i64, i64, p, p, p, i64, p, p, f64, i64, f64, i64, i64, u64, f64]
    lib.xf_spmm_rows.restype = None
    lib.xf_spmm_rows.argtypes = [i64, p, p, p, p, i64, p]
    lib.xf_scatter_rows.restype = None
    lib.xf_scatter_rows.argtypes = [i64, i64, p, p, p, p, i64, p]
    lib.xf_prune_spmm.restype = i64
    lib.xf_prune_spmm.argtypes = [i64, p, p, p, p, p, p, f64, p, i64, p, p]
    lib.xf_spmm_t.restype = None
    lib.xf_spmm_t.argtypes = [i64, p, p, p, p, i64, p]
    lib.xf_row_norms.restype = None
    lib.xf_row_norms.argtypes = [i64, i64, p, p]
    lib.xf_col_norms.restype = None
    lib.xf_col_norms.argtypes = [i64, i64, p, p, p]
    lib.xf_edge_rule.restype = i64
    lib.xf_edge_rule.argtypes = [i64, p, p, p, p, p, f64, p]
    lib.xf_pack_panels.restype = None
    lib.xf_pack_panels.argtypes = [i64, i64, p, p]
    lib.xf_spmm_panel.restype = None
    lib.xf_spmm_panel.argtypes = [i64, i64, p, p, p, p, i64, p]
    lib.xf_sddmm_t.restype = None
    lib.xf_sddmm_t.argtypes = [i64, p, p, p, p, i64, p]
    lib.xf_masked_absmax.restype = ctypes.c_float
    lib.xf_masked_absmax.argtypes = [i64, i64, p, p]
    lib.xf_weight_rule.restype = i64
    lib.xf_weight_rule.argtypes = [i64, i64, p, p, ctypes.c_float, i64, i64, p, p, p]
    lib.xf_spmm_rows_skip.restype = None
    lib.xf_spmm_rows_skip.argtypes = [i64, p, p, p, p, i64, p, p]
    lib.xf_edge_threshold.restype = ctypes.c_float
    lib.xf_edge_threshold.argtypes = [i64, p, p, p, p, f64]
    lib.xf_scatter_rows_keep.restype = None
    lib.xf_scatter_rows_keep.argtypes = [i64, i64, p, p, p, p, p, i64, p]
    lib.xf_spmm_rows_masked.restype = None
    lib.xf_spmm_rows_masked.argtypes = [i64, p, p, p, p, i64, p, p, p]
    return lib


def available() -> bool:
    """Whether the compiled kernels can be used."""
    return library() is not None


def build_error() -> str | None:
    """Why the kernels are unavailable (``None`` if they are)."""
    return None if available() else (_ERROR[-1] if _ERROR else "unknown")


def _c(t: Tensor, dtype: torch.dtype) -> Tensor:
    if t.device.type != "cpu":
        raise ValueError("xflow.sparsify kernels take CPU tensors")
    return t.to(dtype).contiguous()


def _lib() -> ctypes.CDLL:
    lib = library()
    if lib is None:
        raise RuntimeError(f"xflow.sparsify kernels unavailable: {build_error()}")
    return lib


def push(ptr: Tensor, nbr: Tensor, deg: Tensor, x: Tensor, delta: float, hops: int, alpha: float, acc: bool,
         randomized: bool, seed: int, rho: float = 0.5) -> tuple[Tensor, int]:
    """Thresholded push of every column of ``x`` (``(n, F)``); returns ``(P (n, F), pushes)``."""
    ptr, nbr, deg = _c(ptr, torch.int64), _c(nbr, torch.int64), _c(deg, torch.float32)
    xt = _c(x.t(), torch.float32)
    out = torch.empty_like(xt)
    n, f = int(x.shape[0]), int(x.shape[1])
    total = _lib().xf_push(n, int(nbr.numel()), ptr.data_ptr(), nbr.data_ptr(), deg.data_ptr(), f, xt.data_ptr(),
                           out.data_ptr(), float(delta), int(hops), float(alpha), int(acc), int(randomized),
                           int(seed) & (2**64 - 1), float(rho))
    if total < 0:
        raise MemoryError("xf_push: allocation failed")
    return out.t().contiguous(), int(total)


def spmm_rows(ptr: Tensor, src: Tensor, w: Tensor, h: Tensor) -> Tensor:
    """``out[v] = Σ_{e in row v} w_e · h[src_e]`` for CSR rows ``ptr`` (``h``: ``(N, F)`` float32)."""
    ptr, src, w, h = _c(ptr, torch.int64), _c(src, torch.int64), _c(w, torch.float32), _c(h, torch.float32)
    n = int(ptr.numel() - 1)
    out = torch.empty(n, h.shape[1], dtype=torch.float32)
    _lib().xf_spmm_rows(n, ptr.data_ptr(), src.data_ptr(), w.data_ptr(), h.data_ptr(), int(h.shape[1]),
                        out.data_ptr())
    return out


def scatter_rows(n: int, src: Tensor, dst: Tensor, w: Tensor, g: Tensor) -> Tensor:
    """``out[src_e] += w_e · g[dst_e]`` over all edges (``(n, F)``): the transpose of :func:`spmm_rows`."""
    src, dst, w, g = _c(src, torch.int64), _c(dst, torch.int64), _c(w, torch.float32), _c(g, torch.float32)
    out = torch.empty(int(n), g.shape[1], dtype=torch.float32)
    _lib().xf_scatter_rows(int(n), int(src.numel()), src.data_ptr(), dst.data_ptr(), w.data_ptr(), g.data_ptr(),
                           int(g.shape[1]), out.data_ptr())
    return out


def prune_spmm(ptr: Tensor, src: Tensor, w: Tensor, node_norm: Tensor, cand: Tensor, locked: Tensor, thr: float,
               h: Tensor) -> tuple[Tensor, Tensor]:
    """Fused Unifews edge rule + propagation: ``(out, keep)`` with ``keep[e] = cand & (locked | |w|·‖h_u‖ ≥ thr)``."""
    ptr, src, w = _c(ptr, torch.int64), _c(src, torch.int64), _c(w, torch.float32)
    node_norm, h = _c(node_norm, torch.float32), _c(h, torch.float32)
    cand, locked = _c(cand, torch.uint8), _c(locked, torch.uint8)
    n = int(ptr.numel() - 1)
    out = torch.empty(n, h.shape[1], dtype=torch.float32)
    keep = torch.empty(int(src.numel()), dtype=torch.uint8)
    _lib().xf_prune_spmm(n, ptr.data_ptr(), src.data_ptr(), w.data_ptr(), node_norm.data_ptr(), cand.data_ptr(),
                         locked.data_ptr(), float(thr), h.data_ptr(), int(h.shape[1]), out.data_ptr(), keep.data_ptr())
    return out, keep.to(torch.bool)


def spmm_t(ptr: Tensor, col: Tensor, val: Tensor, xt: Tensor) -> Tensor:
    """``Y^T = W^T X^T`` with ``W^T`` as CSR (``ptr``, ``col``, ``val``; rows = outputs) and ``xt``
    ``(F_in, N)``; returns ``(F_out, N)``."""
    ptr, col, val, xt = _c(ptr, torch.int64), _c(col, torch.int64), _c(val, torch.float32), _c(xt, torch.float32)
    fout, n = int(ptr.numel() - 1), int(xt.shape[1])
    yt = torch.empty(fout, n, dtype=torch.float32)
    _lib().xf_spmm_t(fout, ptr.data_ptr(), col.data_ptr(), val.data_ptr(), xt.data_ptr(), n, yt.data_ptr())
    return yt


def row_norms(h: Tensor) -> Tensor:
    """``‖h[v]‖`` of an ``(N, F)`` float32 matrix in one pass."""
    h = _c(h, torch.float32)
    out = torch.empty(h.shape[0], dtype=torch.float32)
    _lib().xf_row_norms(int(h.shape[0]), int(h.shape[1]), h.data_ptr(), out.data_ptr())
    return out


def col_norms(x: Tensor) -> Tensor:
    """``‖x[:, j]‖`` of an ``(N, F)`` float32 matrix in one pass (float64 accumulation)."""
    x = _c(x, torch.float32)
    acc = torch.empty(x.shape[1], dtype=torch.float64)
    out = torch.empty(x.shape[1], dtype=torch.float32)
    _lib().xf_col_norms(int(x.shape[0]), int(x.shape[1]), x.data_ptr(), acc.data_ptr(), out.data_ptr())
    return out


def edge_rule(src: Tensor, w: Tensor, node_norm: Tensor, cand: Tensor, loops: Tensor, delta: float) -> Tensor:
    """The Unifews edge mask (``cand & (loop | |w|·‖h_src‖ ≥ δ·mean over cand)``) in two edge passes."""
    src, w, node_norm = _c(src, torch.int64), _c(w, torch.float32), _c(node_norm, torch.float32)
    cand, loops = _c(cand, torch.uint8), _c(loops, torch.uint8)
    keep = torch.empty(int(src.numel()), dtype=torch.uint8)
    _lib().xf_edge_rule(int(src.numel()), src.data_ptr(), w.data_ptr(), node_norm.data_ptr(), cand.data_ptr(),
                        loops.data_ptr(), float(delta), keep.data_ptr())
    return keep.view(torch.bool)


PANEL = 64  # nodes per panel of :func:`spmm_panel` (``XF_NB`` in the C file)


def pack_panels(x: Tensor) -> Tensor:
    """``X`` ``(N, F_in)`` as node panels ``(⌈N/64⌉, F_in, 64)`` (zero-padded), the layout of
    :func:`spmm_panel`."""
    x = _c(x, torch.float32)
    n, f = x.shape
    xp = torch.empty((n + PANEL - 1) // PANEL, f, PANEL, dtype=torch.float32)
    _lib().xf_pack_panels(int(n), int(f), x.data_ptr(), xp.data_ptr())
    return xp


def spmm_panel(ptr: Tensor, col: Tensor, val: Tensor, xp: Tensor, n: int | None = None) -> Tensor:
    """``X W`` for a CSR ``W^T`` (``ptr``, ``col``, ``val``; rows = outputs) and ``X`` packed by
    :func:`pack_panels`; returns ``(N, F_out)`` (a transposed view of the ``(F_out, N)`` result)."""
    ptr, col, val, xp = _c(ptr, torch.int64), _c(col, torch.int64), _c(val, torch.float32), _c(xp, torch.float32)
    fout, fin, npad = int(ptr.numel() - 1), int(xp.shape[1]), int(xp.shape[0] * PANEL)
    yt = torch.empty(fout, npad, dtype=torch.float32)
    _lib().xf_spmm_panel(fout, fin, ptr.data_ptr(), col.data_ptr(), val.data_ptr(), xp.data_ptr(), npad,
                         yt.data_ptr())
    return yt[:, : (npad if n is None else int(n))].t()


def sddmm_t(ii: Tensor, oo: Tensor, xt: Tensor, dt: Tensor) -> Tensor:
    """``g[e] = ⟨xt[ii_e], dt[oo_e]⟩`` (the weight gradient at the kept entries)."""
    ii, oo, xt, dt = _c(ii, torch.int64), _c(oo, torch.int64), _c(xt, torch.float32), _c(dt, torch.float32)
    g = torch.empty(int(ii.numel()), dtype=torch.float32)
    _lib().xf_sddmm_t(int(ii.numel()), ii.data_ptr(), oo.data_ptr(), xt.data_ptr(), dt.data_ptr(), int(xt.shape[1]),
                      g.data_ptr())
    return g


def masked_absmax(w: Tensor, mask: Tensor | None = None) -> float:
    """``max |w|`` over all entries of a 2-D float32 matrix, or over those where ``mask`` is true."""
    w = _c(w, torch.float32)
    m = None if mask is None else _c(mask.view(torch.uint8) if mask.dtype == torch.bool else mask, torch.uint8)
    return float(_lib().xf_masked_absmax(int(w.shape[0]), int(w.shape[1]), w.data_ptr(),
                                         None if m is None else m.data_ptr()))


def weight_rule(w: Tensor, c: Tensor, thr: float, tau_mode: bool, cumulative: bool, mask: Tensor
                ) -> tuple[Tensor, Tensor, int]:
    """The Unifews weight rule and its application in one pass over ``w`` (``(F_in, F_out)`` float32).

    ``tau_mode=False``: keep ``|w_ij|·c_i ≥ thr`` (``c`` = the input's column norms); ``True``: keep
    ``|w_ij| ≥ c_i`` (``c`` = per-row thresholds). ``cumulative``: also require the old ``mask``.
    ``mask`` (contiguous bool) is overwritten in place. Returns ``(w ⊙ mask, rows with any kept
    entry (bool (F_in,)), kept entries)``."""
    w, c = _c(w, torch.float32), _c(c, torch.float32)
    if mask.dtype != torch.bool or not mask.is_contiguous() or mask.shape != w.shape:
        raise ValueError("weight_rule needs a contiguous bool mask of the weight's shape")
    fin, fout = int(w.shape[0]), int(w.shape[1])
    wm = torch.empty_like(w)
    rows = torch.empty(fin, dtype=torch.uint8)
    kept = _lib().xf_weight_rule(fin, fout, w.data_ptr(), c.data_ptr(), float(thr), int(tau_mode), int(cumulative),
                                 mask.data_ptr(), wm.data_ptr(), rows.data_ptr())
    return wm, rows.view(torch.bool), int(kept)


def spmm_rows_skip(ptr: Tensor, col: Tensor, val: Tensor, w: Tensor, rowkeep: Tensor) -> Tensor:
    """``X W`` for a CSR ``X`` (``ptr``, ``col``, ``val``) leaving out the entries of ``X`` whose
    weight row is not in ``rowkeep`` (fully pruned rows contribute nothing)."""
    ptr, col, val, w = _c(ptr, torch.int64), _c(col, torch.int64), _c(val, torch.float32), _c(w, torch.float32)
    rk = _c(rowkeep.view(torch.uint8) if rowkeep.dtype == torch.bool else rowkeep, torch.uint8)
    n = int(ptr.numel() - 1)
    out = torch.empty(n, w.shape[1], dtype=torch.float32)
    _lib().xf_spmm_rows_skip(n, ptr.data_ptr(), col.data_ptr(), val.data_ptr(), w.data_ptr(), int(w.shape[1]),
                             rk.data_ptr(), out.data_ptr())
    return out


def spmm_rows_masked(ptr: Tensor, src: Tensor, val: Tensor, g: Tensor, mask: Tensor, rowkeep: Tensor) -> Tensor:
    """``(Xᵀ G) ⊙ M`` for ``Xᵀ`` as CSR (``ptr``, ``src``, ``val``; rows = weight rows), computing
    only rows in ``rowkeep`` (the others are 0): the weight gradient of a sparse-input layer."""
    ptr, src, val, g = _c(ptr, torch.int64), _c(src, torch.int64), _c(val, torch.float32), _c(g, torch.float32)
    m = _c(mask.view(torch.uint8) if mask.dtype == torch.bool else mask, torch.uint8)
    rk = _c(rowkeep.view(torch.uint8) if rowkeep.dtype == torch.bool else rowkeep, torch.uint8)
    fin = int(ptr.numel() - 1)
    out = torch.empty(fin, g.shape[1], dtype=torch.float32)
    _lib().xf_spmm_rows_masked(fin, ptr.data_ptr(), src.data_ptr(), val.data_ptr(), g.data_ptr(), int(g.shape[1]),
                               m.data_ptr(), rk.data_ptr(), out.data_ptr())
    return out


def edge_threshold(src: Tensor, w: Tensor, node_norm: Tensor, cand: Tensor, delta: float) -> float:
    """The edge rule's threshold ``δ·mean_{e∈cand} |w_e|·‖h_{src_e}‖`` (float32, as :func:`edge_rule`)."""
    src, w, node_norm = _c(src, torch.int64), _c(w, torch.float32), _c(node_norm, torch.float32)
    cand = _c(cand, torch.uint8)
    return float(_lib().xf_edge_threshold(int(src.numel()), src.data_ptr(), w.data_ptr(), node_norm.data_ptr(),
                                          cand.data_ptr(), float(delta)))


def scatter_rows_keep(n: int, src: Tensor, dst: Tensor, w: Tensor, keep: Tensor, g: Tensor) -> Tensor:
    """:func:`scatter_rows` over the edges with ``keep`` only (the backward of a pruned propagation)."""
    src, dst, w, g = _c(src, torch.int64), _c(dst, torch.int64), _c(w, torch.float32), _c(g, torch.float32)
    k = _c(keep.view(torch.uint8) if keep.dtype == torch.bool else keep, torch.uint8)
    out = torch.empty(int(n), g.shape[1], dtype=torch.float32)
    _lib().xf_scatter_rows_keep(int(n), int(src.numel()), src.data_ptr(), dst.data_ptr(), w.data_ptr(), k.data_ptr(),
                                g.data_ptr(), int(g.shape[1]), out.data_ptr())
    return out
