"""``swap_conv2d``: a copy of a model whose convolutions run the algorithms a selector picks.

Selector forms (as in ai3's ``swap_conv2d``):

* a name (``'winograd_2x2'``) or :class:`ConvAlgorithm` — every ``nn.Conv2d``;
* a list — one entry per conv layer in ``model.named_modules()`` order (``None`` keeps a layer);
* a dict ``{module_name: name}`` — only the listed layers; the rest keep the framework conv;
* a callable ``(module, input_shape) -> name`` — per layer and input shape, evaluated lazily on the
  first forward with each shape (or at once when ``example_input`` is given).

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

from xflow.algsel.algorithms import ConvAlgorithm, get_algorithm
from xflow.algsel.module import AlgoConv2d
from xflow.errors import ShapeMismatch, UnknownName, XflowError

__all__ = ["swap_conv2d", "conv_layers", "choices", "describe_choices", "Selector"]

log = logging.getLogger(__name__)

Selector = Union[str, ConvAlgorithm, Sequence[Any], Mapping[str, Any], Callable[[nn.Module, tuple], str]]


def conv_layers(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    """``(name, module)`` of every ``nn.Conv2d`` (including swapped ones), in module order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def _per_layer(selector: Selector, names: list[str]) -> dict[str, Any]:
    if isinstance(selector, (str, ConvAlgorithm)):
        get_algorithm(selector)  # fail early on an unknown name
        return {n: selector for n in names}
    if isinstance(selector, Mapping):
        unknown = [k for k in selector if k not in names]
        if unknown:
            raise UnknownName(
                f"no Conv2d named {', '.join(map(repr, unknown))} in the model; conv layers are: "
                f"{', '.join(names) or '(none)'}"
            )
        return {k: v for k, v in selector.items() if v is not None}
    if callable(selector):
        return {n: selector for n in names}
    if isinstance(selector, Sequence):
        if len(selector) != len(names):
            raise ShapeMismatch(
                f"selector list has {len(selector)} entries but the model has {len(names)} Conv2d "
                f"layers; give one algorithm name (or None) per conv layer, in module order"
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


def swap_conv2d(
    model: nn.Module,
    selector: Selector,
    *,
    strict: bool = False,
    share_weights: bool = True,
    example_input: torch.Tensor | None = None,
) -> nn.Module:
    """A new model whose selected ``nn.Conv2d`` layers run the selected algorithms.

    Args:
        model (nn.Module): any model; it is not modified.
        selector: name, list, dict by module name, or callable ``(module, input_shape) -> name``.
        strict (bool, optional): raise :class:`~xflow.errors.UnsupportedOperator` when an algorithm
            cannot compute a layer, instead of warning (:class:`AlgorithmFallbackWarning`) and using
            ``default``. (default: :obj:`False`)
        share_weights (bool, optional): share parameters/buffers with ``model``; ``False`` copies
            them. (default: :obj:`True`)
        example_input (Tensor, optional): run once (no grad) so callable selectors resolve now.

    Raises:
        UnknownName: an unknown algorithm or module name.
        ShapeMismatch: a list selector whose length differs from the number of conv layers.
    """
    names = [n for n, _ in conv_layers(model)]
    per_layer = _per_layer(selector, names)
    memo: dict[int, Any] = {}
    if share_weights:
        memo.update({id(t): t for t in model.parameters()})
        memo.update({id(t): t for t in model.buffers()})
    new_model = copy.deepcopy(model, memo)
    for name, choice in per_layer.items():
        conv = new_model.get_submodule(name)
        _set_submodule(new_model, name, AlgoConv2d.from_conv(
            conv, choice, strict=strict, layer_name=name, copy_weights=False))
    log.debug("swapped %d of %d conv layers", len(per_layer), len(names))
    if example_input is not None:
        with torch.no_grad():
            new_model(example_input)
    return new_model


def choices(model: nn.Module) -> dict[str, str]:
    """``{layer: algorithm}`` actually in use (``'default'`` for untouched convs); a replayable
    dict selector for :func:`swap_conv2d`."""
    out = {}
    for name, m in conv_layers(model):
        algo = getattr(m, "algorithm", None)
        out[name] = algo.name if algo is not None else ("default" if not isinstance(m, AlgoConv2d) else "?")
    return out


def describe_choices(model: nn.Module) -> list[dict[str, Any]]:
    """One row per conv layer: name, configuration, requested/used algorithm, fallback reason."""
    rows = []
    for name, m in conv_layers(model):
        is_algo = isinstance(m, AlgoConv2d)
        algo = getattr(m, "algorithm", None)
        rows.append({
            "layer": name,
            "config": m.config.short() if is_algo else None,
            "requested": m.requested if is_algo else "default",
            "algorithm": algo.name if algo is not None else ("default" if not is_algo else None),
            "fallback_reason": m.fallback_reason if is_algo else None,
        })
    return rows
