"""Model zoo: real PyTorch models → plain ONNX with deterministic random weights, cached and checked.

Every entry of :data:`REGISTRY` is a :class:`ZooModel`: a builder ``build(**cfg) -> nn.Module``
(torchvision code or a plain-torch net from :mod:`xflow.graphs.zoo_nets`), an input builder
``inputs(batch, **cfg) -> tuple[Tensor, ...]`` and the default config. No pretrained weights are
ever downloaded: weights come from ``torch.manual_seed(cfg['seed'])`` and the model's own init.

:func:`export` traces the model with torch's TorchScript-based ONNX exporter (``dynamo=False``,
opset 17, static shapes, weights as initializers; it falls back to the ``torch.export``-based exporter
if the legacy one fails), runs the ONNX model in ONNX Runtime with graph optimizations disabled on
the same input as torch, and raises :class:`~xflow.errors.ExportError` when outputs differ by more
than ``1e-3 × max|torch output|`` (relative, because some random-init nets, e.g.
mobilenet_v3_small, produce outputs of magnitude ~1e-9). Results are cached in ``cache_dir('zoo')`` under a content hash
of (name, batch, full config, torch version, opset, :data:`ZOO_VERSION`).

Note: the legacy exporter folds eval-mode BatchNorm into the preceding Conv, so CNNs come out as
Conv(+bias) → Relu chains.

Adding a model is one registry entry::

    REGISTRY["alexnet"] = ZooModel(
        "alexnet", lambda num_classes, **_: torchvision.models.alexnet(weights=None, num_classes=num_classes),
        _image_inputs, dict(image_size=224, num_classes=1000), "AlexNet (torchvision)")
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xflow import paths
from xflow.errors import ExportError, UnknownName
from xflow.graphs.model import read_model
from xflow.safeio import discard_corrupt, file_lock, read_checked_json, sha256_file, write_checked_json

__all__ = [
    "ZooModel",
    "REGISTRY",
    "OPSET",
    "ZOO_VERSION",
    "list_models",
    "TAGS",
    "describe",
    "resolve_config",
    "torch_model",
    "example_input",
    "export",
    "load",
    "cache_key",
]

log = logging.getLogger(__name__)

OPSET = 17
"""ONNX opset of every export."""

ZOO_VERSION = 1
"""Bump when a builder changes so stale cache entries are not reused."""

TAGS = ("rewrites", "rl", "algsel", "parallel", "runtime")
"""Techniques a zoo model can be tagged with (who uses it in benchmarks, notebooks and tests)."""

_CHECK_RTOL = 1e-3  # export check: max|onnx - torch| <= _CHECK_RTOL * max|torch|


@dataclass(frozen=True)
class ZooModel:
    """One zoo entry: how to build the torch model and its example input.

    Attributes:
        name: registry key.
        build: ``build(**cfg) -> torch.nn.Module`` (called under ``torch.manual_seed(cfg['seed'])``).
        inputs: ``inputs(batch, **cfg) -> tuple[torch.Tensor, ...]`` example inputs (seeded).
        defaults: config keys and default values (``seed`` is added automatically).
        description: one line for ``xflow zoo list``.
        tags: the techniques that use the model (:data:`TAGS`; ``list_models(tag=...)``).
        input_names: names of the ONNX graph inputs (one per example input).
    """

    name: str
    build: Callable[..., Any]
    inputs: Callable[..., tuple]
    defaults: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    tags: frozenset[str] = frozenset()
    input_names: tuple[str, ...] = ("input",)

    def __post_init__(self) -> None:
        unknown = set(self.tags) - set(TAGS)
        if unknown:
            raise ValueError(f"zoo model {self.name!r} has unknown tag(s) {sorted(unknown)}; known: {TAGS}")


# ---------------------------------------------------------------------------- builders


def _image_inputs(batch: int, *, image_size: int = 224, **_: Any) -> tuple:
    import torch

    return (torch.randn(batch, 3, image_size, image_size),)


def _seq_inputs(batch: int, *, seq: int, hidden: int, **_: Any) -> tuple:
    import torch

    return (torch.randn(batch, seq, hidden),)


def _tv(fn_name: str, **fixed: Any) -> Callable[..., Any]:
    """Builder for a torchvision classifier ``torchvision.models.<fn_name>(weights=None, ...)``."""

    def build(*, num_classes: int = 1000, **_: Any) -> Any:
        import torchvision

        return getattr(torchvision.models, fn_name)(weights=None, num_classes=num_classes, **fixed)

    build.__name__ = f"build_{fn_name}"
    return build


def _bert(*, layers: int, hidden: int, heads: int, ffn: int, seq: int, **_: Any) -> Any:
    from xflow.graphs.zoo_nets import BertEncoder

    return BertEncoder(layers=layers, hidden=hidden, heads=heads, ffn=ffn, seq=seq)


def _vit(*, image_size: int, patch: int, hidden: int, heads: int, mlp: int, layers: int, classes: int,
         **_: Any) -> Any:
    from xflow.graphs.zoo_nets import ViTEncoder

    return ViTEncoder(image_size=image_size, patch=patch, hidden=hidden, heads=heads, mlp=mlp, layers=layers,
                      classes=classes)


def _nasrnn(*, hidden: int, seq: int, **_: Any) -> Any:
    from xflow.graphs.zoo_nets import NASRNN

    return NASRNN(hidden=hidden, seq=seq)


def _toy(cls_name: str) -> Callable[..., Any]:
    """Builder for a plain-torch net of :mod:`xflow.graphs.zoo_nets` (config keys are its arguments)."""

    def build(*, image_size: int = 0, seed: int = 0, **kw: Any) -> Any:
        from xflow.graphs import zoo_nets

        return getattr(zoo_nets, cls_name)(**kw)

    build.__name__ = f"build_{cls_name}"
    return build


_IMG = dict(image_size=224, num_classes=1000)

REGISTRY: dict[str, ZooModel] = {
    m.name: m
    for m in [
        ZooModel("squeezenet1_1", _tv("squeezenet1_1"), _image_inputs, dict(_IMG),
                 "SqueezeNet 1.1 (fire modules: 1x1 squeeze, sibling 1x1/3x3 expand → Concat)",
                 frozenset({"rewrites", "rl", "algsel", "parallel", "runtime"})),
        ZooModel("resnet18", _tv("resnet18"), _image_inputs, dict(_IMG), "ResNet-18", frozenset({"runtime"})),
        ZooModel("resnet50", _tv("resnet50"), _image_inputs, dict(_IMG), "ResNet-50 (bottleneck blocks)",
                 frozenset({"algsel", "parallel", "runtime"})),
        ZooModel("resnext50_32x4d", _tv("resnext50_32x4d"), _image_inputs, dict(_IMG),
                 "ResNeXt-50 32x4d (grouped 3x3 convs)", frozenset({"rewrites"})),
        ZooModel("googlenet", _tv("googlenet", aux_logits=False, init_weights=True), _image_inputs,
                 dict(_IMG), "GoogLeNet / Inception v1 (no aux heads)", frozenset({"rewrites", "parallel"})),
        ZooModel("inception_v3", _tv("inception_v3", aux_logits=False, init_weights=True), _image_inputs,
                 dict(image_size=299, num_classes=1000), "Inception v3 (no aux head), 299x299",
                 frozenset({"rewrites", "rl", "parallel"})),
        ZooModel("mobilenet_v3_small", _tv("mobilenet_v3_small"), _image_inputs, dict(_IMG),
                 "MobileNet v3 small (depthwise convs, hardswish, squeeze-excite)", frozenset({"runtime"})),
        ZooModel("vgg16", _tv("vgg16"), _image_inputs, dict(_IMG), "VGG-16 (large: ~528 MB of weights)",
                 frozenset({"algsel"})),
        ZooModel("alexnet", _tv("alexnet"), _image_inputs, dict(_IMG), "AlexNet (torchvision)", frozenset({"algsel"})),
        ZooModel("tiny", _toy("TinyNet"), _image_inputs, dict(image_size=32, num_classes=10),
                 "7-conv CNN covering the conv configuration space (algsel tests)", frozenset({"algsel"})),
        ZooModel("inception_toy", _toy("InceptionToy"), _image_inputs,
                 dict(width=16, blocks=2, classes=10, image_size=64),
                 "stem + Inception-A-like blocks of 4 unequal branches (parallelizer)", frozenset({"parallel"})),
        ZooModel("resnext_toy", _toy("ResNeXtToy"), _image_inputs,
                 dict(stem=64, width=128, groups=32, blocks=3, classes=10, image_size=112),
                 "ResNeXt bottleneck blocks (32 groups of 4 and 8 channels) at 112x112: RL training model "
                 "for the grouped-conv rewrites", frozenset({"rl"})),
        ZooModel("nasnet_like", _toy("NasNetLike"), _image_inputs, dict(c=32, cells=6, classes=10, image_size=112),
                 "NASNet-like cells wired to the two previous cells (parallelizer)", frozenset({"parallel"})),
        ZooModel("bert_encoder", _bert, _seq_inputs,
                 dict(layers=2, hidden=256, heads=4, ffn=1024, seq=64),
                 "BERT-style encoder, plain torch, separate Q/K/V (base: layers=12 hidden=768 "
                 "heads=12 ffn=3072 seq=128)", frozenset({"rewrites"})),
        ZooModel("bert_base", _bert, _seq_inputs,
                 dict(layers=2, hidden=768, heads=12, ffn=3072, seq=128),
                 "BERT-base-shaped encoder (hidden 768, 12 heads, ffn 3072, seq 128), 2 of its 12 layers "
                 "(X-RLflow evaluation model)", frozenset({"rewrites", "rl"})),
        ZooModel("vit_encoder", _vit, _image_inputs,
                 dict(image_size=128, patch=16, hidden=768, heads=12, mlp=3072, layers=2, classes=1000),
                 "ViT-Base-shaped encoder (64 patches of 16x16, hidden 768, 12 heads, mlp 3072), 2 layers "
                 "(X-RLflow evaluation model)", frozenset({"rewrites", "rl"})),
        ZooModel("nasrnn", _nasrnn, _seq_inputs, dict(hidden=512, seq=5),
                 "NASNet RNN cell unrolled over seq steps (16 small MatMuls per step, TASO benchmark)",
                 frozenset({"rewrites"})),
    ]
}
"""Every zoo model by name. Add an entry here to add a model."""


# ---------------------------------------------------------------------------- public API


def list_models(tag: str | None = None) -> list[str]:
    """Names of every zoo model (with ``tag``: those a technique uses), in registry order."""
    if tag is not None and tag not in TAGS:
        raise UnknownName(f"unknown zoo tag {tag!r}; choose one of {', '.join(TAGS)}")
    return [n for n, m in REGISTRY.items() if tag is None or tag in m.tags]


def _entry(name: str) -> ZooModel:
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnknownName(
            f"unknown zoo model {name!r}; available: {', '.join(REGISTRY)}"
        ) from None


def resolve_config(name: str, **cfg: Any) -> dict[str, Any]:
    """The full config of ``name``: its defaults (plus ``seed=0``) updated with ``cfg``.

    Raises :class:`~xflow.errors.UnknownName` for an unknown model or config key.
    """
    entry = _entry(name)
    full = {**entry.defaults, "seed": 0}
    unknown = sorted(set(cfg) - set(full))
    if unknown:
        raise UnknownName(
            f"zoo model {name!r} has no config key(s) {', '.join(unknown)}; "
            f"valid keys: {', '.join(sorted(full))}"
        )
    for k, v in cfg.items():
        default = full[k]
        if isinstance(default, int) and not isinstance(v, bool):
            try:
                v = int(v)
            except (TypeError, ValueError):
                raise ExportError(f"config {k}={v!r} of {name!r} must be an integer") from None
            low = 0 if k == "seed" else 1
            if v < low:
                raise ExportError(f"config {k}={v} of {name!r} must be ≥ {low} (default {default})")
        full[k] = v
    return full


def describe(name: str) -> dict[str, Any]:
    """Name, one-line description, tags and default config of a zoo model."""
    e = _entry(name)
    return {"name": e.name, "description": e.description, "tags": sorted(e.tags),
            "defaults": resolve_config(name)}


@contextlib.contextmanager
def _seeded(seed: int):
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def torch_model(name: str, **cfg: Any):
    """The torch model ``name`` in eval mode with deterministic random weights (``cfg['seed']``)."""
    full = resolve_config(name, **cfg)
    with _seeded(full["seed"]):
        model = _entry(name).build(**full)
    return model.eval()


def example_input(name: str, batch: int = 1, **cfg: Any) -> tuple:
    """Deterministic example input(s) of ``name`` for ``batch`` (seeded by ``cfg['seed'] + 1``)."""
    if int(batch) < 1:
        raise ExportError(f"batch must be >= 1, got {batch}")
    full = resolve_config(name, **cfg)
    with _seeded(full["seed"] + 1):
        return tuple(_entry(name).inputs(int(batch), **full))


def cache_key(name: str, batch: int = 1, **cfg: Any) -> str:
    """Content hash (16 hex) of (name, batch, full config, torch version, opset, zoo version)."""
    import torch

    blob = json.dumps(
        {"name": name, "batch": int(batch), "cfg": resolve_config(name, **cfg), "torch": torch.__version__,
         "opset": OPSET, "zoo": ZOO_VERSION},
        sort_keys=True, default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _torch_export(model: Any, args: tuple, path: Path, input_names: tuple[str, ...]) -> str:
    """Export with the legacy TorchScript exporter, else the dynamo exporter; return which one."""
    import torch

    errors = []
    torch_log = logging.getLogger("torch")
    old_level = torch_log.level
    with warnings.catch_warnings(), contextlib.ExitStack() as stack:
        warnings.simplefilter("ignore")
        torch_log.setLevel(logging.CRITICAL)  # the exporters log whole tracebacks on failure
        stack.callback(torch_log.setLevel, old_level)
        try:
            torch.onnx.export(
                model, args, str(path), dynamo=False, opset_version=OPSET,
                input_names=list(input_names), output_names=["output"], do_constant_folding=True,
            )
            return "torchscript"
        except Exception as exc:  # noqa: BLE001 - try the other exporter
            errors.append(f"torchscript exporter: {type(exc).__name__}: {exc}")
            log.info("legacy ONNX export failed (%s); trying dynamo exporter", exc)
        try:
            prog = torch.onnx.export(model, args, dynamo=True, opset_version=OPSET,
                                     input_names=list(input_names), output_names=["output"],
                                     external_data=False, verbose=False)
            prog.save(str(path))
            return "dynamo"
        except Exception as exc:  # noqa: BLE001
            errors.append(f"dynamo exporter: {type(exc).__name__}: {exc}")
    raise ExportError("could not export to ONNX:\n  " + "\n  ".join(errors))


def _check_against_torch(path: Path, model: Any, args: tuple, input_names: tuple[str, ...],
                         name: str) -> float:
    """Run the ONNX file in ORT (optimizations off) and torch on ``args``; return the relative error."""
    import numpy as np
    import onnxruntime as ort
    import torch

    with torch.inference_mode():
        ref = model(*args)
    ref = ref if isinstance(ref, (tuple, list)) else (ref,)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3
    try:
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        outs = sess.run(None, {n: a.numpy() for n, a in zip(input_names, args)})
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"exported {name!r} does not run in ONNX Runtime: {exc}") from exc
    if len(outs) != len(ref):
        raise ExportError(f"exported {name!r} has {len(outs)} outputs, torch has {len(ref)}")
    worst = 0.0
    for i, (o, r) in enumerate(zip(outs, ref)):
        r = r.detach().numpy()
        if o.shape != r.shape:
            raise ExportError(f"exported {name!r} output {i} has shape {o.shape}, torch gives {r.shape}")
        scale = float(np.max(np.abs(r))) or 1.0  # relative: some random-init nets have tiny outputs
        err = float(np.max(np.abs(o.astype(np.float64) - r))) / scale
        worst = max(worst, err)
    if not worst <= _CHECK_RTOL:  # also catches NaN
        raise ExportError(
            f"exported {name!r} disagrees with torch: max |onnx - torch| / max|torch| = "
            f"{worst:.3g} > {_CHECK_RTOL}; the exporter mistranslated an op — try another opset or report it"
        )
    return worst


_VERIFIED: dict[tuple[str, int, int], bool] = {}  # (path, mtime_ns, size) already checked this process


def _cached_export_ok(path: Path, meta_path: Path) -> bool:
    """Whether the cached export ``path`` is intact: its size and SHA-256 match the sidecar meta.

    A missing, truncated or modified export (or meta) is reported with its path, removed, and
    ``False`` is returned so :func:`export` rebuilds it. A meta written before content checks
    existed is upgraded when the file still parses as an ONNX model.
    """
    if not path.exists():
        meta_path.unlink(missing_ok=True)
        return False
    st = path.stat()
    memo = (str(path), st.st_mtime_ns, st.st_size)
    if _VERIFIED.get(memo):
        return True
    meta = read_checked_json(meta_path, discard=False)
    if meta is None and meta_path.exists():
        try:  # legacy meta (no envelope): accept the file if it still parses, then upgrade
            legacy = json.loads(meta_path.read_text())
            read_model(path)
            meta = {**legacy, "sha256": sha256_file(path), "bytes": st.st_size}
            _write_meta(meta_path, meta)
        except Exception as exc:  # noqa: BLE001 - anything wrong means: rebuild
            discard_corrupt(path, f"export does not parse ({type(exc).__name__})")
            meta_path.unlink(missing_ok=True)
            return False
    if meta is None:
        discard_corrupt(path, "its metadata is missing or corrupt")
        meta_path.unlink(missing_ok=True)
        return False
    if meta.get("bytes") != st.st_size:
        discard_corrupt(path, f"{st.st_size} bytes, the export wrote {meta.get('bytes')} (truncated?)")
    elif meta.get("sha256") != sha256_file(path):
        discard_corrupt(path, "content check failed (SHA-256 mismatch)")
    else:
        _VERIFIED[memo] = True
        return True
    meta_path.unlink(missing_ok=True)
    return False


def _write_meta(meta_path: Path, meta: dict) -> None:
    write_checked_json(meta_path, meta, indent=1, sort_keys=True)


def _check_runs_in_torch(model: Any, args: tuple, name: str, cfg: dict) -> None:
    """Run ``model`` once in torch so a config it cannot take fails with one clear line."""
    import torch

    try:
        with torch.inference_mode():
            model(*args)
    except Exception as exc:  # noqa: BLE001 - e.g. an image too small for the pooling layers
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        defaults = _entry(name).defaults
        changed = ", ".join(f"{k}={v}" for k, v in cfg.items() if k in defaults and defaults[k] != v)
        raise ExportError(
            f"{name!r} does not run in torch with {changed or 'its default config'}: {first}; "
            f"use values closer to the defaults ({', '.join(f'{k}={v}' for k, v in defaults.items())})"
        ) from None


def export(name: str, batch: int = 1, *, force: bool = False, **cfg: Any) -> Path:
    """Export zoo model ``name`` at ``batch`` to ONNX (cached) and return the ``.onnx`` path.

    The export is verified against torch on the example input (ORT, optimizations disabled); a
    sidecar ``.json`` records the config, exporter, error and the file's size and SHA-256, which
    every cache hit checks: a truncated or modified export is reported, removed and re-exported.
    The file is written atomically under a lock, so concurrent exports of one model are safe.
    ``force=True`` re-exports. Raises :class:`~xflow.errors.UnknownName` /
    :class:`~xflow.errors.ExportError`.
    """
    import torch

    full = resolve_config(name, **cfg)
    key = cache_key(name, batch, **full)
    out_dir = paths.cache_dir("zoo")
    path = out_dir / f"{name}-b{int(batch)}-{key}.onnx"
    meta_path = path.with_suffix(".json")
    if not force and _cached_export_ok(path, meta_path):
        log.debug("zoo cache hit %s", path)
        return path
    with file_lock(path):
        if not force and _cached_export_ok(path, meta_path):  # another process just wrote it
            return path
        entry = _entry(name)
        model = torch_model(name, **full)
        args = example_input(name, batch, **full)
        _check_runs_in_torch(model, args, name, full)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{name}-", suffix=".onnx", dir=out_dir)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            with torch.inference_mode(False), torch.no_grad():
                exporter = _torch_export(model, args, tmp, entry.input_names)
            err = _check_against_torch(tmp, model, args, entry.input_names, name)
            meta = {"name": name, "batch": int(batch), "config": full, "opset": OPSET, "exporter": exporter,
                    "torch": torch.__version__, "check_rel_err": err, "zoo_version": ZOO_VERSION,
                    "sha256": sha256_file(tmp), "bytes": tmp.stat().st_size}
            meta_path.unlink(missing_ok=True)
            tmp.replace(path)  # atomic: a killed export never leaves half a model in the cache
            _write_meta(meta_path, meta)
        finally:
            tmp.unlink(missing_ok=True)
    log.info("exported %s (batch %d) via %s exporter, rel err %.2g → %s", name, batch, exporter, err, path)
    return path


def load(name: str, batch: int = 1, **cfg: Any):
    """The exported zoo model as an ``onnx.ModelProto`` (exporting it first if not cached)."""
    import onnx

    return onnx.load(str(export(name, batch, **cfg)))

