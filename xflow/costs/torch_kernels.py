r"""``torch``: the roofline over the kernels of the PyTorch module the torch backend generates.

The torch backend (:mod:`xflow.runtime.backend_lower`) does not run the ONNX graph node by node:
it drops ``Identity``/``Dropout``, fuses ``Conv`` → ``BatchNormalization`` → residual ``Add`` →
activation, ``MatMul`` + bias into ``F.linear`` and the erf-GELU pattern into ``F.gelu``. A rewrite
that splits such a group costs extra kernels there, one that ORT-style folds what the lowering
folds anyway costs nothing. So the cost is taken over the lowered program's kernels :math:`k`:

.. math::
    c_{\mathrm{torch}}(G) = \sum_{k} \max\Big(\frac{F_k}{P\,s_T(F_k)}, \frac{B_k}{W}\Big) + o,
    \quad F_k = \sum_{v \in k} F_v,\quad B_k = \text{bytes of } k\text{'s inputs, weights and outputs}

with the device profile's :math:`P, W, o, s_T` (:mod:`xflow.costs.roofline`): a fused group's
intermediate tensors never reach memory and it pays one per-kernel overhead. Not measured (the
kernel timings of the generated module are not tabled yet); shape-only ops cost nothing.
"""
from __future__ import annotations

from typing import Any

from xflow.costs.base import CachedCost
from xflow.costs.profiles import DeviceProfile, nominal
from xflow.costs.roofline import node_seconds
from xflow.graphs.ir import Graph, ins, outs
from xflow.graphs.opcost import FREE_OPS, op_flops, tensor_bytes
from xflow.runtime.backend_graph import GraphView
from xflow.runtime.backend_lower import LowerOptions, lower

__all__ = ["TorchKernelCost"]


class TorchKernelCost(CachedCost):
    """Roofline (ms) over the torch backend's generated kernels (see the module docstring).

    Args:
        profile: a :class:`DeviceProfile` or a nominal device name (``"cpu"``, ``"cuda"``).
        threads: intra-op threads.
        device: the lowering's device (``cpu``: channels-last convolutions, oneDNN).
    """

    name = "torch"

    def __init__(self, profile: DeviceProfile | str = "cpu", *, threads: int = 1, device: str = "cpu") -> None:
        super().__init__()
        self.profile = nominal(profile) if isinstance(profile, str) else profile
        self.threads, self.device = int(threads), device

    def __repr__(self) -> str:
        return f"TorchKernelCost({self.profile!r}, threads={self.threads}, device={self.device!r})"

    def breakdown(self, model) -> list[dict[str, Any]]:
        """Per-kernel rows ``{kernel, op, nodes, flops, bytes, ms}``."""
        graph = Graph.of(model)
        view = GraphView(graph)
        by_name = {v.name: n for v, n in zip(view.nodes, graph.nodes)}
        program = lower(view, LowerOptions(device=self.device))
        rows = []
        for k in program.kernels:
            nodes = [by_name[n] for n in k.nodes if n in by_name]
            if all(n.op_type in FREE_OPS for n in nodes):
                rows.append({"kernel": k.name, "op": k.op, "nodes": len(nodes), "flops": 0.0, "bytes": 0.0,
                             "ms": 0.0})
                continue
            flops = float(sum(op_flops(graph, n) for n in nodes))
            produced = {t for n in nodes for t in outs(n) if t}
            reads = {t for n in nodes for t in ins(n) if t and t not in produced}
            bytes_ = float(sum(tensor_bytes(graph, t) for t in reads) + sum(tensor_bytes(graph, t) for t in k.outputs))
            ms = 1e3 * node_seconds(self.profile, flops, bytes_, self.threads)
            rows.append({"kernel": k.name, "op": k.op, "nodes": len(nodes), "flops": flops, "bytes": bytes_,
                         "ms": ms})
        return rows

    def compute(self, graph: Graph) -> float:
        return float(sum(r["ms"] for r in self.breakdown(graph)))
