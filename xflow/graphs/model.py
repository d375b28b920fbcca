"""Load and validate an ONNX model into a :class:`Graph`, with clear errors for bad input.

:func:`load_model` accepts a path, raw bytes or an ``onnx.ModelProto`` and runs, in order:

1. **read/parse** — missing file (:class:`~xflow.errors.ModelFileNotFound`), empty file or
   bytes (:class:`~xflow.errors.EmptyModelFile`), random or truncated bytes
   (:class:`~xflow.errors.MalformedModel`);
2. **opset** — default-domain opset older than 7 is converted with
   ``onnx.version_converter`` (to ``convert_to``, default 17); if conversion fails, or the
   opset is newer than the installed ``onnx`` knows, :class:`~xflow.errors.UnsupportedOpset`
   names it;
3. **operators** — a node in an unknown domain, or an op the default domain does not define,
   raises :class:`~xflow.errors.UnsupportedOperator` naming node, op and domain;
4. **inputs** — initializers listed as graph inputs (IR ≥ 4) are treated as constants;
   ``input_shapes`` fixes input dimensions; any symbolic/unknown input dimension left raises
   :class:`~xflow.errors.DynamicShapeError` naming the input and suggesting a fixed shape;
5. **checker + shape inference** (strict) — failures raise :class:`~xflow.errors.InvalidModel`;
6. **the IR** — the shape-inferred model becomes a :class:`~xflow.graphs.ir.Graph` on onnx-ir
   (shapes written onto its values); unnamed or duplicate node names become ``<OpType>_<index>``
   (:func:`~xflow.graphs.ir.name_nodes`) so every node can be addressed by name;
7. **constant folding + dead-code elimination** (:func:`xflow.graphs.folding.fold`, counts in
   ``graph.fold_stats``), then shape inference again only if a value is still not static.
"""
from __future__ import annotations

import difflib
import logging
import os
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import onnx
import onnx_ir as ir

from xflow.errors import (
    DynamicShapeError,
    EmptyModelFile,
    InvalidModel,
    MalformedModel,
    ModelFileNotFound,
    ModelLoadError,
    ShapeMismatch,
    UnknownName,
    UnsupportedOperator,
    UnsupportedOpset,
)
from xflow.graphs.folding import fold as fold_pass
from xflow.graphs.ir import Graph, name_nodes
from xflow.graphs.shapes import infer_model_shapes

__all__ = [
    "load_model",
    "read_model",
    "KNOWN_DOMAINS",
    "MIN_OPSET",
]

log = logging.getLogger(__name__)

#: Operator domains xflow accepts (ONNX, ONNX-ML, training preview, ONNX Runtime contrib ops).
KNOWN_DOMAINS = frozenset(
    {"", "ai.onnx", "ai.onnx.ml", "ai.onnx.preview.training", "com.microsoft",
     "com.microsoft.nchwc", "org.pytorch.aten"}
)
#: Oldest default-domain opset accepted without conversion.
MIN_OPSET = 7

ModelSource = str | os.PathLike | bytes | bytearray | onnx.ModelProto


# ---------------------------------------------------------------------------------------
# loading steps
# ---------------------------------------------------------------------------------------
def _default_opset(model: onnx.ModelProto) -> int | None:
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            return int(o.version)
    return None


def read_model(src: ModelSource) -> onnx.ModelProto:
    """Parse ``src`` into a fresh ``ModelProto`` (no validation beyond "is it an ONNX model").

    Raises:
        ModelFileNotFound, EmptyModelFile, MalformedModel, ModelLoadError.
    """
    if isinstance(src, onnx.ModelProto):
        m = onnx.ModelProto()
        m.CopyFrom(src)
        return m
    where = "the model bytes"
    base_dir: Path | None = None
    if isinstance(src, (bytes, bytearray, memoryview)):
        data = bytes(src)
    elif isinstance(src, (str, os.PathLike)):
        path = Path(src).expanduser()
        where = f"model file '{path}'"
        if not path.exists():
            raise ModelFileNotFound(f"{where} does not exist; check the path "
                                    f"(cwd is '{Path.cwd()}')")
        if path.is_dir():
            raise ModelLoadError(f"{where} is a directory, not an .onnx file")
        try:
            data = path.read_bytes()
        except OSError as e:
            raise ModelLoadError(f"cannot read {where}: {e}") from e
        base_dir = path.parent
    else:
        raise ModelLoadError(
            f"cannot load a model from {type(src).__name__}; pass a path, bytes or onnx.ModelProto"
        )
    if not data:
        raise EmptyModelFile(f"{where} is empty (0 bytes); re-export or re-download it")
    try:
        model = onnx.ModelProto.FromString(data)
    except Exception as e:  # google.protobuf.message.DecodeError and friends
        raise MalformedModel(
            f"{where} ({len(data)} bytes) is not a valid ONNX protobuf — the file is "
            f"truncated or not an ONNX model ({type(e).__name__}: {e}); re-export it"
        ) from e
    if not model.HasField("graph") or not model.graph.output or model.ir_version <= 0:
        raise MalformedModel(
            f"{where} ({len(data)} bytes) parsed but holds no ONNX graph "
            f"(ir_version={model.ir_version}, outputs={len(model.graph.output)}); the file is "
            "truncated or not an ONNX model"
        )
    if base_dir is not None and any(
        t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer
    ):
        try:
            onnx.external_data_helper.load_external_data_for_model(model, str(base_dir))
        except Exception as e:
            raise ModelLoadError(f"{where} refers to external data that cannot be read: {e}") from e
    return model


def _check_opset(model: onnx.ModelProto, convert_to: int) -> onnx.ModelProto:
    version = _default_opset(model)
    if version is None:
        if any(n.domain in ("", "ai.onnx") for n in model.graph.node):
            raise InvalidModel("model has default-domain nodes but no 'ai.onnx' opset_import")
        return model
    newest = onnx.defs.onnx_opset_version()
    if version > newest:
        raise UnsupportedOpset(
            f"model uses opset {version}, newer than the installed onnx {onnx.__version__} "
            f"supports (≤ {newest}); upgrade onnx or re-export with opset ≤ {newest}"
        )
    if version >= MIN_OPSET:
        return model
    from onnx import version_converter

    first_error: Exception | None = None
    for target in dict.fromkeys((convert_to, 11, MIN_OPSET)):  # newest first, then fall back
        try:
            converted = version_converter.convert_version(model, target)
            onnx.checker.check_model(converted)
        except Exception as e:
            first_error = first_error or e
            continue
        log.info("converted model from opset %d to %d", version, target)
        return converted
    raise UnsupportedOpset(
        f"model uses opset {version} (older than {MIN_OPSET}) and onnx.version_converter "
        f"could not convert it to opset {convert_to} ({_first_lines(first_error, 1)}); "
        f"re-export the model with opset ≥ {MIN_OPSET}"
    ) from first_error


def _check_operators(model: onnx.ModelProto, allowed_domains: Iterable[str]) -> None:
    allowed = set(allowed_domains) | {f.domain for f in model.functions}
    local_fns = {(f.domain, f.name) for f in model.functions}
    opsets = {o.domain or "": o.version for o in model.opset_import}
    for i, node in enumerate(model.graph.node):
        label = f"node {node.name or f'#{i}'!r} ({node.op_type})"
        if node.domain not in allowed:
            raise UnsupportedOperator(
                f"{label} is in unknown operator domain {node.domain!r}; xflow handles "
                f"{sorted(d or 'ai.onnx' for d in allowed)} — replace the custom op or pass "
                "allowed_domains= if your runtime registers it"
            )
        if node.domain in ("", "ai.onnx") and (node.domain, node.op_type) not in local_fns:
            version = opsets.get("", opsets.get("ai.onnx", onnx.defs.onnx_opset_version()))
            try:
                onnx.defs.get_schema(node.op_type, version, "")
            except Exception:
                raise UnsupportedOperator(
                    f"{label}: operator {node.op_type!r} is not defined in ONNX opset {version}; "
                    "check the op name or re-export with a newer opset"
                ) from None


def _strip_initializer_inputs(model: onnx.ModelProto) -> None:
    if model.ir_version < 4:
        return
    inits = {t.name for t in model.graph.initializer}
    keep = [v for v in model.graph.input if v.name not in inits]
    if len(keep) != len(model.graph.input):
        del model.graph.input[:]
        model.graph.input.extend(keep)


def _apply_input_shapes(model: onnx.ModelProto, input_shapes: Mapping[str, Sequence[int]]) -> None:
    by_name = {v.name: v for v in model.graph.input}
    for name, shape in input_shapes.items():
        if name not in by_name:
            close = difflib.get_close_matches(name, list(by_name), n=3)
            raise UnknownName(
                f"input_shapes names {name!r}, which is not a graph input; inputs are "
                f"{list(by_name)}" + (f" (did you mean {close}?)" if close else "")
            )
        tt = by_name[name].type.tensor_type
        shape = tuple(int(d) for d in shape)
        if any(d <= 0 for d in shape):
            raise ShapeMismatch(f"input_shapes[{name!r}] = {shape} must have positive dimensions")
        if tt.HasField("shape"):
            dims = tt.shape.dim
            if len(dims) != len(shape):
                raise ShapeMismatch(
                    f"input_shapes[{name!r}] = {shape} has rank {len(shape)} but input {name!r} "
                    f"has rank {len(dims)} ({_fmt_dims(dims)})"
                )
            for axis, (d, s) in enumerate(zip(dims, shape)):
                if d.HasField("dim_value") and d.dim_value != s:
                    raise ShapeMismatch(
                        f"input_shapes[{name!r}] = {shape} conflicts with the model's fixed "
                        f"dimension {d.dim_value} at axis {axis} ({_fmt_dims(dims)})"
                    )
        tt.ClearField("shape")
        for s in shape:
            tt.shape.dim.add().dim_value = s
    # old symbolic dims in value_info may now be stale; let shape inference recompute them
    model.graph.ClearField("value_info")


def _fmt_dims(dims) -> str:
    return "(" + ", ".join(
        str(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?") for d in dims
    ) + ")"


def _check_static_inputs(model: onnx.ModelProto) -> None:
    for v in model.graph.input:
        if not v.type.HasField("tensor_type"):
            continue
        tt = v.type.tensor_type
        if not tt.HasField("shape"):
            raise DynamicShapeError(
                f"input {v.name!r} has no shape (unknown rank); fix it with "
                f"load_model(..., input_shapes={{{v.name!r}: (...)}})"
            )
        dims = tt.shape.dim
        bad = [(i, d.dim_param or "?") for i, d in enumerate(dims) if not d.HasField("dim_value")]
        if bad:
            suggestion = tuple(int(d.dim_value) if d.HasField("dim_value") else 1 for d in dims)
            where = ", ".join(f"{p!r} at axis {i}" for i, p in bad)
            raise DynamicShapeError(
                f"input {v.name!r} has dynamic dimension(s) {where} in shape {_fmt_dims(dims)}; "
                f"xflow needs static shapes — fix them with "
                f"load_model(..., input_shapes={{{v.name!r}: {suggestion}}}) "
                "(or re-export with a fixed batch size)"
            )


def _validate(model: onnx.ModelProto, *, context: str = "") -> onnx.ModelProto:
    try:
        onnx.checker.check_model(model)
    except Exception as e:
        raise InvalidModel(f"model fails onnx.checker{context}: {_first_lines(e)}") from e
    try:
        return onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True,
                                                 data_prop=True)
    except Exception as e:
        raise InvalidModel(f"model fails ONNX shape inference{context}: {_first_lines(e)}") from e


def _first_lines(e: Exception, n: int = 3) -> str:
    lines = [ln for ln in str(e).splitlines() if ln.strip()]
    return " ".join(lines[:n]) if lines else type(e).__name__


def load_model(
    src: ModelSource,
    *,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    fold: bool = True,
    allow_dynamic: bool = False,
    allowed_domains: Iterable[str] = KNOWN_DOMAINS,
    convert_to: int = 17,
) -> Graph:
    """Load, validate, shape-infer and constant-fold an ONNX model (see module docstring).

    Args:
        src: path, bytes or ``onnx.ModelProto`` (never modified).
        input_shapes: ``{input name: fixed shape}`` overriding symbolic input dimensions.
        fold: fold constant subgraphs into initializers.
        allow_dynamic: accept symbolic input dimensions instead of raising.
        allowed_domains: operator domains accepted (default :data:`KNOWN_DOMAINS`).
        convert_to: target opset when converting models older than :data:`MIN_OPSET`.

    Raises:
        ModelFileNotFound, EmptyModelFile, MalformedModel, InvalidModel, UnsupportedOpset,
        UnsupportedOperator, DynamicShapeError, ShapeMismatch, UnknownName.
    """
    model = read_model(src)
    model = _check_opset(model, convert_to)
    _check_operators(model, allowed_domains)
    _strip_initializer_inputs(model)
    context = ""
    if input_shapes:
        _apply_input_shapes(model, input_shapes)
        context = f" after fixing input shapes {dict(input_shapes)}"
    if not allow_dynamic:
        _check_static_inputs(model)
    model = _validate(model, context=context)
    graph_ir = ir.serde.deserialize_model(model)
    name_nodes(graph_ir.graph)
    stats = None
    if fold:
        stats = fold_pass(graph_ir)
        if stats.changed and any(o.name and (o.shape is None or not o.shape.is_static())
                                 for n in graph_ir.graph for o in n.outputs):
            # folded values may make more shapes static (e.g. a Reshape target)
            infer_model_shapes(graph_ir)
    g = Graph(graph_ir)
    g.fold_stats = stats
    return g
