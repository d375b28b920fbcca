"""The peer: the same models in DyNet itself — same data, same weights, the same graph — for side-by-side runs.

DyNet (``pip install dynet38``, imported lazily; absent → :func:`dynet_available` is False and the
benchmark/tests skip it) fixes its autobatch flag when it is imported, so each flag runs in its
own subprocess (:func:`run_dynet`: ``python -m xflow.autobatch.bench CONFIG_JSON FLAG``, the
benchmark's own entry point, which calls :func:`init_dynet` first). That
subprocess runs the *whole* benchmark (:func:`xflow.autobatch.bench.run`) with DyNet's variants
added, so xflow and DyNet are measured **interleaved in one process and one run** by the
measurement core, and every xflow/DyNet ratio has its interval and verdict.

Fair peers (:func:`build`):

* **weights** are copied from the xflow model (``parameters_from_numpy``), so the first forward of
  a peer gives xflow's loss (tested); both then train with plain SGD (DyNet's lookup parameters
  update sparsely, as xflow's sparse embedding gradients do);
* **graphs** are built by hand here, node for node like xflow's: a zero initial state shared by
  all examples, ``affine_transform([b, W_ih, x, W_hh, h])`` per step (``b = b_ih + b_hh``), then
  either DyNet's fused ``vanilla_lstm_gates/_c/_h`` (``fused``: weights reordered to DyNet's
  ``i, f, o, g`` layout and the forget bias reduced by the 1.0 that op adds) or the elementwise
  cell (``unfused``: ``pick_range`` + ``logistic``/``tanh``/``cmult``/``+``, which is
  ``VanillaLSTMBuilder``'s graph without its forget bias, and xflow's ``fused=False`` graph with
  views in place of ``pick_range``). DyNet has no fused Tree-LSTM op, so its Tree-LSTM peer is
  unfused only; xflow reports both of its own variants.

Implementations are named ``dynet{flag}`` (fused graph) and ``dynet{flag}-unfused``.
"""
from __future__ import annotations

import importlib.util
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .presets import PRESETS

__all__ = ["dynet_available", "run_dynet", "dynet_version", "build", "peer_losses", "init_dynet", "PEER_VARIANTS"]

log = logging.getLogger(__name__)

#: Graph variants a DyNet peer can build per model.
PEER_VARIANTS: dict[str, tuple[str, ...]] = {
    "bilstm": ("fused", "unfused"),
    "bilstm-char": ("fused", "unfused"),
    "treelstm": ("unfused",),
    "parser": ("fused", "unfused"),
}


def dynet_available() -> bool:
    """True when the ``dynet`` module (from ``dynet38``) can be imported."""
    return importlib.util.find_spec("dynet") is not None


def dynet_version() -> str:
    """Installed ``dynet38`` version (``'absent'`` when not installed)."""
    from importlib import metadata

    for dist in ("dynet38", "dyNET38", "dynet"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return "absent"


def run_dynet(config: dict, autobatch: int = 1, timeout: float = 3600) -> list[dict]:
    """Run :func:`xflow.autobatch.bench.run` on ``config`` in a subprocess with DyNet at ``autobatch``.

    Raises:
        RuntimeError: the subprocess failed (its last stderr lines are in the message).
    """
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, "-m", "xflow.autobatch.bench", json.dumps(config), str(int(autobatch))],
                          capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"dynet peer (autobatch={autobatch}) failed: {proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def init_dynet(autobatch: int, seed: int = 0, mem: str = "2048") -> Any:
    """Import DyNet with ``autobatch`` (must be the first DyNet import of the process); returns the module."""
    import dynet_config

    dynet_config.set(autobatch=int(autobatch), random_seed=int(seed) + 1, mem=mem)
    import dynet as dy

    return dy


# ---------------------------------------------------------------- graph builders
def _np(t: Any) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


class _Lstm:
    """One LSTM direction in DyNet with xflow's weights (see module docstring for the two graphs)."""

    def __init__(self, dy: Any, pc: Any, w_ih: Any, w_hh: Any, b_ih: Any, b_hh: Any, fused: bool):
        self.dy, self.fused = dy, fused
        wi, wh, b = _np(w_ih), _np(w_hh), _np(b_ih) + _np(b_hh)
        self.H = wh.shape[1]
        if fused:  # torch i, f, g, o -> DyNet i, f, o, g; DyNet adds 1.0 to the forget preactivation
            H = self.H
            perm = np.r_[0:2 * H, 3 * H:4 * H, 2 * H:3 * H]
            wi, wh, b = wi[perm], wh[perm], b[perm].copy()
            b[H:2 * H] -= 1.0
        self.p = [pc.parameters_from_numpy(a) for a in (wi, wh, b)]

    def new_graph(self) -> None:
        dy = self.dy
        self.Wx, self.Wh, self.b = (p.expr(True) for p in self.p)

    def step(self, x: Any, h: Any, c: Any) -> tuple[Any, Any]:
        dy, H = self.dy, self.H
        if self.fused:
            gates = dy.vanilla_lstm_gates(x, h, self.Wx, self.Wh, self.b)
            c2 = dy.vanilla_lstm_c(c, gates)
            return dy.vanilla_lstm_h(c2, gates), c2
        pre = dy.affine_transform([self.b, self.Wx, x, self.Wh, h])
        i = dy.logistic(dy.pick_range(pre, 0, H))
        f = dy.logistic(dy.pick_range(pre, H, 2 * H))
        g = dy.tanh(dy.pick_range(pre, 2 * H, 3 * H))
        o = dy.logistic(dy.pick_range(pre, 3 * H, 4 * H))
        c2 = dy.cmult(f, c) + dy.cmult(i, g)
        return dy.cmult(o, dy.tanh(c2)), c2

    def sequence(self, xs: Sequence[Any], zero: Any, reverse: bool = False) -> list[Any]:
        h = c = zero
        out = [None] * len(xs)
        order = range(len(xs) - 1, -1, -1) if reverse else range(len(xs))
        for t in order:
            h, c = self.step(xs[t], h, c)
            out[t] = h
        return out


class Peer:
    """A DyNet model with xflow's weights: ``losses(batch)`` records one loss expression per example."""

    def __init__(self, dy: Any, pc: Any, new_graph: Callable[[], None], losses: Callable[[Sequence[Any]], list[Any]]):
        self.dy, self.pc, self._new_graph, self._losses = dy, pc, new_graph, losses

    def loss(self, batch: Sequence[Any]) -> Any:
        """Renew DyNet's graph and return the summed loss expression of ``batch`` (not yet evaluated)."""
        self.dy.renew_cg()
        self._new_graph()
        return self.dy.esum(self._losses(batch))


def _tagger(dy: Any, pc: Any, model: Any, fused: bool, chars: bool) -> Peer:
    lstm = model.lstm
    fw = _Lstm(dy, pc, lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0, fused)
    bw = _Lstm(dy, pc, lstm.weight_ih_l0_reverse, lstm.weight_hh_l0_reverse, lstm.bias_ih_l0_reverse,
               lstm.bias_hh_l0_reverse, fused)
    E = pc.lookup_parameters_from_numpy(_np(model.E))
    pW_f, pW_b, pb_1 = (pc.parameters_from_numpy(_np(t)) for t in (model.W_f, model.W_b, model.b_1))
    pW_2, pb_2 = pc.parameters_from_numpy(_np(model.out.weight)), pc.parameters_from_numpy(_np(model.out.bias))
    H = fw.H
    if chars:
        cl = model.char_lstm
        cfw = _Lstm(dy, pc, cl.weight_ih_l0, cl.weight_hh_l0, cl.bias_ih_l0, cl.bias_hh_l0, fused)
        cbw = _Lstm(dy, pc, cl.weight_ih_l0_reverse, cl.weight_hh_l0_reverse, cl.bias_ih_l0_reverse,
                    cl.bias_hh_l0_reverse, fused)
        C = pc.lookup_parameters_from_numpy(_np(model.C))
    st: dict[str, Any] = {}

    def new_graph() -> None:
        for ls in (fw, bw) + ((cfw, cbw) if chars else ()):
            ls.new_graph()
        st["W_f"], st["W_b"], st["b_1"], st["W_2"], st["b_2"] = (p.expr(True) for p in (pW_f, pW_b, pb_1, pW_2, pb_2))
        st["zero"] = dy.zeros(H)
        if chars:
            st["czero"] = dy.zeros(cfw.H)

    def losses(batch: Sequence[Any]) -> list[Any]:
        W_f, W_b, b_1, W_2, b_2, zero = st["W_f"], st["W_b"], st["b_1"], st["W_2"], st["b_2"], st["zero"]
        out = []
        for s in batch:
            if chars:
                xs = []
                for w, cs in zip(s.words, s.chars):
                    ce = [dy.lookup(C, c) for c in cs]
                    f = cfw.sequence(ce, st["czero"])[-1]
                    b = cbw.sequence(ce, st["czero"], reverse=True)[0]
                    xs.append(dy.concatenate([dy.lookup(E, w), f, b]))
            else:
                xs = [dy.lookup(E, w) for w in s.words]
            f = fw.sequence(xs, zero)
            b = bw.sequence(xs, zero, reverse=True)
            terms = []
            for ft, bt, y in zip(f, b, s.tags):
                z = dy.tanh(dy.affine_transform([b_1, W_f, ft, W_b, bt]))
                terms.append(dy.pickneglogsoftmax(dy.affine_transform([b_2, W_2, z]), y))
            out.append(dy.esum(terms))
        return out

    return Peer(dy, pc, new_graph, losses)


def _treelstm(dy: Any, pc: Any, model: Any) -> Peer:
    H = int(model.u_l.shape[1])
    E = pc.lookup_parameters_from_numpy(_np(model.E))
    ps = {k: pc.parameters_from_numpy(_np(getattr(model, k))) for k in ("w_leaf", "b_leaf", "u_l", "u_r", "b")}
    ps["W_o"], ps["b_o"] = pc.parameters_from_numpy(_np(model.out.weight)), pc.parameters_from_numpy(_np(model.out.bias))
    st: dict[str, Any] = {}

    def new_graph() -> None:
        for k, p in ps.items():
            st[k] = p.expr(True)

    def part(x: Any, k: int) -> Any:
        return dy.pick_range(x, k * H, (k + 1) * H)

    def losses(batch: Sequence[Any]) -> list[Any]:
        out = []
        for t in batch:
            states: list[tuple[Any, Any]] = []
            terms = []
            for n, ch in enumerate(t.children):
                if ch is None:
                    pre = dy.affine_transform([st["b_leaf"], st["w_leaf"], dy.lookup(E, t.word[n])])
                    c = dy.cmult(dy.logistic(part(pre, 0)), dy.tanh(part(pre, 2)))
                    h = dy.cmult(dy.logistic(part(pre, 1)), dy.tanh(c))
                else:
                    (hl, cl), (hr, cr) = states[ch[0]], states[ch[1]]
                    pre = dy.affine_transform([st["b"], st["u_l"], hl, st["u_r"], hr])
                    c = (dy.cmult(dy.logistic(part(pre, 0)), dy.tanh(part(pre, 4)))
                         + dy.cmult(dy.logistic(part(pre, 1)), cl) + dy.cmult(dy.logistic(part(pre, 2)), cr))
                    h = dy.cmult(dy.logistic(part(pre, 3)), dy.tanh(c))
                states.append((h, c))
                terms.append(dy.pickneglogsoftmax(dy.affine_transform([st["b_o"], st["W_o"], h]), t.labels[n]))
            out.append(dy.esum(terms))
        return out

    return Peer(dy, pc, new_graph, losses)


def _parser(dy: Any, pc: Any, m: Any, fused: bool) -> Peer:
    """The transition parser in DyNet with ``m``'s weights, driven by the same
    :func:`~xflow.autobatch.models.parser.parse_lockstep` (one ``dy.forward`` of every sentence's
    scores per step, DyNet's incremental forward)."""
    from .models.parser import parse_lockstep  # torch: this module stays light for the subprocess

    lstm = m.lstm
    fw = _Lstm(dy, pc, lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0, fused)
    bw = _Lstm(dy, pc, lstm.weight_ih_l0_reverse, lstm.weight_hh_l0_reverse, lstm.bias_ih_l0_reverse,
               lstm.bias_hh_l0_reverse, fused)
    sl, al = m.stack_lstm, m.act_lstm
    sw = _Lstm(dy, pc, sl.weight_ih_l0, sl.weight_hh_l0, sl.bias_ih_l0, sl.bias_hh_l0, fused)
    aw = _Lstm(dy, pc, al.weight_ih_l0, al.weight_hh_l0, al.bias_ih_l0, al.bias_hh_l0, fused)
    E = pc.lookup_parameters_from_numpy(_np(m.E))
    A = pc.lookup_parameters_from_numpy(_np(m.A))
    names = ("pad", "C_h", "C_d", "c_b", "W_s", "W_b", "W_a", "b_p")
    ps = {k: pc.parameters_from_numpy(_np(getattr(m, k))) for k in names}
    ps["W_o"], ps["b_o"] = pc.parameters_from_numpy(_np(m.out.weight)), pc.parameters_from_numpy(_np(m.out.bias))
    st: dict[str, Any] = {}

    class Backend:
        def __init__(self):
            zs, za = dy.zeros(sw.H), dy.zeros(aw.H)
            self.stack0, self.act0 = (zs, zs), (za, za)
            self.pad = st["pad"]
            self.zero = dy.zeros(fw.H)

        def token_vectors(self, s):
            xs = [dy.lookup(E, w) for w in s.words]
            f = fw.sequence(xs, self.zero)
            b = bw.sequence(xs, self.zero, reverse=True)
            return [dy.concatenate([ft, bt]) for ft, bt in zip(f, b)]

        @staticmethod
        def state_h(s):
            return s[0]

        @staticmethod
        def push(below, x):
            return sw.step(x, below[0], below[1])

        @staticmethod
        def act_step(s, a):
            return aw.step(dy.lookup(A, a), s[0], s[1])

        @staticmethod
        def compose(h, d):
            return dy.tanh(dy.affine_transform([st["c_b"], st["C_h"], h, st["C_d"], d]))

        @staticmethod
        def scores(sh, buf, ah):
            p = dy.tanh(dy.affine_transform([st["b_p"], st["W_s"], sh, st["W_b"], buf, st["W_a"], ah]))
            return dy.affine_transform([st["b_o"], st["W_o"], p])

        @staticmethod
        def values(scores):
            dy.forward(scores)
            return [s.npvalue().tolist() for s in scores]

        @staticmethod
        def ce(s, target):
            return dy.pickneglogsoftmax(s, target)

    def new_graph() -> None:
        for ls in (fw, bw, sw, aw):
            ls.new_graph()
        for k, p in ps.items():
            st[k] = p.expr(True)

    def losses(batch):
        return [dy.esum(c.losses) for c in parse_lockstep(Backend(), batch)]

    return Peer(dy, pc, new_graph, losses)


def build(dy: Any, model: Any, variant: str = "fused") -> Peer:
    """The DyNet peer of xflow ``model`` (a :class:`~xflow.autobatch.models.DynamicModel`) with its weights."""
    if variant not in PEER_VARIANTS.get(model.name, ()):
        raise ValueError(f"no {variant!r} DyNet peer for model {model.name!r} (have {PEER_VARIANTS.get(model.name)})")
    pc = dy.ParameterCollection()
    fused = variant == "fused"
    if model.name in ("bilstm", "bilstm-char"):
        return _tagger(dy, pc, model, fused, chars=model.name == "bilstm-char")
    if model.name == "treelstm":
        return _treelstm(dy, pc, model)
    if model.name == "parser":
        return _parser(dy, pc, model, fused)
    raise ValueError(f"no DyNet peer for model {model.name!r}")


def peer_losses(models: Sequence[str], preset: str = "tiny", batch: int = 4, timeout: float = 600) -> dict[str, tuple[float, float]]:
    """``{"model/variant": (xflow eager loss, DyNet peer loss)}`` on one minibatch, in a subprocess."""
    proc = subprocess.run([sys.executable, "-m", "xflow.autobatch.dynet_peer", "losses", preset, str(batch), *models],
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"dynet peer losses failed: {proc.stderr[-3000:]}")
    return {k: tuple(v) for k, v in json.loads(proc.stdout.strip().splitlines()[-1]).items()}


def _losses_main(preset: str, batch: int, models: Sequence[str]) -> dict[str, list[float]]:
    import torch

    dy = init_dynet(1)
    from .models import get_model

    out = {}
    keep = []  # DyNet reuses a freed ParameterCollection's memory under live expressions: keep peers alive
    for name in models:
        torch.manual_seed(0)
        model = get_model(name, **PRESETS[preset][name])
        data = model.make_data(batch, seed=3)
        with torch.no_grad():
            ref = float(model.loss_eager(data))
        for v in PEER_VARIANTS[name]:
            keep.append(build(dy, model, v))
            out[f"{name}/{v}"] = [ref, float(keep[-1].loss(data).value())]
    return out


if __name__ == "__main__":  # pragma: no cover - exercised through peer_losses
    if sys.argv[1:2] != ["losses"]:
        sys.exit("usage: python -m xflow.autobatch.dynet_peer losses PRESET BATCH MODEL... "
                 "(the benchmark's DyNet subprocess is python -m xflow.autobatch.bench)")
    sys.stdout.write(json.dumps(_losses_main(sys.argv[2], int(sys.argv[3]), sys.argv[4:]), default=str) + "\n")
