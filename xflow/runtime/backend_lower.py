"""Lowering: a :class:`~xflow.runtime.backend_graph.GraphView` → a :class:`Program` of kernels.

A *kernel* is one emitted step: a single ONNX node, or a fused group whose intermediate tensors
nobody else reads. The lowering

1. resolves ``Identity`` / ``Dropout`` by renaming (their consumers read the source tensor);
2. fuses (``fuse=True``) ``Conv`` → ``BatchNormalization`` (folded into the weights once, at
   build time) → residual ``Add`` → activation (``Relu``, ``Clip``, ``LeakyRelu``, ``Sigmoid``,
   ``Tanh``, ``HardSwish``, …); ``MatMul`` by a constant matrix (+ constant bias ``Add``) into
   ``F.linear`` on a pre-transposed weight; and the erf-GELU pattern ``x·½·(1 + erf(x/√2))`` into
   ``F.gelu``. A fused kernel is placed where its last node was, so every input is ready;
3. picks the memory layout: channels-last for convolutional graphs on the CPU (``layout="auto"``):
   graph inputs are converted once and torch keeps the format through convolution and pooling
   (NCHW max-pooling alone took 37 % of GoogLeNet's time);
4. emits each kernel with :mod:`xflow.runtime.backend_ops` (oneDNN convolutions with prepacked
   weights and fused post-ops on the CPU when available).

The program is what both the serial torch backend and the parallel code generator
(:mod:`xflow.parallel`) turn into a module, and what the per-kernel profiler times.
"""
from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xflow.errors import UnknownName
from xflow.runtime import backend_tune  # conv_choice looked up per call: tests force a kernel
from xflow.runtime.backend_graph import GraphView, OpView
from xflow.runtime.backend_ops import ALIAS_OPS, FUSIBLE_ACTIVATIONS, Ctx, EmitOptions, emit

__all__ = ["LowerOptions", "Kernel", "Program", "Names", "lower", "LAYOUTS", "ONEDNN_MODES"]

LAYOUTS = ("auto", "channels_last", "contiguous")
#: ``LowerOptions.onednn`` values (see there).
ONEDNN_MODES = ("auto", "on", "off", "tuned", "graph")



@dataclass(frozen=True)
class LowerOptions:
    """Knobs of the lowering (all recorded with results).

    Args:
        device: ``"cpu"`` or ``"cuda"``.
        layout: ``"auto"`` (channels-last when the graph has 2-D convolutions, on the CPU),
            ``"channels_last"`` or ``"contiguous"``.
        fuse: fuse Conv+BN+Add+activation, MatMul+bias and erf-GELU.
        onednn: ``"auto"`` (on the CPU when torch has oneDNN: each convolution by the shape rule
            :func:`xflow.runtime.backend_ops.prefers_onednn`), ``"on"`` (every convolution of at
            least ``onednn_min_flops``), ``"off"``, or ``"tuned"``: each convolution configuration
            measured (:mod:`xflow.runtime.backend_tune`), the rule's choice kept unless another
            kernel is significantly faster; or ``"graph"``: convolutions, residual adds and
            activations emitted as plain ``aten`` ops and the generated module frozen and run by
            torch's oneDNN Graph fuser (TorchScript; it compiles conv/BN/add/ReLU/pool partitions
            once per input shape, which removes most of the per-call cost of the direct oneDNN
            calls). Resolves to ``"off"`` where oneDNN is missing (``"graph"`` to ``"auto"``
            where the fuser is missing).
        onednn_min_flops: convolutions with fewer FLOPs stay on ``F.conv2d`` (fixed-cost
            break-even; the rule exempts grouped and strided ones).
    """

    device: str = "cpu"
    layout: str = "auto"
    fuse: bool = True
    onednn: str = "auto"
    onednn_min_flops: float = 4e6

    def as_dict(self) -> dict[str, Any]:
        return {"device": self.device, "layout": self.layout, "fuse": self.fuse, "onednn": self.onednn,
                "onednn_min_flops": self.onednn_min_flops}


@dataclass
class Kernel:
    """One emitted step.

    Attributes:
        name: the name of its first ONNX node (unique in the program).
        op: ``"Conv"``, or the fused group's ops joined by ``+`` (``"Conv+BatchNormalization+Relu"``).
        nodes: names of the ONNX nodes it computes, in graph order.
        anchor: the main node (the convolution of a fused group), for FLOP counts.
        inputs: non-constant tensors it reads (after alias renaming).
        outputs: tensors it writes that others (or the graph outputs) read.
        line: the Python statements.
    """

    name: str
    op: str
    nodes: list[str]
    anchor: OpView
    inputs: list[str]
    outputs: list[str]
    line: str


class Names:
    """Python identifiers for tensors: ``v_<name>`` for values, ``w_<name>`` for weights,
    ``d_<hint>`` for weights derived at build time."""

    def __init__(self, view: GraphView) -> None:
        self._map: dict[str, str] = {}
        self._used: set[str] = set()
        self.view = view
        for w in sorted(view.initializers):
            self._map[w] = self._fresh("w_" + self.clean(w))
        for n in view.nodes:
            for t in list(n.inputs) + list(n.outputs):
                if t and t not in self._map:
                    self._map[t] = self._fresh("v_" + self.clean(t))
        for t in view.inputs:
            if t not in self._map:
                self._map[t] = self._fresh("v_" + self.clean(t))

    @staticmethod
    def clean(s: str) -> str:
        """A short identifier fragment from an ONNX name (``/blocks/blocks.0/Conv`` → ``blocks_0_Conv``)."""
        s = re.sub(r"_output_0$", "", s)
        toks = [t for t in re.split(r"\W+", s) if t]
        out: list[str] = []
        for t in toks:
            if out and (t == out[-1] or t.startswith(out[-1]) and t[len(out[-1]):].isdigit()):
                t = t[len(out[-1]):] if t != out[-1] else ""
            if t:
                out.append(t)
        s = "_".join(out) or "t"
        return s[-48:].strip("_") or "t"

    def _fresh(self, base: str) -> str:
        name, k = base, 1
        while name in self._used or keyword.iskeyword(name):
            k += 1
            name = f"{base}_{k}"
        self._used.add(name)
        return name

    def fresh(self, base: str) -> str:
        """A new unused identifier starting with ``base``."""
        return self._fresh(base)

    def var(self, tensor: str) -> str:
        """Identifier of a tensor."""
        return self._map[tensor]

    def expr(self, tensor: str) -> str:
        """Expression reading a tensor inside generated methods (``self.w_x`` for weights)."""
        if self.view.is_const(tensor):
            return "self." + self._map[tensor]
        return self._map[tensor]

    def weights(self) -> dict[str, str]:
        """Initializer name → attribute name."""
        return {k: self._map[k] for k in self.view.initializers}


@dataclass
class Program:
    """The lowered model: kernels in a valid execution order plus what the module needs.

    Attributes:
        view: the graph it came from.
        kernels: the steps, topologically ordered.
        inputs / outputs: graph inputs; graph outputs after alias renaming (``output_names`` keeps
            the ONNX names).
        names: tensor → identifier.
        derived: ``(targets, expression)`` computed once at build time, in order.
        prologue: statements run on the graph inputs first (layout conversion).
        options: the lowering options, resolved (``layout``/``onednn`` concrete).
        fused_nodes: ONNX nodes absorbed into a fused kernel (beyond its first node).
        aliases: tensors an ``Identity``/``Dropout`` forwarded → the tensor they stand for.
    """

    view: GraphView
    kernels: list[Kernel]
    inputs: list[str]
    outputs: list[str]
    output_names: list[str]
    names: Names
    derived: list[tuple[list[str], str]]
    prologue: list[str]
    options: LowerOptions
    fused_nodes: int = 0
    aliases: dict[str, str] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def weight_refs(self) -> set[str]:
        """Attribute names (``w_*``/``d_*``) that kernel lines read through ``self.``."""
        refs: set[str] = set()
        for k in self.kernels:
            refs.update(re.findall(r"self\.([wd]_\w+)", k.line))
        refs.update(self.names.var(o) for o in self.outputs if self.view.is_const(o))
        return refs

    def op_counts(self) -> dict[str, int]:
        """Kernels per op label."""
        out: dict[str, int] = {}
        for k in self.kernels:
            out[k.op] = out.get(k.op, 0) + 1
        return out


def _resolve(opts: LowerOptions, view: GraphView) -> LowerOptions:
    from dataclasses import replace

    if opts.device not in ("cpu", "cuda"):
        raise UnknownName(f"unknown device {opts.device!r}; use 'cpu' or 'cuda'")
    if opts.layout not in LAYOUTS:
        raise UnknownName(f"unknown layout {opts.layout!r}; use one of {', '.join(LAYOUTS)}")
    if opts.onednn not in ONEDNN_MODES:
        raise UnknownName(f"unknown onednn setting {opts.onednn!r}; use one of {', '.join(ONEDNN_MODES)}")
    layout = opts.layout
    if layout == "auto":
        convs = [n for n in view.nodes if n.op_type == "Conv" and len(view.shape(n.inputs[0]) or ()) == 4]
        layout = "channels_last" if convs and opts.device == "cpu" else "contiguous"
    onednn = opts.onednn
    if onednn in ("auto", "tuned", "graph"):
        import torch

        if onednn == "graph" and (opts.device != "cpu" or not hasattr(torch.jit, "enable_onednn_fusion")):
            onednn = "auto"
        ok = opts.device == "cpu" and torch.backends.mkldnn.is_available() \
            and hasattr(torch.ops.mkldnn, "_convolution_pointwise")
        onednn = onednn if ok else "off"
    return replace(opts, layout=layout, onednn=onednn)


class _Lowering:
    def __init__(self, view: GraphView, opts: LowerOptions, conv_hook: Any = None) -> None:
        self.v = view
        self.opts = opts
        self.conv_hook = conv_hook
        self.names = Names(view)
        self.emit_opts = EmitOptions(device=opts.device, channels_last=opts.layout == "channels_last",
                                     onednn=opts.onednn in ("on", "auto", "tuned"),
                                     onednn_min_flops=opts.onednn_min_flops,
                                     onednn_rule=opts.onednn in ("auto", "tuned"),
                                     onednn_graph=opts.onednn == "graph")
        self.rename: dict[str, str] = {}
        self.derived: list[tuple[list[str], str]] = []
        self.graph_outputs = set(view.outputs)
        self.opset = view.opset

    # -- helpers ------------------------------------------------------------------------------
    def src(self, t: str) -> str:
        while t in self.rename:
            t = self.rename[t]
        return t

    def sole_consumer(self, t: str, absorbed: set[str] = frozenset()) -> OpView | None:
        """The only node reading ``t`` when ``t`` is not a graph output (and that node is free)."""
        if t in self.graph_outputs:
            return None
        cs = self.v.consumers(t)
        if len(cs) != 1 or cs[0].name in absorbed:
            return None
        return cs[0]

    def derive(self, hints: list[str], expr: str) -> list[str]:
        targets = [self.names.fresh("d_" + re.sub(r"^[vw]_", "", h)) for h in hints]
        self.derived.append((targets, expr))
        return ["self." + t for t in targets]

    def ctx(self, node: OpView, fused: dict[str, Any] | None = None, outputs: list[str] | None = None) -> Ctx:
        ins = [self.src(i) if i else "" for i in node.inputs]
        outs = outputs if outputs is not None else list(node.outputs)
        consts = {k: self.v.const(i) for k, i in enumerate(ins) if i and self.v.is_const(i)}
        return Ctx(
            node=node,
            x=[self.names.expr(i) if i else None for i in ins],
            y=[self.names.var(o) if o else "_unused" for o in outs],
            in_shapes=[self.v.shape(i) for i in ins],
            out_shapes=[self.v.shape(o) for o in outs],
            in_dtypes=[self.v.dtype(i) for i in ins],
            out_dtypes=[self.v.dtype(o) for o in outs],
            consts=consts,
            opts=self.emit_opts,
            opset=self.opset,
            fused=fused or {},
            derive_fn=self.derive,
        )

    # -- fusion patterns ------------------------------------------------------------------------
    def conv_group(self, conv: OpView, absorbed: set[str]) -> tuple[list[OpView], dict[str, Any], str]:
        """Nodes fused with ``conv``, the fusion payload and the group's output tensor (nodes another
        group already took, e.g. a residual ``Add`` claimed by the other branch's conv, stay out)."""
        group, fused = [conv], {}
        out = conv.outputs[0]
        if not self.opts.fuse or not self.v.is_const(conv.inputs[1]):
            return group, fused, out
        nxt = self.sole_consumer(out, absorbed)
        if nxt is not None and nxt.op_type == "BatchNormalization" and nxt.inputs[0] == out \
                and not int(nxt.attr("training_mode", 0)) \
                and all(self.v.is_const(i) for i in nxt.inputs[1:5]) \
                and sum(1 for o in nxt.outputs if o) == 1:
            ex = self.names.expr
            fused["bn"] = {"scale": ex(nxt.inputs[1]), "bias": ex(nxt.inputs[2]), "mean": ex(nxt.inputs[3]),
                           "var": ex(nxt.inputs[4]), "eps": float(nxt.attr("epsilon", 1e-5))}
            group.append(nxt)
            out = nxt.outputs[0]
            nxt = self.sole_consumer(out, absorbed)
        if nxt is not None and nxt.op_type == "Add" and len(nxt.inputs) == 2:
            other = nxt.inputs[1] if nxt.inputs[0] == out else nxt.inputs[0]
            other = self.src(other)
            if other != out and not self.v.is_const(other) and self.v.shape(other) is not None \
                    and self.v.shape(other) == self.v.shape(out) == self.v.shape(nxt.outputs[0]) \
                    and self.v.dtype(other) == self.v.dtype(out):
                fused["add"] = self.names.expr(other)
                fused["add_tensor"] = other
                group.append(nxt)
                out = nxt.outputs[0]
                nxt = self.sole_consumer(out, absorbed)
        if nxt is not None and nxt.op_type in FUSIBLE_ACTIVATIONS and nxt.inputs[0] == out:
            consts = {k: self.v.const(i) for k, i in enumerate(nxt.inputs) if i and self.v.is_const(i)}
            if nxt.op_type != "Clip" or all(not i or self.v.is_const(i) for i in nxt.inputs[1:]):
                fused["act"] = (nxt.op_type, dict(nxt.attrs), consts)
                group.append(nxt)
                out = nxt.outputs[0]
        return group, fused, out

    def linear_group(self, mm: OpView) -> tuple[list[OpView], str, str] | None:
        """``MatMul(x, W)`` (+ ``Add(b)``) with constant 2-D ``W`` (and 1-D ``b``): F.linear."""
        w = mm.inputs[1]
        wv = self.v.const(w)
        if not self.opts.fuse or wv is None or wv.ndim != 2 or self.v.is_const(mm.inputs[0]):
            return None
        if self.v.dtype(mm.inputs[0]) is None or np.dtype(self.v.dtype(mm.inputs[0])) != wv.dtype:
            return None
        group, out, bias = [mm], mm.outputs[0], "None"
        nxt = self.sole_consumer(out)
        if nxt is not None and nxt.op_type == "Add":
            other = nxt.inputs[1] if nxt.inputs[0] == out else nxt.inputs[0]
            bv = self.v.const(other)
            if bv is not None and bv.ndim == 1 and bv.shape[0] == wv.shape[1] and bv.dtype == wv.dtype:
                bias = self.names.expr(other)
                group.append(nxt)
                out = nxt.outputs[0]
        return group, bias, out

    def gelu_group(self, erf: OpView) -> tuple[list[OpView], str, str] | None:
        """``Div(x, √2) → Erf → Add(1) → Mul(x) → Mul(½)`` (either Mul order) → ``F.gelu``."""
        if not self.opts.fuse:
            return None
        div = self.v.producer(erf.inputs[0])
        if div is None or div.op_type not in ("Div", "Mul") or self.sole_consumer(div.outputs[0]) is not erf:
            return None
        k = self.v.const(div.inputs[1])
        want = np.sqrt(2.0) if div.op_type == "Div" else 1 / np.sqrt(2.0)
        if k is None or k.size != 1 or abs(float(k.ravel()[0]) - want) > 1e-4:
            return None
        x = self.src(div.inputs[0])
        add = self.sole_consumer(erf.outputs[0])
        if add is None or add.op_type != "Add":
            return None
        one = self.v.const(add.inputs[1] if add.inputs[0] == erf.outputs[0] else add.inputs[0])
        if one is None or one.size != 1 or float(one.ravel()[0]) != 1.0:
            return None
        m1 = self.sole_consumer(add.outputs[0])
        if m1 is None or m1.op_type != "Mul":
            return None
        other = m1.inputs[1] if m1.inputs[0] == add.outputs[0] else m1.inputs[0]
        m2 = self.sole_consumer(m1.outputs[0])
        if m2 is None or m2.op_type != "Mul":
            return None
        half = self.v.const(m2.inputs[1] if m2.inputs[0] == m1.outputs[0] else m2.inputs[0])
        if self.src(other) != x or half is None or half.size != 1 or float(half.ravel()[0]) != 0.5:
            return None
        return [div, erf, add, m1, m2], x, m2.outputs[0]

    # -- the pass ----------------------------------------------------------------------------------
    def run(self) -> Program:
        v = self.v
        pos = {n.name: i for i, n in enumerate(v.nodes)}
        absorbed: set[str] = set()
        planned: dict[int, list[Kernel]] = {}
        fused_nodes = 0
        for n in v.nodes:
            if n.name in absorbed:
                continue
            if n.op_type in ALIAS_OPS and n.inputs and n.inputs[0]:
                outs = [o for o in n.outputs if o]
                if n.op_type == "Dropout" and len(outs) > 1:
                    pass  # a mask output is requested: emitted by the generic path (unsupported)
                else:
                    self.rename[outs[0]] = n.inputs[0]
                    absorbed.add(n.name)
                    continue
            group: list[OpView] = [n]
            line = ""
            out_tensor: str | None = None
            if n.op_type == "Conv":
                group, fused, out_tensor = self.conv_group(n, absorbed)
                c = self.ctx(n, fused=fused, outputs=[out_tensor])
                if self.opts.onednn == "tuned" and len(self.v.shape(n.inputs[0]) or ()) == 4 \
                        and self.v.is_const(n.inputs[1]) and all(s is not None for s in c.in_shapes[:2]):
                    c.fused["impl"] = backend_tune.conv_choice(c)
                if self.conv_hook is not None:
                    self.conv_hook(c)
                line = emit(c)
            elif n.op_type == "MatMul" and (lin := self.linear_group(n)) is not None:
                group, bias, out_tensor = lin
                (wt,) = self.derive([f"{self.names.var(n.outputs[0])}_wt"],
                                    f"{self.names.expr(n.inputs[1])}.t().contiguous()")
                line = (f"{self.names.var(out_tensor)} = F.linear({self.names.expr(self.src(n.inputs[0]))}, "
                        f"{wt}, {bias})")
            if n.op_type in ("Div", "Mul"):
                cs = v.consumers(n.outputs[0])
                if len(cs) == 1 and cs[0].op_type == "Erf" and (gl := self.gelu_group(cs[0])) is not None:
                    group, x, out_tensor = gl
                    line = f"{self.names.var(out_tensor)} = F.gelu({self.names.expr(x)})"
            if not line:
                group = [n]
                line = emit(self.ctx(n))
                outs = [o for o in n.outputs if o]
            else:
                outs = [out_tensor]
                fused_nodes += len(group) - 1
            absorbed.update(g.name for g in group)
            inside = {o for g in group for o in g.outputs if o}
            reads: list[str] = []
            for g in group:
                for i in g.inputs:
                    s = self.src(i) if i else ""
                    if s and s not in inside and not v.is_const(s) and s not in reads:
                        reads.append(s)
            label = "+".join(g.op_type for g in group)
            k = Kernel(name=n.name, op=label, nodes=[g.name for g in group], anchor=n, inputs=reads,
                       outputs=outs, line=line)
            planned.setdefault(max(pos[g.name] for g in group), []).append(k)
        kernels = [k for i in sorted(planned) for k in planned[i]]
        prologue = []
        if self.opts.layout == "channels_last":
            for t in v.inputs:
                shp, dt = v.shape(t), v.dtype(t)
                if shp is not None and len(shp) == 4 and dt is not None and np.dtype(dt).kind == "f":
                    prologue.append(f"{self.names.var(t)} = {self.names.var(t)}"
                                    ".contiguous(memory_format=torch.channels_last)")
        outputs = [self.src(o) for o in v.outputs]
        return Program(view=v, kernels=kernels, inputs=list(v.inputs), outputs=outputs,
                       output_names=list(v.outputs), names=self.names, derived=self.derived,
                       prologue=prologue, options=self.opts, fused_nodes=fused_nodes,
                       aliases={t: self.src(t) for t in self.rename})


def lower(view: GraphView, options: LowerOptions | None = None, *, conv_hook: Any = None) -> Program:
    """Lower ``view`` into a :class:`Program` (see module docstring).

    ``conv_hook(ctx)`` is called with every (fused) convolution's emit context before it is emitted
    (``benchmarks/conv_kernels.py`` collects them to time each kernel choice).
    Raises :class:`~xflow.errors.UnsupportedOperator` naming the first node the torch backend
    cannot translate.
    """
    opts = _resolve(options or LowerOptions(), view)
    return _Lowering(view, opts, conv_hook).run()
