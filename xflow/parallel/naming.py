"""Python identifiers for ONNX tensors and weights, and the per-node source lines.

Shared by the code generator and the per-operator profiler so both run exactly the same code.
"""
from __future__ import annotations

import keyword
import re

from xflow.parallel.dataflow import DataflowGraph
from xflow.parallel.ops import ALIAS_OPS, OpNode, emit

__all__ = ["Names", "node_lines"]


class Names:
    """Maps tensor names to unique Python identifiers: ``v_<name>`` for values, ``w_<name>`` for weights."""

    def __init__(self, g: DataflowGraph) -> None:
        self._map: dict[str, str] = {}
        self._used: set[str] = set()
        self.g = g
        for w in sorted(g.initializers):
            self._map[w] = self._fresh("w_" + self._clean(w))
        for n in g.nodes:
            for t in list(n.inputs) + list(n.outputs):
                if t and t not in self._map:
                    self._map[t] = self._fresh("v_" + self._clean(t))

    @staticmethod
    def _clean(s: str) -> str:
        s = re.sub(r"_output_0$", "", s)
        toks = [t for t in re.split(r"\W+", s) if t]
        out: list[str] = []
        for t in toks:  # '/blocks/blocks.0/b3/b3.0/Conv' -> 'blocks_0_b3_0_Conv'
            if out and (t == out[-1] or t.startswith(out[-1]) and t[len(out[-1]):].isdigit()):
                t = t[len(out[-1]):] if t != out[-1] else ""
            if t:
                out.append(t)
        s = "_".join(out) or "t"
        return s[-48:].strip("_")

    def _fresh(self, base: str) -> str:
        name, k = base, 1
        while name in self._used or keyword.iskeyword(name):
            k += 1
            name = f"{base}_{k}"
        self._used.add(name)
        return name

    def var(self, tensor: str) -> str:
        """Identifier of a tensor (weights get the ``w_`` prefix)."""
        return self._map[tensor]

    def expr(self, tensor: str) -> str:
        """Expression reading a tensor inside generated methods (``self.w_x`` for weights)."""
        if tensor in self.g.initializers:
            return "self." + self._map[tensor]
        return self._map[tensor]

    def weights(self) -> dict[str, str]:
        """Initializer name → attribute name."""
        return {k: self._map[k] for k in self.g.initializers}


def node_lines(g: DataflowGraph, names: Names) -> list[str]:
    """One Python source line per node of ``g`` (raises UnsupportedOperator for unknown ops)."""
    lines = []
    for n in g.nodes:
        if n.op in ALIAS_OPS:
            outs = [o for o in n.outputs if o]
            lines.append(f"{names.var(outs[0])} = {names.expr(n.inputs[0])}")
            continue
        on = OpNode(
            op=n.op, name=n.name,
            inputs=[names.expr(i) if i else None for i in n.inputs],
            outputs=[names.var(o) if o else "_unused" for o in n.outputs],
            attrs=n.attrs,
            consts={k: g.initializers[i] for k, i in enumerate(n.inputs) if i in g.initializers},
            in_shapes=[g.shapes.get(i) for i in n.inputs],
            out_shapes=[g.shapes.get(o) for o in n.outputs],
        )
        lines.append(emit(on, n.domain))
    return lines
