"""``swap`` / ``swap_conv2d``: a copy of a model whose layers run the algorithms a selector picks.

Selector forms (as in ai3's ``swap_conv2d`` / ``swap_operation``), per operator family
(:mod:`xflow.algsel.ops`: ``conv2d``, ``linear``, ``pool``):

* a name (``'winograd_2x2'``) or algorithm instance — every layer of the family;
* a list — one entry per layer of the family in ``model.named_modules()`` order (``None`` keeps a layer);
* a dict ``{module_name: name}`` — only the listed layers; the rest keep the framework op;
* a callable ``(module, input_shape) -> name`` — per layer and input shape, evaluated lazily on the
  first forward with each shape (or at once when ``example_input`` is given).

``swap(model, {"conv2d": ..., "pool": ...})`` takes one selector per family; ``swap(model,
layers={name: algo})`` takes a flat per-layer dict across families (what :func:`choices` and the
autotuner return); ``layout='channels_last'`` makes the copy run NHWC (:func:`~xflow.algsel.ops.set_layout`).

The original model is never modified. The new model is a structural copy; by default it *shares*
the original's parameters and buffers (no memory doubling for VGG16-size models — training the
swapped model therefore updates the original's tensors); ``share_weights=False`` deep-copies them.
"""
from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Union

import torch
from torch import nn

from xflow.algsel.ops import FAMILIES, OPS, OpFamily, family, family_of, model_layout, set_layout
from xflow.errors import ShapeMismatch, UnknownName, XflowError

__all__ = ["swap", "swap_conv2d", "swap_linear", "swap_pool", "conv_layers", "choices", "describe_choices",
           "Selector"]

log = logging.getLogger(__name__)

_KIND = {"conv2d": "Conv2d", "linear": "Linear", "pool": "pooling"}

Selector = Union[str, Any, Sequence[Any], Mapping[str, Any], Callable[[nn.Module, tuple], str]]


def conv_layers(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    """``(name, module)`` of every ``nn.Conv2d`` (including swapped ones), in module order."""
    return FAMILIES["conv2d"].layers(model)


def _per_layer(selector: Selector, names: list[str], fam: OpFamily) -> dict[str, Any]:
    if isinstance(selector, str) or hasattr(selector, "supports"):
        fam.get(selector)  # fail early on an unknown name
        return {n: selector for n in names}
    if isinstance(selector, Mapping):
        unknown = [k for k in selector if k not in names]
        if unknown:
            kind = _KIND.get(fam.name, fam.name)
            raise UnknownName(
                f"no {kind} named {', '.join(map(repr, unknown))} in the model; {fam.name} layers are: "
                f"{', '.join(names) or '(none)'}"
            )
        for v in selector.values():
            if v is not None and not callable(v):
                fam.get(v)
        return {k: v for k, v in selector.items() if v is not None}
    if callable(selector):
        return {n: selector for n in names}
    if isinstance(selector, Sequence):
        if len(selector) != len(names):
            raise ShapeMismatch(
                f"selector list has {len(selector)} entries but the model has {len(names)} {_KIND.get(fam.name, fam.name)} "
                f"layers; give one algorithm name (or None) per layer, in module order"
            )
        return {n: s for n, s in zip(names, selector) if s is not None}
    raise XflowError(
        f"unsupported selector type {type(selector).__name__}; use a name, a list, a dict by module "
        f"name or a callable (module, input_shape) -> name"
    )


def _set_submodule(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, new)


def swap(
    model: nn.Module,
    selectors: Mapping[str, Selector] | None = None,
    *,
    layers: Mapping[str, Any] | None = None,
    layout: str | None = None,
    strict: bool = False,
    share_weights: bool = True,
    example_input: torch.Tensor | None = None,
) -> nn.Module:
    """A new model whose selected layers run the selected algorithms.

    Args:
        model (nn.Module): any model; it is not modified.
        selectors (dict, optional): ``{family: selector}`` for families in :data:`~xflow.algsel.ops.OPS`.
        layers (dict, optional): ``{module_name: algorithm}`` across families (e.g. ``TuneResult.choices``);
            ``'default'`` entries leave the layer untouched.
        layout (str, optional): ``'nchw'`` or ``'channels_last'`` for the copy (default: keep the model's).
        strict (bool, optional): raise :class:`~xflow.errors.UnsupportedOperator` when an algorithm
            cannot compute a layer, instead of warning (:class:`AlgorithmFallbackWarning`) and using
            ``default``. (default: :obj:`False`)
        share_weights (bool, optional): share parameters/buffers with ``model``; ``False`` copies
            them. (default: :obj:`True`)
        example_input (Tensor, optional): run once (no grad) so callable selectors resolve now.

    Raises:
        UnknownName: an unknown family, algorithm or module name.
        ShapeMismatch: a list selector whose length differs from the number of layers.
    """
    plan: dict[str, tuple[OpFamily, Any]] = {}
    for op, sel in (selectors or {}).items():
        fam = family(op)
        names = [n for n, _ in fam.layers(model)]
        plan.update({n: (fam, s) for n, s in _per_layer(sel, names, fam).items()})
    if layers:
        mods = dict(model.named_modules())
        for name, algo in layers.items():
            fam = family_of(mods[name]) if name in mods else None
            if fam is None:
                swappable = [n for n, m in mods.items() if family_of(m) is not None]
                raise UnknownName(f"no swappable layer named {name!r} in the model; swappable layers: "
                                  f"{', '.join(swappable) or '(none)'} ({', '.join(OPS)})")
            if algo is not None and not callable(algo):
                fam.get(algo)
            if algo is not None and (callable(algo) or fam.get(algo).name != "default"
                                     or name in plan or type(mods[name]) not in fam.module_types):
                plan[name] = (fam, algo)
    memo: dict[int, Any] = {}
    if share_weights:
        memo.update({id(t): t for t in model.parameters()})
        memo.update({id(t): t for t in model.buffers()})
    new_model = copy.deepcopy(model, memo)
    for name, (fam, choice) in plan.items():
        mod = new_model.get_submodule(name)
        _set_submodule(new_model, name, fam.wrap(mod, choice, strict=strict, layer_name=name, copy_weights=False))
    if layout is not None:
        set_layout(new_model, layout)
    log.debug("swapped %d layers", len(plan))
    if example_input is not None:
        with torch.no_grad():
            new_model(example_input)
    return new_model


def swap_conv2d(model: nn.Module, selector: Selector, *, strict: bool = False, share_weights: bool = True,
                example_input: torch.Tensor | None = None) -> nn.Module:
    """``swap(model, {"conv2d": selector})``: the convolutions run the selected algorithms (ai3's
    ``swap_conv2d``). See :func:`swap` for the arguments."""
    return swap(model, {"conv2d": selector}, strict=strict, share_weights=share_weights, example_input=example_input)


def swap_linear(model: nn.Module, selector: Selector, **kw) -> nn.Module:
    """``swap(model, {"linear": selector})``: the ``nn.Linear`` layers run the selected algorithms."""
    return swap(model, {"linear": selector}, **kw)


def swap_pool(model: nn.Module, selector: Selector, **kw) -> nn.Module:
    """``swap(model, {"pool": selector})``: the max/avg pooling layers run the selected algorithms."""
    return swap(model, {"pool": selector}, **kw)


def _algo_name(m: nn.Module) -> str:
    algo = getattr(m, "algorithm", None)
    if algo is not None:
        return algo.name
    return "?" if hasattr(m, "_selector") else "default"


def choices(model: nn.Module, op: str | None = "conv2d") -> dict[str, str]:
    """``{layer: algorithm}`` in use for family ``op`` (``None``: every family), ``'default'`` for
    untouched layers; a replayable selector (``swap_conv2d(model, ...)`` / ``swap(model, layers=...)``)."""
    fams = list(FAMILIES.values()) if op is None else [family(op)]
    out = {}
    for name, m in model.named_modules():
        if any(f.matches(m) for f in fams):
            out[name] = _algo_name(m)
    return out


def describe_choices(model: nn.Module, op: str | None = "conv2d") -> list[dict[str, Any]]:
    """One row per layer of family ``op`` (``None``: all): name, family, configuration,
    requested/used algorithm, fallback reason; plus the model's layout."""
    rows = []
    layout = model_layout(model)
    for name, m in model.named_modules():
        fam = family_of(m)
        if fam is None or (op is not None and fam.name != op):
            continue
        swapped = hasattr(m, "requested")
        rows.append({
            "layer": name, "op": fam.name, "layout": layout,
            "config": m.config.short() if swapped else fam.config_of(m).short(),
            "requested": m.requested if swapped else "default",
            "algorithm": _algo_name(m),
            "fallback_reason": m.fallback_reason if swapped else None,
        })
    return rows
