"""Optional peer: the same BiLSTM tagger and Tree-LSTM in DyNet itself, autobatching off and on.

DyNet (``pip install dynet38``, imported lazily; absent → :func:`dynet_available` is False and the
benchmark/tests skip it) fixes its autobatch flag when it is imported, so every setting runs in
its own subprocess (``python -m xflow.autobatch.dynet_peer CONFIG_JSON AUTOBATCH``) which prints
its records as JSON. Same dimensions and the same synthetic data as :mod:`xflow.autobatch.bench`
(DyNet initialises its own random weights, so losses differ; throughput is what is compared).
Implementations are reported as ``dynet-0`` (no autobatching) and ``dynet-1`` (DyNet's agenda).
"""
from __future__ import annotations

import importlib.util
import json
import logging
import statistics
import subprocess
import sys
import time
from typing import Any

__all__ = ["dynet_available", "run_dynet", "dynet_version"]

log = logging.getLogger(__name__)


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


def run_dynet(config: dict, autobatch: tuple[int, ...] = (0, 1), timeout: float = 600) -> list[dict]:
    """Measure DyNet on ``config`` (a :func:`xflow.autobatch.bench.default_config`) per autobatch flag."""
    records: list[dict] = []
    for ab in autobatch:
        proc = subprocess.run([sys.executable, "-m", "xflow.autobatch.dynet_peer", json.dumps(config), str(ab)],
                              capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            log.warning("dynet peer (autobatch=%d) failed: %s", ab, proc.stderr[-2000:])
            continue
        records += json.loads(proc.stdout.strip().splitlines()[-1])
    return records


# ---------------------------------------------------------------- subprocess side
def _bilstm(dy: Any, dims: dict, pc: Any):
    V, emb, H, mlp, T = dims["vocab"], dims["emb"], dims["hidden"], dims["mlp"], dims["n_tags"]
    E = pc.add_lookup_parameters((V, emb))
    fwd = dy.VanillaLSTMBuilder(1, emb, H, pc)
    bwd = dy.VanillaLSTMBuilder(1, emb, H, pc)
    W_f, W_b, b_1 = pc.add_parameters((mlp, H)), pc.add_parameters((mlp, H)), pc.add_parameters(mlp)
    W_2, b_2 = pc.add_parameters((T, mlp)), pc.add_parameters(T)

    def losses(batch):
        out = []
        for s in batch:
            xs = [E[w] for w in s.words]
            f = fwd.initial_state().transduce(xs)
            b = bwd.initial_state().transduce(xs[::-1])[::-1]
            terms = []
            for ft, bt, y in zip(f, b, s.tags):
                z = dy.tanh(dy.affine_transform([b_1, W_f, ft, W_b, bt]))
                terms.append(dy.pickneglogsoftmax(dy.affine_transform([b_2, W_2, z]), y))
            out.append(dy.esum(terms))
        return out

    return losses


def _treelstm(dy: Any, dims: dict, pc: Any):
    V, emb, H, L = dims["vocab"], dims["emb"], dims["hidden"], dims["n_labels"]
    E = pc.add_lookup_parameters((V, emb))
    W_leaf, b_leaf = pc.add_parameters((3 * H, emb)), pc.add_parameters(3 * H)
    U_l, U_r, b = pc.add_parameters((5 * H, H)), pc.add_parameters((5 * H, H)), pc.add_parameters(5 * H)
    W_o, b_o = pc.add_parameters((L, H)), pc.add_parameters(L)

    def part(x, k):
        return dy.pick_range(x, k * H, (k + 1) * H)

    def losses(batch):
        out = []
        for t in batch:
            states = []
            terms = []
            for n, ch in enumerate(t.children):
                if ch is None:
                    pre = dy.affine_transform([b_leaf, W_leaf, E[t.word[n]]])
                    c = dy.cmult(dy.logistic(part(pre, 0)), dy.tanh(part(pre, 2)))
                    h = dy.cmult(dy.logistic(part(pre, 1)), dy.tanh(c))
                else:
                    (hl, cl), (hr, cr) = states[ch[0]], states[ch[1]]
                    pre = dy.affine_transform([b, U_l, hl, U_r, hr])
                    c = (dy.cmult(dy.logistic(part(pre, 0)), dy.tanh(part(pre, 4)))
                         + dy.cmult(dy.logistic(part(pre, 1)), cl) + dy.cmult(dy.logistic(part(pre, 2)), cr))
                    h = dy.cmult(dy.logistic(part(pre, 3)), dy.tanh(c))
                states.append((h, c))
                terms.append(dy.pickneglogsoftmax(dy.affine_transform([b_o, W_o, h]), t.labels[n]))
            out.append(dy.esum(terms))
        return out

    return losses


def _main(cfg: dict, autobatch: int) -> list[dict]:
    import dynet_config

    dynet_config.set(autobatch=autobatch, random_seed=int(cfg.get("seed", 0)) + 1, mem="1024")
    import dynet as dy

    from .bench import PRESETS
    from .models import get_model

    dims = dict(PRESETS[cfg["preset"]][cfg["model"]])
    ref = get_model(cfg["model"], **dims)  # only for the identical synthetic data
    n_batches = int(cfg.get("n_batches", 2))
    data = ref.make_data(int(cfg["batch"]) * n_batches, seed=int(cfg["seed"]) + 1)
    batches = [data[i * cfg["batch"]:(i + 1) * cfg["batch"]] for i in range(n_batches)]
    pc = dy.ParameterCollection()
    build = {"bilstm": _bilstm, "treelstm": _treelstm}[cfg["model"]]
    losses_of = build(dy, dims, pc)
    trainer = dy.SimpleSGDTrainer(pc, float(cfg.get("lr", 1e-3)))
    samples: dict[str, list[float]] = {"train": [], "infer": []}
    loss_val = {}
    for r in range(int(cfg["warmup"]) + int(cfg["repeats"])):
        batch = batches[r % n_batches]
        for mode in cfg.get("modes", ["train", "infer"]):
            t0 = time.perf_counter()
            dy.renew_cg()
            loss = dy.esum(losses_of(batch))
            loss_val[mode] = loss.value()
            if mode == "train":
                loss.backward()
                trainer.update()
            if r >= int(cfg["warmup"]):
                samples[mode].append(time.perf_counter() - t0)
    out = []
    for mode, ts in samples.items():
        if not ts:
            continue
        tput = [int(cfg["batch"]) / t for t in ts]
        out.append({"model": cfg["model"], "preset": cfg["preset"], "batch": int(cfg["batch"]),
                    "impl": f"dynet-{autobatch}", "mode": mode, "metric": "throughput",
                    "value": statistics.median(tput), "q25": min(tput), "q75": max(tput), "n": len(ts),
                    "unit": ref.unit, "threads": 1, "dynet_version": dynet_version()})
        out.append({"model": cfg["model"], "preset": cfg["preset"], "batch": int(cfg["batch"]),
                    "impl": f"dynet-{autobatch}", "mode": mode, "metric": "loss", "value": float(loss_val[mode])})
    return out


if __name__ == "__main__":  # pragma: no cover - exercised through run_dynet
    sys.stdout.write(json.dumps(_main(json.loads(sys.argv[1]), int(sys.argv[2]))) + "\n")
