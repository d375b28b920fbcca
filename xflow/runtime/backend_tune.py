"""Measured choice of the convolution kernel per configuration (``LowerOptions(onednn="tuned")``).

torch offers several CPU paths for a (fused) convolution: ``F.conv2d`` — whose own heuristic sends
1×1 and small convolutions at one thread to an im2col+GEMM kernel — followed by the activation;
oneDNN called directly with prepacked weights and the activation / residual add fused in, which
has ~60 µs more fixed cost per call on this CPU; and, for 3×3 / 5×5 stride-1 convolutions,
NNPACK's Winograd kernel (NCHW; converted back to channels-last). Which one wins depends on the
shape, so for every distinct configuration (input and weight shape, stride, padding, dilation,
groups, fused ops) the lines the emitter would produce are built and timed with the measurement
core (one intra-op thread, thread CPU time, A/A control of the prior). The prior is the shape rule
of ``onednn="auto"`` (:func:`~xflow.runtime.backend_ops.prefers_onednn`); another path is chosen
only when :meth:`~xflow.runtime.measure.Measurement.best` (Bonferroni over the candidates) finds it
significantly faster — so on a noisy machine, where nothing is significant, tuning falls back to
the rule and not to the slower of the two paths (version 2 kept ``F.conv2d``, which sent 54 of
GoogLeNet's 57 convolutions to im2col+GEMM). Choices are cached
under ``cache_dir('backend', 'conv_choice')`` by configuration, device and torch version.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import replace
from typing import Any

import numpy as np

from xflow.paths import cache_dir
from xflow.runtime.backend_ops import Ctx, emit, prefers_onednn
from xflow.runtime.backend_prelude import PRELUDE
from xflow.runtime.measure import Variant, measure

__all__ = ["conv_choice", "measure_conv", "conv_key", "CHOICE_VERSION"]

log = logging.getLogger(__name__)

#: Bump when the candidates or the decision rule change.
CHOICE_VERSION = 3
_PRELUDE_ENV: dict[str, Any] | None = None


def _prelude() -> dict[str, Any]:
    global _PRELUDE_ENV
    if _PRELUDE_ENV is None:
        env: dict[str, Any] = {}
        exec(compile(PRELUDE, "<backend prelude>", "exec"), env)  # noqa: S102 - our own source
        _PRELUDE_ENV = env
    return _PRELUDE_ENV


def conv_key(c: Ctx, threads: int = 1) -> str:
    """Content hash of a convolution configuration (shapes, attributes, fused ops, layout, threads,
    torch version): the cache key of its choice."""
    import torch

    f = c.fused
    act = f.get("act")
    blob = json.dumps({"v": CHOICE_VERSION, "in": c.in_shapes[:3], "out": c.out_shapes[:1],
                       "attrs": {k: v for k, v in c.node.attrs.items() if not isinstance(v, np.ndarray)},
                       "bias": c.has(2), "bn": "bn" in f, "add": "add" in f,
                       "act": [act[0], act[1]] if act else None, "cl": c.opts.channels_last,
                       "threads": threads, "torch": torch.__version__}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _candidate(c: Ctx, impl: str):
    """A zero-argument call running the line the emitter produces for ``impl`` on random tensors."""
    import torch

    derived: list[tuple[list[str], str]] = []

    def derive(hints: list[str], expr: str) -> list[str]:
        names = [f"d{len(derived)}_{i}" for i in range(len(hints))]
        derived.append((names, expr))
        return [f"self.{n}" for n in names]

    fused = dict(c.fused)
    if "add" in fused:
        fused["add"] = "other"
    if "bn" in fused:
        fused["bn"] = {**fused["bn"], "scale": "self.bn_s", "bias": "self.bn_b", "mean": "self.bn_m", "var": "self.bn_v"}
    x = ["x", "self.w"] + (["self.b"] if c.has(2) else [])
    ctx = replace(c, x=x + [None] * (len(c.x) - len(x)), y=["y"], fused={**fused, "impl": impl}, derive_fn=derive)
    line = emit(ctx)
    rng = torch.Generator().manual_seed(0)

    class _Self:
        pass

    me = _Self()
    wshape = c.in_shapes[1]
    me.w = torch.randn(*wshape, generator=rng) * 0.1
    if c.has(2):
        me.b = torch.randn(wshape[0], generator=rng)
    if "bn" in fused:
        me.bn_s, me.bn_b, me.bn_m = (torch.randn(wshape[0], generator=rng) for _ in range(3))
        me.bn_v = torch.rand(wshape[0], generator=rng) + 0.5
    env = dict(_prelude())
    env["self"] = me
    with torch.no_grad():
        for names, expr in derived:
            val = eval(expr, env)  # noqa: S307 - emitted by us
            vals = val if len(names) > 1 else (val,)
            for n, v in zip(names, vals):
                setattr(me, n, v)
        mf = torch.channels_last if c.opts.channels_last and len(c.in_shapes[0]) == 4 else torch.contiguous_format
        loc = {"x": torch.randn(*c.in_shapes[0], generator=rng).contiguous(memory_format=mf)}
        if "add" in fused:
            loc["other"] = torch.randn(*c.out_shapes[0], generator=rng).contiguous(memory_format=mf)
    code = compile(line, "<conv candidate>", "exec")
    base = dict(loc)

    def run() -> None:
        exec(code, env, dict(base))  # noqa: S102
    return run, line


def measure_conv(c: Ctx, *, rounds: int = 7, warmup: int = 2) -> tuple[Any, str, list[str]]:
    """Time every kernel the emitter can produce for ``c`` at one thread, interleaved, through the
    measurement core: ``(measurement, prior, candidates)``; the baseline is ``prior``, the shape
    rule's choice (:func:`~xflow.runtime.backend_ops.prefers_onednn`)."""
    import torch

    threads = 1
    prev = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        prior = "onednn" if prefers_onednn(c) else "native"
        impls = [prior] + [i for i in ("native", "onednn") if i != prior] + (["nnpack"] if _nnpack_ok(c) else [])
        vs = {i: Variant(_candidate(c, i)[0], threads=1) for i in impls}
        lg = logging.getLogger("xflow.runtime.measure")
        level = lg.level
        lg.setLevel(logging.ERROR)  # one warning per convolution on a busy machine is noise; `busy` is kept
        try:
            with torch.no_grad():
                m = measure(vs, baseline=prior, aa=True, warmup=warmup, rounds=rounds)
        finally:
            lg.setLevel(level)
    finally:
        torch.set_num_threads(prev)
    return m, prior, impls


def conv_choice(c: Ctx, *, rounds: int = 7, warmup: int = 2, use_cache: bool = True) -> str:
    """``"native"``, ``"onednn"`` or ``"nnpack"`` for the convolution described by ``c`` (see module
    docstring)."""
    path = cache_dir("backend", "conv_choice") / f"{conv_key(c)}.json"
    if use_cache and path.exists():
        try:
            return json.loads(path.read_text())["choice"]
        except (ValueError, KeyError):
            log.warning("corrupt conv-choice cache entry %s: measuring again", path)
    m, prior, impls = measure_conv(c, rounds=rounds, warmup=warmup)
    best, cmp = m.best(impls[1:])
    rec = {"choice": best, "prior": prior, **{f"{i}_ms": m.median_ms(i) for i in impls},
           "comparison": cmp.as_dict() if cmp else None, "busy": m.busy}
    if not m.busy:  # a decision taken on a busy machine is not cached
        tmp = path.with_suffix(f".tmp{id(rec)}")
        tmp.write_text(json.dumps(rec))
        tmp.replace(path)
    log.debug("conv %s: %s (%s)", c.name, best, {i: round(m.median_ms(i), 3) for i in impls})
    return best


def _nnpack_ok(c: Ctx) -> bool:
    """NNPACK's spatial convolution applies: 2-D, 3×3 or 5×5, stride 1, no dilation, no groups, fp32."""
    import torch

    a = c.node.attrs
    w = c.in_shapes[1]
    return (c.opts.device == "cpu" and w is not None and len(w) == 4 and tuple(w[2:]) in ((3, 3), (5, 5))
            and list(a.get("strides", [1, 1])) == [1, 1] and list(a.get("dilations", [1, 1])) == [1, 1]
            and int(a.get("group", 1)) == 1 and bool(torch._nnpack_available()))
