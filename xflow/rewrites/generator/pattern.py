"""Pattern graphs: the source and target sides of a generated rule, as plain data.

A :class:`Pattern` has named **variables** with symbolic shapes (the rule's inputs), a list of
:class:`PNode` s in topological order (each an :class:`~xflow.rewrites.generator.ops.OpSpec` key
applied to variables or earlier node outputs) and its **outputs**. A reference to a tensor is a
string: a variable name (``"x1"``) or ``"<node index>:<output index>"`` (``"0:0"``).

Patterns round-trip through JSON (:meth:`Pattern.to_json` / :meth:`Pattern.from_json`), evaluate
on concrete arrays (:meth:`Pattern.run` with any of the op semantics) and print as terms
(``MatMul(x1, Concat_1(w1, w2))``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from xflow.rewrites.generator.ops import OPS, dim_value, shape_value

__all__ = ["PNode", "Pattern", "shape_to_json", "shape_from_json", "is_var"]


def is_var(ref: str) -> bool:
    """Whether ``ref`` names a variable (not a node output)."""
    return ":" not in ref


def shape_to_json(shape) -> list:
    """Symbolic shape as JSON: ``[["m"], ["k", "n"], 3]`` (a list is a sum of symbols)."""
    return [d if isinstance(d, int) else list(d) for d in shape]


def shape_from_json(data) -> tuple:
    """Inverse of :func:`shape_to_json`."""
    return tuple(d if isinstance(d, int) else tuple(d) for d in data)


@dataclass(frozen=True)
class PNode:
    """One node of a pattern: op spec ``op`` applied to tensor references ``inputs``."""

    op: str
    inputs: tuple[str, ...]


@dataclass(frozen=True)
class Pattern:
    """A small graph over symbolic-shaped variables (see the module docstring)."""

    variables: tuple[tuple[str, tuple], ...]   # (name, symbolic shape)
    nodes: tuple[PNode, ...]
    outputs: tuple[str, ...]

    # -- structure ---------------------------------------------------------------------------
    @property
    def var_shapes(self) -> dict[str, tuple]:
        """``{variable: symbolic shape}``."""
        return dict(self.variables)

    def used_variables(self) -> set[str]:
        """Variables read by some node or passed straight to an output."""
        used = {r for n in self.nodes for r in n.inputs if is_var(r)}
        return used | {r for r in self.outputs if is_var(r)}

    def shapes(self) -> dict[str, tuple]:
        """Symbolic shape of every reference (variables and node outputs)."""
        out = dict(self.variables)
        for i, n in enumerate(self.nodes):
            spec = OPS[n.op]
            res = spec.shapes([out[r] for r in n.inputs])
            if res is None:
                raise ValueError(f"pattern node {i} ({n.op}) does not type-check")
            for j, s in enumerate(res):
                out[f"{i}:{j}"] = s
        return out

    def op_types(self) -> list[str]:
        """ONNX op types of the nodes, in order."""
        return [OPS[n.op].op_type for n in self.nodes]

    # -- evaluation --------------------------------------------------------------------------
    def run(self, values: dict[str, Any], env: dict[str, int], mode: str = "float",
            funcs: dict[str, Any] | None = None) -> list[Any]:
        """Outputs for variable ``values`` under symbol sizes ``env``.

        ``mode``: ``"float"`` (numpy), ``"fingerprint"`` (int64 mod PRIME) or ``"smt"`` (z3 terms,
        ``funcs`` holds uninterpreted functions for Sigmoid/Tanh).
        """
        vals = dict(values)
        shapes = self.shapes()
        for i, n in enumerate(self.nodes):
            spec = OPS[n.op]
            xs = [vals[r] for r in n.inputs]
            if spec.kind == "split":
                ax, pos = spec.param
                first = dim_value(shapes[n.inputs[0]][ax][:pos], env)
                res = spec.split_eval(xs[0], first)
            elif mode == "float":
                res = spec.evaluate(xs)
            elif mode == "fingerprint":
                res = spec.fingerprint(xs)
            else:
                res = spec.smt(xs, funcs or {})
            for j, v in enumerate(res):
                vals[f"{i}:{j}"] = v
        return [vals[r] for r in self.outputs]

    # -- printing / JSON ---------------------------------------------------------------------
    def term(self, ref: str) -> str:
        """``ref`` as a term, e.g. ``Relu(MatMul(x1, w1))``."""
        if is_var(ref):
            return ref
        i, j = (int(t) for t in ref.split(":"))
        n = self.nodes[i]
        inner = f"{n.op}({', '.join(self.term(r) for r in n.inputs)})"
        return f"{inner}[{j}]" if OPS[n.op].n_out > 1 else inner

    def __str__(self) -> str:
        return " | ".join(self.term(r) for r in self.outputs)

    def to_json(self) -> dict[str, Any]:
        """Plain-data form (see :func:`shape_to_json`)."""
        return {"variables": {v: shape_to_json(s) for v, s in self.variables},
                "nodes": [{"op": n.op, "inputs": list(n.inputs)} for n in self.nodes],
                "outputs": list(self.outputs), "term": str(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Pattern":
        """Inverse of :meth:`to_json`."""
        return cls(tuple((v, shape_from_json(s)) for v, s in data["variables"].items()),
                   tuple(PNode(n["op"], tuple(n["inputs"])) for n in data["nodes"]),
                   tuple(data["outputs"]))

    def restrict(self, names: Sequence[str]) -> "Pattern":
        """The same pattern with only the variables in ``names`` declared (in that order)."""
        shapes = dict(self.variables)
        return Pattern(tuple((v, shapes[v]) for v in names), self.nodes, self.outputs)

    def rename(self, mapping: dict[str, str]) -> "Pattern":
        """Variables renamed by ``mapping`` (others kept)."""
        f: Callable[[str], str] = lambda r: mapping.get(r, r)  # noqa: E731
        return Pattern(tuple((f(v), s) for v, s in self.variables),
                       tuple(PNode(n.op, tuple(f(r) for r in n.inputs)) for n in self.nodes),
                       tuple(f(r) for r in self.outputs))


def random_values(pattern: Pattern, env: dict[str, int], rng: np.random.Generator,
                  dtype=np.float32) -> dict[str, np.ndarray]:
    """Seeded random values for the pattern's variables at symbol sizes ``env``."""
    return {v: rng.standard_normal(shape_value(s, env)).astype(dtype) for v, s in pattern.variables}
