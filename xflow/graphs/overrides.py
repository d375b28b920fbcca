"""Fix the dynamic input shapes of an ONNX model: per-input shapes and named free dimensions.

Commands that load an ONNX model need static input shapes. A model exported with a dynamic batch
(``input: (batch, 3, 224, 224)``) is made static either per input
(``{'input': (1, 3, 224, 224)}``, the CLI's ``--input-shape input=1x3x224x224``) or per named free
dimension for every input at once (``{'batch': 1}``, the CLI's ``--dim batch=1``).
"""
from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence

import onnx

from xflow.errors import ShapeMismatch, UnknownName
from xflow.graphs.model import _apply_input_shapes

__all__ = ["graph_inputs", "symbolic_inputs", "fix_input_shapes"]


def graph_inputs(model: onnx.ModelProto) -> dict[str, tuple[int | str, ...] | None]:
    """Real graph inputs (initializers excluded) → dims (ints, symbolic names or ``'?'``; ``None``: no shape)."""
    inits = {t.name for t in model.graph.initializer}
    out: dict[str, tuple[int | str, ...] | None] = {}
    for v in model.graph.input:
        if v.name in inits or not v.type.HasField("tensor_type"):
            continue
        tt = v.type.tensor_type
        if not tt.HasField("shape"):
            out[v.name] = None
            continue
        out[v.name] = tuple(int(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?")
                            for d in tt.shape.dim)
    return out


def symbolic_inputs(model: onnx.ModelProto) -> dict[str, tuple[int | str, ...]]:
    """The inputs whose shape is unknown or has a non-numeric dimension (``()`` for no shape)."""
    return {n: (d if d is not None else ("?",)) for n, d in graph_inputs(model).items()
            if d is None or any(not isinstance(x, int) for x in d)}


def fix_input_shapes(model: onnx.ModelProto, shapes: Mapping[str, Sequence[int]] | None = None,
                     dims: Mapping[str, int] | None = None) -> onnx.ModelProto:
    """A copy of ``model`` with named free dimensions (``dims``) and whole input ``shapes`` fixed.

    Raises :class:`~xflow.errors.UnknownName` for an input or dimension name the model does not
    have (listing those it has) and :class:`~xflow.errors.ShapeMismatch` for a rank or fixed
    dimension that disagrees.
    """
    m = onnx.ModelProto()
    m.CopyFrom(model)
    inputs = graph_inputs(m)
    if dims:
        free = sorted({d for dd in inputs.values() if dd for d in dd if isinstance(d, str) and d != "?"})
        for name, value in dims.items():
            if name not in free:
                close = difflib.get_close_matches(name, free, n=2)
                raise UnknownName(f"--dim {name}: the model has no free dimension {name!r}; its free "
                                  f"dimensions are {free or 'none'}" + (f" (did you mean {close[0]}?)" if close else ""))
            if int(value) < 1:
                raise ShapeMismatch(f"--dim {name}={value}: dimensions must be ≥ 1")
        by_name = {v.name: v for v in m.graph.input}
        for name in inputs:
            tt = by_name[name].type.tensor_type
            if tt.HasField("shape"):
                for d in tt.shape.dim:
                    if not d.HasField("dim_value") and d.dim_param in dims:
                        d.dim_value = int(dims[d.dim_param])
        m.graph.ClearField("value_info")
    if shapes:
        unknown = [n for n in shapes if n not in inputs]
        if unknown:
            close = difflib.get_close_matches(unknown[0], list(inputs), n=2)
            raise UnknownName(f"--input-shape {unknown[0]}: the model has no input {unknown[0]!r}; its "
                              f"inputs are {list(inputs)}" + (f" (did you mean {close[0]}?)" if close else ""))
        for name, shape in shapes.items():
            shape = tuple(int(d) for d in shape)
            try:
                _apply_input_shapes(m, {name: shape})
            except ShapeMismatch as exc:  # say it in the flag's terms
                flag = f"--input-shape {name}={'x'.join(map(str, shape))}"
                raise ShapeMismatch(str(exc).replace(f"input_shapes[{name!r}] = {shape}", flag)) from None
    return m
