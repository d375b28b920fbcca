"""Graph clean-up before clustering: constant propagation and dead-code elimination, with counts.

Both are the one folding pass of the graph core (:func:`xflow.graphs.folding.fold`), run on a
``ModelProto``: *constant propagation* evaluates every node whose inputs are all known at compile
time (initializers, ``Constant`` nodes, ``Shape`` of a statically shaped tensor, results of other
folded nodes) and stores its outputs as initializers; *dead-code elimination* removes nodes none of
whose outputs reach a graph output, and initializers nobody reads. Both return how much they
removed, so the compiler can report it (the Ramiel paper reports the same two passes).
:func:`xflow.parallel.dataflow.from_onnx` runs them through :func:`xflow.graphs.load_model`.
"""
from __future__ import annotations

import onnx

from xflow.graphs.folding import fold_proto

__all__ = ["propagate_constants", "eliminate_dead_code"]


def propagate_constants(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """Fold every compile-time-constant node into initializers.

    Returns ``(new_model, n_nodes_folded)``; the input model is not modified.
    """
    new, stats = fold_proto(model, dce=False)
    return new, stats.const_nodes_folded + stats.identities_resolved


def eliminate_dead_code(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int, int]:
    """Remove nodes that no graph output depends on and initializers that nothing reads.

    Returns ``(new_model, n_nodes_removed, n_initializers_removed)``.
    """
    new, stats = fold_proto(model, constants=False)
    return new, stats.dead_nodes_removed, stats.dead_initializers_removed
