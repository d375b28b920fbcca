"""The lazy computation graph: per-example code records nodes; nothing runs until ``forward``.

Usage::

    from xflow import autobatch as ab
    with ab.Graph(strategy="agenda") as g:
        losses = []
        for words, tags in batch:                     # ordinary per-example code
            hs = [ab.lookup(E, w) for w in words]
            losses += [ab.cross_entropy(ab.affine(b, W, h), t) for h, t in zip(hs, tags)]
        loss = ab.esum(losses)
        loss.backward()                               # plans, batches, runs, backprops

**Storage is struct-of-arrays**: per node the graph keeps one signature id, the end offset of its
operand list in one flat operand array and one integer of per-node data (``array`` columns, no
Python object per node besides the :class:`Expr` handed back to the caller). Everything else a
node needs is a property of its **signature** and is stored once per signature: the op, the
operand types, the shared parameter tensors, the static attributes, the operand views, the output
type. A signature is ``(op, attributes, identity of the shared parameters, operand types)`` where
a **type** is ``(shape, dtype, device, view)``, interned to a small integer when first seen — so
recording a node costs one dict lookup on a short tuple of integers, and shapes are inferred
(and checked, raising :class:`~xflow.errors.ShapeMismatch` at the line that built the node) once
per new signature. A float32 and a float64 operand have different types, hence different
signatures: they never batch together, and a node's output keeps its dtype.

``forward`` plans the pending nodes (:mod:`xflow.autobatch.schedule`, with a strategy from
:mod:`xflow.autobatch.strategies`) and executes the plan (:mod:`xflow.autobatch.executor`).
A graph can be extended after a ``forward`` (parsers read predictions while building): the next
forward plans only the new nodes, with depths *relative* to the nodes already evaluated, as DyNet
does. Parameters are ordinary torch tensors (``nn.Parameter``); gradients reach them through torch
autograd (each forward is one differentiable segment with DyNet-style batched backward).
"""
from __future__ import annotations

import inspect
import logging
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from xflow.errors import ShapeMismatch, UnknownName, XflowError

from .executor import gather_values, run_segment
from .memory import ensure_default as _retain_heap_once
from .ops import OPS, OpShapeError, OpSpec, Shape
from .schedule import analyze, arrange, primary_slot
from .strategies import resolve_strategy

__all__ = ["Graph", "Expr", "current_graph", "GraphClosed", "DeviceMismatch", "TypeInfo"]

log = logging.getLogger(__name__)
_PKG_DIR = os.path.dirname(os.path.abspath(__file__))
_local = threading.local()


class GraphClosed(XflowError):
    """An expression was used outside (or after) the graph that recorded it."""


class DeviceMismatch(ShapeMismatch):
    """Operands or parameters of one node live on different devices."""


def current_graph() -> "Graph":
    """The innermost active ``with Graph():`` block; raises :class:`GraphClosed` when there is none."""
    try:
        return _local.stack[-1]
    except (AttributeError, IndexError):
        raise GraphClosed("no active autobatch graph: build expressions inside `with autobatch.Graph() as g:`") from None


_INTERNAL = {os.path.join(_PKG_DIR, f) for f in ("graph.py", "functional.py", "ops.py", "cells.py")}


def _creation_site() -> str:
    """``file:line in function`` of the first stack frame outside the recording machinery.

    Frames in ``graph.py``, ``functional.py``, ``ops.py`` and ``cells.py`` are skipped, so the site
    is the user's (or the model's) line that asked for the node.
    """
    frame = inspect.currentframe()
    try:
        while frame is not None:
            if os.path.abspath(frame.f_code.co_filename) not in _INTERNAL:
                return f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"
            frame = frame.f_back
        return "<unknown>"
    finally:
        del frame


class TypeInfo(tuple):
    """``(shape, dtype, device, view)`` of an expression; ``view`` is ``None`` or ``(start, stop)``."""

    __slots__ = ()

    @property
    def shape(self) -> Shape:
        return self[0]

    @property
    def dtype(self) -> torch.dtype:
        return self[1]

    @property
    def device(self) -> torch.device:
        return self[2]

    @property
    def view(self) -> tuple[int, int] | None:
        return self[3]


class Expr:
    """A handle on one recorded node: its graph, node id and type id (shape, dtype, device, view).

    Arithmetic operators record nodes (``a + b``, ``a - b``, ``a * b``, ``-a``; ``x[i]`` picks one
    element). ``x[i:j]`` on a vector records *nothing*: it returns a view ``Expr`` of the same
    node (its type carries the view); the consumer's signature includes it and the executor slices
    the gathered operand (so the ``h``/``c`` halves of an LSTM state cost no extra nodes).
    :meth:`value` runs the graph (once) and returns the tensor.
    """

    __slots__ = ("graph", "node", "tid")

    def __init__(self, graph: "Graph", node: int, tid: int):
        self.graph = graph
        self.node = node
        self.tid = tid

    @property
    def shape(self) -> Shape:
        """Per-example shape (of the view, for a view expression)."""
        return self.graph._types[self.tid][0]

    @property
    def dtype(self) -> torch.dtype:
        return self.graph._types[self.tid][1]

    @property
    def device(self) -> torch.device:
        return self.graph._types[self.tid][2]

    @property
    def sl(self) -> tuple[int, int] | None:
        """``(start, stop)`` for a view of a vector node, else ``None``."""
        return self.graph._types[self.tid][3]

    def __repr__(self) -> str:
        sl = self.sl
        view = f"[{sl[0]}:{sl[1]}]" if sl else ""
        return f"Expr({self.graph.op[self.node]}#{self.node}{view}, shape={self.shape})"

    # arithmetic -------------------------------------------------------------------------
    def __add__(self, other: "Expr") -> "Expr":
        return self.graph.record_binary("add", self, other)

    def __sub__(self, other: "Expr") -> "Expr":
        return self.graph.record_binary("sub", self, other)

    def __mul__(self, other: "Expr | float") -> "Expr":
        if isinstance(other, (int, float)):
            return self.graph.record_unary("scale", self, (float(other),))
        return self.graph.record_binary("mul", self, other)

    __rmul__ = __mul__

    def __neg__(self) -> "Expr":
        return self.graph.record_unary("neg", self)

    def __getitem__(self, key: int | slice) -> "Expr":
        if isinstance(key, slice):
            shape = self.shape
            if key.step not in (None, 1) or len(shape) != 1:
                raise ShapeMismatch(f"slice: only unit-step slices of vectors are supported, got {key} "
                                    f"on shape {shape} (created at {_creation_site()})")
            n = shape[0]
            start = 0 if key.start is None else (key.start + n if key.start < 0 else key.start)
            stop = n if key.stop is None else (key.stop + n if key.stop < 0 else key.stop)
            if not 0 <= start < stop <= n:
                raise ShapeMismatch(f"slice: [{start}:{stop}] is out of range for shape {shape} "
                                    f"(created at {_creation_site()})")
            return Expr(self.graph, self.node, self.graph._view_tid(self.tid, start, stop))
        return self._pick(key)

    def _pick(self, index: int) -> "Expr":
        """Element ``index`` of a vector → scalar ``()``; the index is per-node data (batches).
        The one implementation behind ``x[i]`` and :func:`xflow.autobatch.functional.pick`."""
        index = int(index)
        if len(self.shape) == 1 and not 0 <= index < self.shape[0]:
            raise ShapeMismatch(f"pick: index {index} is out of range for shape {self.shape} "
                                f"(created at {_creation_site()})")
        return self.graph.record("pick", (self,), data=index)

    # execution --------------------------------------------------------------------------
    def value(self) -> torch.Tensor:
        """Run the graph (if needed) and return this node's tensor (per-example shape)."""
        return self.graph.forward([self])[0]

    def scalar(self) -> float:
        """``float(self.value())``."""
        return float(self.value())

    def backward(self, gradient: torch.Tensor | None = None) -> None:
        """Run the graph, then backpropagate from this node through torch autograd."""
        v = self.value()
        v.backward(gradient)


class _Column:
    """Read-only per-node view of one property (``g.op[n]``, ``g.args[n]`` …) for inspection."""

    __slots__ = ("_get", "_len")

    def __init__(self, get, length):
        self._get = get
        self._len = length

    def __getitem__(self, n: int):
        if not 0 <= n < self._len():
            raise IndexError(n)
        return self._get(n)

    def __len__(self) -> int:
        return self._len()

    def __iter__(self):
        return (self._get(n) for n in range(self._len()))


class Graph:
    """A lazily executed dynamic computation graph (see module docstring).

    Args:
        strategy: batching strategy name (see :data:`xflow.autobatch.strategies.STRATEGIES`:
            ``'none'``, ``'depth'``, ``'agenda'``, ``'agenda-level'``, ``'auto'``) or a planner
            callable ``plan(graph, nodes) -> list[list[int]]``.
        device: where input tensors are created (defaults to CPU; parameters bring their own).
    """

    def __init__(self, strategy: Any = "agenda", device: str | torch.device | None = None):
        _retain_heap_once()  # freed memory stays in the heap for the next step (see xflow.autobatch.memory)
        self.strategy_name, self._strategy = resolve_strategy(strategy)
        self.device = torch.device(device) if device is not None else None
        # per node (struct of arrays)
        # (plain lists of ints: appending to a list is ~5x cheaper than to an ``array``; the planner
        # converts the new range to numpy once per forward)
        self._sig: list[int] = []      # signature id; -1 for leaves
        self._ptr: list[int] = [0]     # operands of node n: _args[_ptr[n]:_ptr[n+1]]
        self._args: list[int] = []
        self._idata: list[int] = []    # per-node integer data (index ops), else 0
        self._leaf: dict[int, tuple[torch.Tensor, int]] = {}  # leaf node -> (tensor, type id)
        # per signature
        self._sig_ids: dict[tuple, int] = {}
        self.sig_keys: list[tuple] = []
        self._sig_spec: list[OpSpec] = []
        self._sig_params: list[tuple[torch.Tensor, ...]] = []
        self._sig_attrs: list[tuple] = []
        self._sig_in: list[tuple[int, ...]] = []   # operand type ids
        self._sig_out: list[int] = []              # output type id
        self._sig_primary: list[int] = []          # operand position the batch rows are ordered by
        self._primary_arr = np.zeros(0, np.int64)  # _sig_primary as an array (schedule.primary_slots)
        self._flags: tuple[int, np.ndarray, np.ndarray] = (0, np.zeros(0, bool), np.zeros(0, bool))
        self._flat: dict[int, bool] = {}
        self._cells: dict[tuple, tuple[int, int, int, int]] = {}  # fused LSTM step -> its signatures (cells.py)
        # types
        self._types: list[TypeInfo] = []
        self._type_ids: dict[tuple, int] = {}
        self._view_ids: dict[tuple[int, int, int], int] = {}
        self._param_leaf: dict[int, int] = {}
        # values (filled by the executor): node -> (source, row); row -1: the source is the value
        self._vsrc = np.full(0, -1, dtype=np.int64)
        self._vrow = np.full(0, -1, dtype=np.int64)
        self._sources: list[torch.Tensor] = []
        self._src_leaf: list[bool] = []  # source is a leaf tensor (one unbatched value), not a batch output
        self._src_rg: list[bool] = []    # source requires grad (DyNet's needs_derivative)
        self._src_rows: list[int] = []   # rows of a source (1 for a leaf)
        self._done = 0  # every node before this index has a value
        self._new_leaves: list[int] = []  # leaf nodes not yet registered as sources
        self.segments: list[Any] = []
        self._wpool: Any = None   # the segments' shared weight-gradient products (executor.BackwardPool)
        self._token: torch.Tensor | None = None  # the latest training segment's ordering token
        self._plans: list[list[list[int]]] = []  # plans of segments[:len(_plans)] (filled on demand)
        self.stats: dict[str, float] = {"schedule_s": 0.0, "execute_s": 0.0, "n_groups": 0, "n_executed": 0,
                                        "n_forwards": 0}
        self._open = False

    # context manager ----------------------------------------------------------------------
    def __enter__(self) -> "Graph":
        if not hasattr(_local, "stack"):
            _local.stack = []
        _local.stack.append(self)
        self._open = True
        return self

    def __exit__(self, *exc: Any) -> None:
        _local.stack.remove(self)
        self._open = False

    def __len__(self) -> int:
        return len(self._sig)

    # inspection (not on the hot path) ---------------------------------------------------------
    @property
    def op(self) -> _Column:
        """``g.op[n]``: op name of node ``n`` (``'input'``/``'param'`` for leaves)."""
        return _Column(self._op_of, self.__len__)

    @property
    def args(self) -> _Column:
        """``g.args[n]``: operand node ids of node ``n``."""
        return _Column(lambda n: tuple(self._args[self._ptr[n]:self._ptr[n + 1]]), self.__len__)

    @property
    def sig(self) -> _Column:
        """``g.sig[n]``: signature id of node ``n`` (-1 for leaves)."""
        return _Column(self._sig.__getitem__, self.__len__)

    @property
    def params(self) -> _Column:
        """``g.params[n]``: the shared parameter tensors of node ``n``."""
        return _Column(lambda n: self._sig_params[self._sig[n]] if self._sig[n] >= 0 else (), self.__len__)

    @property
    def attrs(self) -> _Column:
        """``g.attrs[n]``: static attributes of node ``n``."""
        return _Column(lambda n: self._sig_attrs[self._sig[n]] if self._sig[n] >= 0 else (), self.__len__)

    @property
    def views(self) -> _Column:
        """``g.views[n]``: per operand ``None`` or the ``(start, stop)`` view it reads, or ``None``."""
        def get(n: int):
            s = self._sig[n]
            if s < 0:
                return None
            vs = tuple(self._types[t][3] for t in self._sig_in[s])
            return vs if any(v is not None for v in vs) else None
        return _Column(get, self.__len__)

    @property
    def data(self) -> _Column:
        """``g.data[n]``: per-node integer data of index ops (word id, label, pick index), else ``None``."""
        def get(n: int):
            s = self._sig[n]
            return self._idata[n] if s >= 0 and self._sig_spec[s].index_data else None
        return _Column(get, self.__len__)

    @property
    def shape(self) -> _Column:
        """``g.shape[n]``: per-example output shape of node ``n``."""
        return _Column(lambda n: self._types[self.node_tid(n)][0], self.__len__)

    @property
    def depth(self) -> _Column:
        """``g.depth[n]``: relative depth of node ``n`` in the forward that ran it (DyNet's ``node2depth``)."""
        def get(n: int):
            for seg in self.segments:
                if seg.first <= n < seg.end:
                    return int(seg.depth[n - seg.first])
            return None
        return _Column(get, self.__len__)

    def _op_of(self, n: int) -> str:
        s = self._sig[n]
        if s >= 0:
            return self._sig_spec[s].name
        t = self._leaf[n][0]
        return "param" if self._param_leaf.get(id(t)) == n else "input"

    def storage_of(self, n: int) -> tuple[torch.Tensor, int]:
        """``(tensor, row)`` holding executed node ``n``'s value: its signature's arena and the row in it
        (``row == -1``: a leaf, the tensor is the value)."""
        s = int(self._vsrc[n]) if n < len(self._vsrc) else -1
        if s < 0:
            raise RuntimeError(f"node {n} has no value yet: call forward() first")
        return self._sources[s], int(self._vrow[n])

    def leaf_value(self, n: int) -> torch.Tensor:
        """The tensor of leaf node ``n`` (an ``input`` or ``param``)."""
        return self._leaf[n][0]

    def node_tid(self, n: int) -> int:
        """Type id of node ``n``'s full value."""
        s = self._sig[n]
        return self._sig_out[s] if s >= 0 else self._leaf[n][1]

    @property
    def plans(self) -> list[list[list[int]]]:
        """Per forward so far, its groups (node ids) in execution order (built on first access)."""
        for seg in self.segments[len(self._plans):]:
            self._plans.append(seg.groups_as_lists())
        return self._plans

    @property
    def last_plan(self) -> list[list[int]]:
        """Groups (node ids) of the latest forward, in execution order."""
        plans = self.plans
        return plans[-1] if plans else []

    # types -----------------------------------------------------------------------------------
    def _type(self, shape: Shape, dtype: torch.dtype, device: torch.device, view: tuple[int, int] | None) -> int:
        key = (shape, dtype, device, view)
        t = self._type_ids.get(key)
        if t is None:
            t = self._type_ids[key] = len(self._types)
            self._types.append(TypeInfo(key))
        return t

    def _view_tid(self, tid: int, start: int, stop: int) -> int:
        key = (tid, start, stop)
        t = self._view_ids.get(key)
        if t is None:
            shape, dtype, device, base = self._types[tid]
            off = base[0] if base else 0
            t = self._view_ids[key] = self._type((stop - start,), dtype, device, (off + start, off + stop))
        return t

    # recording ----------------------------------------------------------------------------
    def _leaf_node(self, t: torch.Tensor) -> Expr:
        n = len(self._sig)
        tid = self._type(tuple(t.shape), t.dtype, t.device, None)
        self._sig.append(-1)
        self._ptr.append(self._ptr[-1])
        self._idata.append(0)
        self._leaf[n] = (t, tid)
        self._new_leaves.append(n)
        return Expr(self, n, tid)

    def input(self, value: Any, requires_grad: bool = False) -> Expr:
        """A constant leaf (tensor or nested list of numbers); already has its value.

        A tensor keeps its dtype (a float64 input stays float64 and batches only with float64
        nodes); Python numbers become the default dtype.
        """
        if isinstance(value, torch.Tensor):
            t = value if self.device is None else value.to(self.device)
        else:
            t = torch.as_tensor(value, dtype=torch.get_default_dtype(), device=self.device)
        if requires_grad and not t.requires_grad:
            t.requires_grad_(True)
        return self._leaf_node(t)

    def param(self, p: torch.Tensor) -> Expr:
        """A parameter used as an expression operand (e.g. a learned initial state).

        Repeated calls with the same tensor return the same leaf, so batched ops see one identity.
        """
        key = id(p)
        n = self._param_leaf.get(key)
        if n is not None and self._leaf[n][0] is p:
            return Expr(self, n, self._leaf[n][1])
        e = self._leaf_node(p)
        self._param_leaf[key] = e.node
        return e

    def _new_sig(self, key: tuple, op: str, tids: tuple[int, ...], params: tuple, attrs: tuple) -> int:
        """Register a new signature: look the op up, infer and check the output type."""
        spec = OPS.get(op)
        if spec is None or op in ("input", "param"):
            raise UnknownName(f"unknown autobatch op {op!r}; known: {sorted(set(OPS) - {'input', 'param'})}")
        types = [self._types[t] for t in tids]
        shapes = tuple(t[0] for t in types)
        try:
            shape = spec.infer(shapes, params, attrs)
        except OpShapeError as exc:
            pshapes = [tuple(p.shape) for p in params]
            raise ShapeMismatch(
                f"{op}: {exc} (operand shapes {list(shapes)}"
                + (f", parameter shapes {pshapes}" if pshapes else "")
                + f"; created at {_creation_site()})"
            ) from None
        devices = {t[2] for t in types} | {p.device for p in params}
        if len(devices) > 1:
            raise DeviceMismatch(f"{op}: operands and parameters live on different devices {sorted(map(str, devices))} "
                                 f"(created at {_creation_site()}); move them to one device")
        dtypes = [t[1] for t in types] + [p.dtype for p in params]
        if spec.promote:
            dtype = dtypes[0]
            for d in dtypes[1:]:
                dtype = torch.promote_types(dtype, d)
        else:
            dtype = params[0].dtype
        device = devices.pop() if devices else (self.device or torch.device("cpu"))
        sid = self._sig_ids[key] = len(self.sig_keys)
        self.sig_keys.append(key)
        self._sig_spec.append(spec)
        self._sig_params.append(params)
        self._sig_attrs.append(attrs)
        self._sig_in.append(tids)
        self._sig_out.append(self._type(tuple(shape), dtype, device, None))

        self._sig_primary.append(primary_slot(spec, tids, self._types))
        return sid

    def _sig_flat(self, sid: int) -> bool:
        """Whether signature ``sid`` gathers all its operands in one call (a ``flat`` op whose operands
        share one view); cached per signature."""
        f = self._flat.get(sid)
        if f is None:
            views = {self._types[t][3] for t in self._sig_in[sid]}
            f = self._flat[sid] = bool(self._sig_spec[sid].flat and len(views) == 1)
        return f

    def _sig_flags(self) -> tuple[np.ndarray, np.ndarray]:
        """``(batchable, complex)`` per signature (cached until a signature is added)."""
        n, b, c = self._flags
        if n != len(self._sig_spec):
            b = np.fromiter((s.batchable for s in self._sig_spec), dtype=bool, count=len(self._sig_spec))
            c = np.fromiter((s.complex for s in self._sig_spec), dtype=bool, count=len(self._sig_spec))
            self._flags = (len(self._sig_spec), b, c)
        return b, c

    def record(self, op: str, args: Sequence[Expr] = (), params: Sequence[torch.Tensor] = (),
               attrs: tuple = (), data: int | None = None) -> Expr:
        """Record one node of ``op`` (see :mod:`xflow.autobatch.ops`); checks shapes now.

        ``data`` is the per-node integer of index ops (``lookup``, ``pick``, ``cross_entropy``).

        Raises:
            ShapeMismatch: the operands do not fit the op — the message names the op, the operand
                and parameter shapes and the line that created the node.
            DeviceMismatch: operands/parameters on different devices.
            GraphClosed: an operand belongs to another graph.
        """
        ids = []
        tids = []
        for a in args:
            if a.__class__ is not Expr:
                raise ShapeMismatch(f"{op}: operand {a!r} is not an autobatch Expr "
                                    f"(created at {_creation_site()}); wrap tensors with g.input(...)")
            if a.graph is not self:
                raise GraphClosed(f"{op}: operand {a!r} belongs to another graph (created at {_creation_site()})")
            ids.append(a.node)
            tids.append(a.tid)
        if params:
            params = tuple(params)
            key = (op, attrs, *map(id, params), -1, *tids)
        else:
            key = (op, attrs, -1, *tids)
        sid = self._sig_ids.get(key)
        if sid is None:
            sid = self._new_sig(key, op, tuple(tids), tuple(params), attrs)
        node = len(self._sig)
        self._sig.append(sid)
        self._args.extend(ids)
        self._ptr.append(len(self._args))
        if data is None:
            self._idata.append(0)
        else:
            if not self._sig_spec[sid].index_data:
                self._sig.pop()
                self._ptr.pop()
                del self._args[len(self._args) - len(ids):]
                raise ShapeMismatch(f"{op}: takes no per-node data (got {data!r}; created at {_creation_site()})")
            self._idata.append(data)
        return Expr(self, node, self._sig_out[sid])

    def record_unary(self, op: str, x: Expr, attrs: tuple = ()) -> Expr:
        """Fast path of :meth:`record` for a one-operand op without parameters or data."""
        if x.__class__ is not Expr or x.graph is not self:
            return self.record(op, (x,), (), attrs)
        sid = self._sig_ids.get((op, attrs, -1, x.tid))
        if sid is None:
            return self.record(op, (x,), (), attrs)
        sig = self._sig
        node = len(sig)
        sig.append(sid)
        args = self._args
        args.append(x.node)
        self._ptr.append(len(args))
        self._idata.append(0)
        return Expr(self, node, self._sig_out[sid])

    def record_binary(self, op: str, a: Expr, b: Expr) -> Expr:
        """Fast path of :meth:`record` for a two-operand op without parameters or data."""
        if a.__class__ is not Expr or b.__class__ is not Expr or a.graph is not self or b.graph is not self:
            return self.record(op, (a, b))
        sid = self._sig_ids.get((op, (), -1, a.tid, b.tid))
        if sid is None:
            return self.record(op, (a, b))
        sig = self._sig
        node = len(sig)
        sig.append(sid)
        args = self._args
        args.append(a.node)
        args.append(b.node)
        self._ptr.append(len(args))
        self._idata.append(0)
        return Expr(self, node, self._sig_out[sid])

    def _push(self, sid: int, a: int, b: int = -1, data: int = 0, extra: int = -1) -> Expr:
        """Append a node of known signature ``sid`` with operands ``a`` (and ``b``; -1: none).

        The hot paths of :mod:`~xflow.autobatch.functional` and :mod:`~xflow.autobatch.cells` build
        the canonical signature key themselves and, on a hit, record through here."""
        sig = self._sig
        node = len(sig)
        sig.append(sid)
        args = self._args
        if a >= 0:
            args.append(a)
            if b >= 0:
                args.append(b)
                if extra >= 0:
                    args.append(extra)
        self._ptr.append(len(args))
        self._idata.append(data)
        return Expr(self, node, self._sig_out[sid])

    # execution ----------------------------------------------------------------------------
    def pending(self) -> list[int]:
        """Op nodes still without a value (in creation order)."""
        sig = self._sig
        return [n for n in range(self._done, len(sig)) if sig[n] >= 0]

    def plan(self) -> list[list[int]]:
        """The strategy's execution plan for the pending nodes (does not execute)."""
        if self._done >= len(self._sig):
            return []
        inp = analyze(self, self._done)
        order, starts = self._strategy(inp)
        order, starts = arrange(inp, order, starts)
        first = self._done
        return [[int(n) + first for n in order[starts[k]:starts[k + 1]]] for k in range(len(starts) - 1)]

    def forward(self, exprs: Sequence[Expr] | None = None) -> list[torch.Tensor]:
        """Execute every pending node (planned by the strategy) and return the values of ``exprs``."""
        if len(self._sig) > self._done:
            self._run_pending()
        return [self._value(e) for e in exprs or ()]

    def _run_pending(self) -> None:
        t0 = time.perf_counter()
        first = self._done
        inp = analyze(self, first)
        if inp.n_ops:
            order, starts = self._strategy(inp)
            order, starts = arrange(inp, order, starts)
        else:
            order = starts = None
        t1 = time.perf_counter()
        seg = run_segment(self, inp, order, starts)
        t2 = time.perf_counter()
        self._done = len(self._sig)
        self.stats["schedule_s"] += t1 - t0
        self.stats["execute_s"] += t2 - t1
        self.stats["n_groups"] += seg.n_groups
        self.stats["n_executed"] += inp.n_ops
        self.stats["n_forwards"] += 1
        self.segments.append(seg)

    def _register_leaves(self, first: int) -> None:
        """Grow the value arrays to every node and make each new leaf a source (row -1)."""
        N = len(self._sig)
        if len(self._vsrc) < N:
            cap = max(N, 2 * len(self._vsrc), 1024)
            for name in ("_vsrc", "_vrow"):
                old = getattr(self, name)
                new = np.full(cap, -1, dtype=np.int64)
                new[:len(old)] = old
                setattr(self, name, new)
        leaves = self._new_leaves
        self._new_leaves = []
        for n in leaves:
            if self._vsrc[n] < 0:
                self._vsrc[n] = len(self._sources)
                t = self._leaf[n][0]
                self._sources.append(t)
                self._src_leaf.append(True)
                self._src_rg.append(bool(t.requires_grad))
                self._src_rows.append(1)

    def _value(self, e: Expr) -> torch.Tensor:
        n = e.node
        leaf = self._leaf.get(n)
        if leaf is not None:
            v = leaf[0]
        else:
            s = int(self._vsrc[n])
            if s < 0:
                raise RuntimeError(f"node {n} ({self.op[n]}) has no value yet: call forward() first")
            v = self._sources[s][int(self._vrow[n])]
        sl = self._types[e.tid][3]
        return v if sl is None else v[sl[0]:sl[1]]

    def forward_batch(self, exprs: Sequence[Expr]) -> torch.Tensor:
        """Execute, then return the values of equally shaped ``exprs`` stacked as ``(len, *shape)``.

        One differentiable gather over the executor's batch outputs (a slice where the rows are
        contiguous, one ``index_select`` per source otherwise), much cheaper than stacking
        ``forward(exprs)`` one tensor at a time.
        """
        self.forward()
        if not exprs:
            raise ShapeMismatch("forward_batch: needs at least one expression")
        s0 = exprs[0].shape
        for e in exprs:
            if e.shape != s0:
                raise ShapeMismatch(f"forward_batch: expressions must share one shape, got {s0} and {e.shape}")
        sl = exprs[0].sl
        if any(e.sl != sl for e in exprs) or any(e.node in self._leaf for e in exprs):
            return torch.stack(self.forward(exprs), 0)

        X = gather_values(self, [e.node for e in exprs])
        return X if sl is None else X[:, sl[0]:sl[1]]

    def groups_of(self) -> dict[int, int]:
        """node id → index of the batch (over all forwards so far) it ran in."""
        out: dict[int, int] = {}
        k = 0
        for plan in self.plans:
            for grp in plan:
                for n in grp:
                    out[n] = k
                k += 1
        return out
