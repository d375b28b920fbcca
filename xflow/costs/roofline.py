r"""The one roofline: a graph's latency from FLOPs and bytes per operator over a device profile.

.. math::
    t(G) = \sum_{v \in G} \Big( \max\Big(\frac{F_v}{P\,s_T(F_v)}, \frac{B_v}{W}\Big) + o
           + [v \text{ cuts a Conv output}]\;\rho\,B^{in}_v \Big)

with :math:`F_v`, :math:`B_v` the one FLOP and byte count (:mod:`xflow.graphs.opcost`), and the
device's peak FLOP/s :math:`P`, bandwidth :math:`W`, per-operator overhead :math:`o`,
intra-op speed-up :math:`s_T` at :math:`T` threads and Split-of-Conv reorder cost per byte
:math:`\rho` from a :class:`~xflow.costs.profiles.DeviceProfile`. Shape-only ops
(:data:`~xflow.graphs.opcost.FREE_OPS`) cost nothing. A ``Split``/``Slice`` whose input is a
``Conv`` output (possibly through elementwise activations) pays :math:`\rho\,B^{in}`: on the CPU
of ``MEASUREMENTS.md`` ONNX Runtime's blocked conv layout makes a merged conv + Split a loss the
plain roofline calls a win; :math:`\rho` is fitted by :func:`xflow.costs.calibration.calibrate`
(0 in the nominal profiles).

The roofline reads shapes only, so it costs a rewrite candidate's tensor-sharing graph without
touching weights.
"""
from __future__ import annotations

from typing import Any

import onnx_ir as ir

from xflow.costs.base import CachedCost
from xflow.costs.profiles import DeviceProfile, nominal
from xflow.graphs.ir import Graph, ins
from xflow.graphs.opcost import FREE_OPS, op_bytes, op_flops, tensor_bytes

__all__ = ["Roofline", "node_seconds"]

#: Elementwise ops a Split-of-Conv reorder looks through (Conv → Relu → Split).
_THROUGH = frozenset({"Relu", "Clip", "Sigmoid", "Tanh", "LeakyRelu", "HardSwish", "HardSigmoid", "Gelu",
                      "Elu", "Selu", "Softplus"})


def node_seconds(profile: DeviceProfile, flops: float, bytes_: float, threads: int = 1) -> float:
    """Roofline time of one (non-free) operator: ``max(F / (P s_T), B / W) + o`` in seconds."""
    return max(flops / (profile.flops_per_s * profile.speedup(flops, threads)),
               bytes_ / profile.bytes_per_s) + profile.op_overhead_s


def _cuts_conv_output(graph: Graph, node: ir.Node) -> bool:
    t = ins(node)[0] if node.inputs else ""
    for _ in range(4):
        p = graph.producer(t)
        if p is None:
            return False
        if p.op_type == "Conv":
            return True
        if p.op_type not in _THROUGH or not p.inputs:
            return False
        t = ins(p)[0]
    return False


class Roofline(CachedCost):
    """Roofline cost (ms) of a graph over ``profile`` at ``threads`` intra-op threads.

    Args:
        profile: a :class:`DeviceProfile`, or a nominal device name (``"cpu"``, ``"cuda"``).
        name: the registry name this instance answers to (``nominal``, ``calibrated``).
        threads: intra-op threads (scales compute by the profile's :math:`s_T`).
    """

    def __init__(self, profile: DeviceProfile | str = "cpu", *, name: str | None = None, threads: int = 1) -> None:
        super().__init__()
        self.profile = nominal(profile) if isinstance(profile, str) else profile
        self.threads = int(threads)
        self.name = name or ("nominal" if self.profile.name.endswith("-nominal") else "calibrated")

    def breakdown(self, model) -> list[dict[str, Any]]:
        """Per-operator rows ``{node, op, flops, bytes, ms}`` (for notebooks and debugging)."""
        graph = Graph.of(model)
        p = self.profile
        rows = []
        for node in graph.nodes:
            flops, bytes_ = op_flops(graph, node), op_bytes(graph, node)
            if node.op_type in FREE_OPS:
                ms = 0.0
            else:
                s = node_seconds(p, flops, bytes_, self.threads)
                if p.split_reorder_s_per_byte and node.op_type in ("Split", "Slice") and _cuts_conv_output(graph, node):
                    s += p.split_reorder_s_per_byte * tensor_bytes(graph, ins(node)[0])
                ms = 1e3 * s
            rows.append({"node": node.name, "op": node.op_type, "flops": flops, "bytes": bytes_, "ms": ms})
        return rows

    def compute(self, graph: Graph) -> float:
        return float(sum(r["ms"] for r in self.breakdown(graph)))

    def __repr__(self) -> str:
        return f"Roofline({self.profile!r}, threads={self.threads})"
