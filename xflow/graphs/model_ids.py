"""Model ids: one string names a starting graph, so an experiment or an episode replays anywhere.

=========================  =================================================================
id                         graph
=========================  =================================================================
``builder:NAME``           :func:`xflow.graphs.builders.build` (``NAME?k=v&k=v`` for kwargs)
``zoo:NAME``               :func:`xflow.graphs.zoo.load` (``zoo:bert_encoder?batch=1``)
``file:PATH`` / ``*.onnx`` an ONNX file
``mem:NAME``               a model given to :func:`register_model` in this process
=========================  =================================================================
"""
from __future__ import annotations

import ast
from pathlib import Path

import onnx

from xflow.errors import ModelFileNotFound, UnknownName
from xflow.graphs import builders, zoo
from xflow.graphs.ir import Graph, as_proto
from xflow.graphs.model import load_model

__all__ = ["resolve_graph", "resolve_model", "register_model", "parse_model_id"]

_REGISTRY: dict[str, bytes] = {}


def register_model(name: str, model: onnx.ModelProto | Graph) -> str:
    """Make ``model`` addressable as ``mem:NAME`` in this process; returns the id."""
    _REGISTRY[name] = as_proto(model).SerializeToString()
    return f"mem:{name}"


def _value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_model_id(model_id: str) -> tuple[str, str, dict]:
    """Split ``'scheme:name?k=v&…'`` into ``(scheme, name, kwargs)`` (values parsed as literals)."""
    if model_id.endswith(".onnx") and not model_id.startswith("file:"):
        return "file", model_id, {}
    scheme, sep, rest = model_id.partition(":")
    if not sep:
        raise UnknownName(
            f"model id {model_id!r} has no scheme; use builder:NAME, zoo:NAME, file:PATH or mem:NAME"
        )
    name, _, query = rest.partition("?")
    kwargs = {}
    for part in filter(None, query.split("&")):
        k, _, v = part.partition("=")
        kwargs[k] = _value(v)
    return scheme, name, kwargs


def resolve_graph(model_id: str) -> Graph:
    """Load the graph named by ``model_id`` into the IR (validated, shape-inferred, folded by
    :func:`xflow.graphs.load_model`)."""
    scheme, name, kwargs = parse_model_id(model_id)
    if scheme == "builder":
        model = builders.build(name, **kwargs)
    elif scheme == "zoo":
        model = zoo.load(name, **kwargs)
    elif scheme == "file":
        path = Path(name)
        if not path.exists():
            raise ModelFileNotFound(f"model file {path} does not exist")
        model = onnx.load(str(path))
    elif scheme == "mem":
        if name not in _REGISTRY:
            raise UnknownName(f"no in-memory model {name!r}; call register_model() first")
        model = onnx.ModelProto.FromString(_REGISTRY[name])
    else:
        raise UnknownName(f"unknown model id scheme {scheme!r} in {model_id!r}; "
                          "use builder:, zoo:, file: or mem:")
    return load_model(model)


def resolve_model(model_id: str) -> onnx.ModelProto:
    """The graph named by ``model_id`` as an ``onnx.ModelProto`` (:func:`resolve_graph`'s model)."""
    return resolve_graph(model_id).model
