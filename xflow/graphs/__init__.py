"""The one ONNX IR of xflow (on onnx-ir): load/validate with clear errors, shapes inferred once,
constant folding + DCE, editing by tensor-sharing clones, hashing, FLOPs/bytes per op,
conversion to PyTorch Geometric, graphviz rendering, toy-graph builders and the model zoo.

Names are imported lazily so ``import xflow.graphs`` stays cheap.
"""
from __future__ import annotations

from xflow._lazy import lazy_getattr

_EXPORTS = {
    "load_model": "xflow.graphs.model",
    "read_model": "xflow.graphs.model",
    "Graph": "xflow.graphs.ir",
    "TensorInfo": "xflow.graphs.ir",
    "attrs": "xflow.graphs.ir",
    "ins": "xflow.graphs.ir",
    "outs": "xflow.graphs.ir",
    "as_proto": "xflow.graphs.ir",
    "Editor": "xflow.graphs.edit",
    "Changes": "xflow.graphs.edit",
    "graph_hash": "xflow.graphs.hashing",
    "model_hash": "xflow.graphs.hashing",
    "fold": "xflow.graphs.folding",
    "fold_constants": "xflow.graphs.folding",
    "FoldStats": "xflow.graphs.folding",
    "op_flops": "xflow.graphs.opcost",
    "op_bytes": "xflow.graphs.opcost",
    "to_pyg": "xflow.graphs.pyg",
    "render": "xflow.graphs.rendering",
    "to_dot": "xflow.graphs.rendering",
    "builders": "xflow.graphs.builders",
    "zoo": "xflow.graphs.zoo",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS, submodules=("zoo", "builders"))
