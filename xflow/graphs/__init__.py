"""ONNX graph IR: load/validate with clear errors, shapes, hashing, constant folding,
conversion to PyTorch Geometric, graphviz rendering, toy-graph builders and the model zoo.

Names are imported lazily so ``import xflow.graphs`` stays cheap.
"""
from __future__ import annotations

from xflow._lazy import lazy_getattr

_EXPORTS = {
    "load_model": "xflow.graphs.model",
    "Graph": "xflow.graphs.model",
    "TensorInfo": "xflow.graphs.model",
    "model_hash": "xflow.graphs.hashing",
    "fold_constants": "xflow.graphs.folding",
    "to_pyg": "xflow.graphs.pyg",
    "render": "xflow.graphs.rendering",
    "to_dot": "xflow.graphs.rendering",
    "read_model": "xflow.graphs.model",
    "builders": "xflow.graphs.builders",
    "zoo": "xflow.graphs.zoo",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS, submodules=("zoo", "builders"))
