"""``autotune``: measure every applicable algorithm per conv layer on one device, pick the fastest.

For each ``nn.Conv2d`` the input shape is recorded with a forward hook on ``example_input``; each
distinct (layer configuration, input shape) is then timed once per candidate algorithm on a random
input of that shape (inference, no grad; interleaved rounds, median). ``default`` is always a
candidate, so the tuned model is never slower than the framework beyond timing noise. Choices are
cached on disk per (device, torch version, threads, layer configuration, input shape, candidate
set) in ``cache_dir('algsel')/autotune.json``, so re-tuning the same model is instant. The result
carries a per-layer pandas report and a replayable ``{layer: algorithm}`` dict.
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from xflow import paths
from xflow.algsel.algorithms import ConvConfig, get_algorithm, list_algorithms
from xflow.algsel.measure import interleaved_times, iqr_ms, median_ms, min_ms
from xflow.algsel.swap import conv_layers, swap_conv2d
from xflow.errors import DeviceUnavailable, XflowError

__all__ = ["autotune", "TuneResult", "layer_input_shapes", "default_cache_path", "load_cache"]

log = logging.getLogger(__name__)


def default_cache_path() -> Path:
    """``cache_dir('algsel')/autotune.json``."""
    return paths.cache_dir("algsel") / "autotune.json"


def load_cache(path: Path | None = None) -> dict[str, Any]:
    """The on-disk choice cache (empty dict if absent; a corrupt file is reported and removed)."""
    from xflow.safeio import read_checked_json

    data = read_checked_json(Path(path or default_cache_path()))
    return data if isinstance(data, dict) else {}


def _save_cache(entries: dict[str, Any], path: Path) -> None:
    """Merge ``entries`` into the cache file: locked read-merge-write, atomic, content-checked."""
    from xflow.safeio import file_lock, write_checked_json

    with file_lock(path):
        merged = load_cache(path)
        merged.update(entries)
        write_checked_json(path, merged, sort_keys=True, indent=0)


def layer_input_shapes(model: nn.Module, example_input: torch.Tensor) -> dict[str, tuple[int, ...]]:
    """Input shape of every conv layer for ``example_input`` (one no-grad forward with hooks)."""
    shapes: dict[str, tuple[int, ...]] = {}
    handles = []
    for name, m in conv_layers(model):
        def hook(mod, inp, _out, name=name):
            shapes.setdefault(name, tuple(inp[0].shape))
        handles.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(example_input)
    finally:
        for h in handles:
            h.remove()
    return shapes


@dataclass
class TuneResult:
    """What :func:`autotune` returns.

    Attributes:
        model (nn.Module): the tuned copy (shares weights with the input model on the same device).
        choices (dict[str, str]): ``{layer: algorithm}``; pass it to :func:`swap_conv2d` to replay.
        report (pandas.DataFrame): one row per conv layer: configuration, input shape, the median
            ms of each candidate (NaN where unsupported or pruned), choice, speed-up over default,
            whether the choice came from the cache.
        device (str): the device tuned for; ``device_label`` the machine descriptor.
    """

    model: nn.Module
    choices: dict[str, str]
    report: Any
    device: str
    device_label: str
    rows: list[dict] = field(default_factory=list)

    def records(self) -> list[dict]:
        """Long-format records (one metric per row) for :func:`xflow.results.write_records`."""
        out = []
        for r in self.rows:
            base = {"layer": r["layer"], "config": r["config"], "input_shape": r["input_shape"],
                    "choice": r["choice"], "cached": r["cached"]}
            for algo, ms in r["times_ms"].items():
                out.append({**base, "algorithm": algo, "metric": "layer_ms", "value": ms})
                out.append({**base, "algorithm": algo, "metric": "layer_median_ms",
                            "value": r["median_ms"].get(algo, ms)})
        return out

    def to_json(self) -> dict:
        """Replayable record: device, choices and per-layer timings."""
        return {"device": self.device, "device_label": self.device_label, "choices": self.choices,
                "layers": self.rows}

    def save(self, path: Path | str) -> Path:
        """Write :meth:`to_json` to ``path``; replay with
        ``swap_conv2d(model, json.load(open(path))["choices"])``."""
        from xflow.safeio import atomic_write_json

        return atomic_write_json(path, self.to_json(), indent=1, default=str)


def _key(device_label: str, device: str, cfg: ConvConfig, shape: tuple, cands: list[str]) -> str:
    blob = json.dumps({"device": device_label, "kind": device.split(":")[0], "torch": torch.__version__,
                       "threads": torch.get_num_threads(), "cfg": cfg.as_dict(), "shape": list(shape),
                       "candidates": sorted(cands)}, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:20]


def autotune(
    model: nn.Module,
    example_input: torch.Tensor,
    device: str = "cpu",
    *,
    candidates: list[str] | None = None,
    repeats: int = 5,
    warmup: int = 1,
    use_cache: bool = True,
    refresh: bool = False,
    cache_path: Path | None = None,
    prune_factor: float | None = 20.0,
    min_gain: float = 0.05,
    confirm: bool = True,
) -> TuneResult:
    """Pick the fastest applicable algorithm for each conv layer of ``model`` on ``device``.

    Args:
        model (nn.Module): the model (not modified; on another device it is copied there).
        example_input (Tensor): a representative input (its shape decides each layer's shape).
        device (str, optional): ``'cpu'`` or ``'cuda[:i]'``. (default: :obj:`'cpu'`)
        candidates (list[str], optional): algorithms to consider (``default`` is always added).
        repeats, warmup (int, optional): interleaved timing rounds per layer. (default: 5, 1)
        use_cache / refresh (bool, optional): read/write the on-disk choice cache / ignore hits.
        prune_factor (float, optional): stop timing a candidate whose first call is this many
            times slower than ``default``. (default: 20)
        min_gain (float, optional): keep ``default`` unless the best is at least this fraction
            faster, guarding against noise and wrapper overhead. (default: 0.05)
        confirm (bool, optional): re-time a non-default winner against ``default`` alone, with
            twice the rounds, and keep it only if it still wins by ``min_gain``. (default: True)

    Each candidate's cost is the *fastest* of its interleaved rounds (noise on a shared machine
    only adds time); the report's ``<algo>_ms`` columns are these best-of-``repeats`` times and
    ``<algo>_median_ms`` is kept in :attr:`TuneResult.rows`.

    Raises:
        DeviceUnavailable: ``device`` is CUDA but no GPU is visible.
        UnknownName: an unknown candidate name.
    """
    import pandas as pd

    from xflow.runtime.device import describe_device

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceUnavailable(f"device {device!r} requested but torch sees no CUDA GPU; use device='cpu'")
    cands = [get_algorithm(c).name for c in (candidates or list_algorithms())]
    if "default" not in cands:
        cands.insert(0, "default")
    cands = list(dict.fromkeys(cands))
    label = describe_device(device).label()
    params = list(model.parameters())
    want = torch.device(device)
    if params and (params[0].device.type != want.type
                   or (want.index is not None and params[0].device.index != want.index)):
        model = copy.deepcopy(model).to(device)
    model_was_training = model.training
    model.eval()
    x = example_input.to(device)
    shapes = layer_input_shapes(model, x)
    cache_path = Path(cache_path) if cache_path else default_cache_path()
    cache = load_cache(cache_path) if use_cache else {}
    new_entries: dict[str, Any] = {}
    measured: dict[str, dict] = {}  # key -> {"times_ms", "iqr_ms", "cached"}
    rows = []
    gen = torch.Generator(device="cpu").manual_seed(0)
    from tqdm.auto import tqdm

    layers = conv_layers(model)
    for name, conv in tqdm(layers, desc="autotune layers", disable=None, leave=False):
        if name not in shapes:
            log.info("conv %s not reached by example_input; left as default", name)
            continue
        cfg, shape = ConvConfig.from_module(conv), shapes[name]
        applicable = [c for c in cands if get_algorithm(c).supports(cfg) is None]
        key = _key(label, device, cfg, shape, cands)
        if key not in measured:
            if use_cache and not refresh and key in cache:
                measured[key] = {**cache[key], "cached": True}
            else:
                xin = torch.randn(shape, generator=gen).to(device)
                if isinstance(conv.padding, str) or conv.padding_mode != "zeros":
                    xin = torch.nn.functional.pad(xin, conv._reversed_padding_repeated_twice,
                                                  mode="constant" if conv.padding_mode == "zeros" else conv.padding_mode)
                w, b = conv.weight.detach(), None if conv.bias is None else conv.bias.detach()
                # each candidate with its own state: timed as deployed (weight transforms cached)
                fns = {c: (lambda a=get_algorithm(c), st={}: a.conv2d(
                    xin, w, b, cfg.stride, cfg.padding, cfg.dilation, cfg.groups, st)) for c in applicable}
                with torch.no_grad():
                    times = interleaved_times(fns, repeats=repeats, warmup=warmup, device=device,
                                              prune_factor=prune_factor, baseline="default")
                tms = {c: min_ms(t) for c, t in times.items()}
                best = min(tms, key=tms.get)
                confirmed = None
                if confirm and best != "default" and tms[best] <= (1.0 - min_gain) * tms["default"]:
                    with torch.no_grad():
                        again = interleaved_times({c: fns[c] for c in ("default", best)},
                                                  repeats=2 * repeats, warmup=0, device=device, seed=1)
                    a_def, a_best = min_ms(again["default"]), min_ms(again[best])
                    confirmed = a_best <= (1.0 - min_gain) * a_def
                    tms["default"] = min(tms["default"], a_def)
                    tms[best] = min(tms[best], a_best)
                    times["default"] += again["default"]
                    times[best] += again[best]
                measured[key] = {"times_ms": tms, "confirmed": confirmed,
                                 "median_ms": {c: median_ms(t) for c, t in times.items()},
                                 "iqr_ms": {c: iqr_ms(t) for c, t in times.items()},
                                 "n": {c: len(t) for c, t in times.items()}, "cached": False}
                new_entries[key] = {k: v for k, v in measured[key].items() if k != "cached"}
                if use_cache:  # saved as each layer finishes: an interrupted tune keeps its work
                    _save_cache({key: new_entries[key]}, cache_path)
        m = measured[key]
        times_ms = m["times_ms"]
        medians = m.get("median_ms", times_ms)
        best = min(times_ms, key=times_ms.get)
        if best != "default" and (times_ms[best] > (1.0 - min_gain) * times_ms["default"]
                                  or m.get("confirmed") is False):
            best = "default"
        unsupported = {c: get_algorithm(c).supports(cfg) for c in cands if c not in applicable}
        rows.append({
            "layer": name, "config": cfg.short(), "input_shape": list(shape), "choice": best,
            "default_ms": times_ms["default"], "best_ms": times_ms[best],
            "speedup": times_ms["default"] / times_ms[best] if times_ms[best] else float("nan"),
            "cached": m["cached"], "confirmed": m.get("confirmed"), "times_ms": times_ms,
            "median_ms": medians,
            "unsupported": {c: r for c, r in unsupported.items()},
        })
    if not rows:
        raise XflowError("the model has no Conv2d layer reached by example_input; nothing to tune")
    choices = {r["layer"]: r["choice"] for r in rows}
    # layers that keep ``default`` stay plain nn.Conv2d: no wrapper overhead at all
    tuned = swap_conv2d(model, {k: v for k, v in choices.items() if v != "default"})
    model.train(model_was_training)
    tuned.train(model_was_training)
    frame_rows = []
    for r in rows:
        fr = {k: v for k, v in r.items() if k not in ("times_ms", "median_ms", "unsupported")}
        fr["input_shape"] = "×".join(map(str, r["input_shape"]))
        for c in cands:
            fr[f"{c}_ms"] = r["times_ms"].get(c, float("nan"))
        fr["why_not"] = "; ".join(f"{c}: {why}" for c, why in r["unsupported"].items())
        frame_rows.append(fr)
    report = pd.DataFrame(frame_rows)
    return TuneResult(model=tuned, choices=choices, report=report, device=device, device_label=label, rows=rows)
