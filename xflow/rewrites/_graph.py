"""Read-only graph view and a copy-on-write editor that rules use to match and rewrite ONNX.

:class:`GraphView` wraps a shape-inferred copy of a model with producer/consumer maps, static
shapes and constant values (initializers and ``Constant`` nodes). :class:`Editor` collects node
removals/additions, new initializers and use-replacements, then ``finish()`` returns a new
model: topologically sorted, dead nodes and unused initializers dropped, shapes re-inferred.
"""
from __future__ import annotations

import copy
import logging
from typing import Any, Iterable, Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper

log = logging.getLogger(__name__)

__all__ = ["GraphView", "Editor", "Rewritten", "is_placeholder", "ensure_node_names", "attrs_of", "node_reads", "UNARY_ELEMENTWISE"]

#: Elementwise unary ops f with f(concat(x, y)) == concat(f(x), f(y)) (attributes allowed).
UNARY_ELEMENTWISE = frozenset({
    "Relu", "Sigmoid", "Tanh", "LeakyRelu", "Elu", "Selu", "Celu", "Exp", "Log", "Neg", "Abs",
    "Sqrt", "Reciprocal", "Erf", "Softplus", "Softsign", "HardSigmoid", "HardSwish", "Gelu",
    "Mish", "Sin", "Cos", "Floor", "Ceil", "Round", "Sign", "ThresholdedRelu", "Identity", "Clip",
})


def ensure_node_names(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` itself if its nodes have unique names, else a copy with deterministic ``Op_i`` fill-ins."""
    names = [n.name for n in model.graph.node]
    if all(names) and len(set(names)) == len(names):
        return model
    model = copy.deepcopy(model)
    seen: set[str] = set()
    for i, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            base = f"{node.op_type}_{i}"
            name, k = base, 0
            while name in seen:
                k += 1
                name = f"{base}_{k}"
            node.name = name
        seen.add(node.name)
    return model


def _copy_fields(dst: Any, src: Any, skip: tuple[str, ...]) -> None:
    """Copy every set protobuf field of ``src`` into ``dst`` except those named in ``skip``."""
    for fd, value in src.ListFields():
        if fd.name in skip:
            continue
        target = getattr(dst, fd.name)
        if hasattr(value, "extend") and hasattr(target, "extend"):
            target.extend(value)
        elif hasattr(value, "CopyFrom"):
            target.CopyFrom(value)
        else:
            setattr(dst, fd.name, value)


def _infer_shapes_light(model: onnx.ModelProto) -> onnx.ModelProto:
    """Shape inference on a copy whose large initializers are replaced by typed graph inputs.

    Inference only needs the shapes of big weights, not their bytes; small constants (shape
    operands, split sizes) stay so data propagation still works.
    """
    light = onnx.ModelProto()
    _copy_fields(light, model, skip=("graph",))
    g, src = light.graph, model.graph
    _copy_fields(g, src, skip=("initializer", "node"))
    g.node.extend(src.node)
    declared = {i.name for i in src.input}
    for t in src.initializer:
        if int(np.prod(t.dims)) > 64 and (t.data_location != onnx.TensorProto.EXTERNAL or is_placeholder(t)):
            if t.name not in declared:
                g.input.append(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
        else:
            g.initializer.append(t)
    return onnx.shape_inference.infer_shapes(light, data_prop=True)


def node_reads(node: onnx.NodeProto) -> list[str]:
    """Tensor names a node reads: its inputs plus names referenced inside control-flow subgraphs
    (If/Loop/Scan bodies may read outer-scope tensors without listing them as inputs)."""
    names = [t for t in node.input if t]
    for a in node.attribute:
        for g in ([a.g] if a.HasField("g") else []) + list(a.graphs):
            for sub in g.node:
                names.extend(node_reads(sub))
    return names


def attrs_of(node: onnx.NodeProto) -> dict[str, Any]:
    """The node's attributes as plain Python values (lists turned into tuples)."""
    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode()
        if isinstance(v, list):
            v = tuple(x.decode() if isinstance(x, bytes) else x for x in v)
        out[a.name] = v
    return out


class GraphView:
    """Shape-inferred, indexed, read-only view of a model (built once per match/apply call)."""

    def __init__(self, model: onnx.ModelProto):
        model = ensure_node_names(model)
        try:
            inferred = _infer_shapes_light(model)
        except Exception as exc:  # noqa: BLE001 - fall back to uninferred shapes
            log.debug("shape inference failed: %s", exc)
            inferred = model
        self.model = model
        g = inferred.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
        self.nodes: list[onnx.NodeProto] = list(model.graph.node)
        self.node_by_name = {n.name: n for n in self.nodes}
        self.node_index = {n.name: i for i, n in enumerate(self.nodes)}
        self.producer: dict[str, onnx.NodeProto] = {}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for n in self.nodes:
            for o in n.output:
                if o:
                    self.producer[o] = n
            for i in dict.fromkeys(node_reads(n)):
                self.consumers.setdefault(i, []).append(n)
        self.initializers = {t.name: t for t in model.graph.initializer}
        self.graph_outputs = [o.name for o in model.graph.output]
        self.graph_inputs = [i.name for i in model.graph.input if i.name not in self.initializers]
        self._types: dict[str, onnx.TypeProto] = {}
        for vi in list(g.input) + list(g.value_info) + list(g.output):
            self._types[vi.name] = vi.type
        self._const_cache: dict[str, np.ndarray | None] = {}

    @classmethod
    def of(cls, model: "onnx.ModelProto | GraphView") -> "GraphView":
        """Return ``model`` if it is already a view, else build one."""
        if isinstance(model, GraphView):
            return model
        if not isinstance(model, onnx.ModelProto):
            from xflow.errors import InvalidModel

            raise InvalidModel(f"expected an onnx.ModelProto, got {type(model).__name__}")
        return cls(model)

    # -- tensors ---------------------------------------------------------------------------
    def const(self, name: str) -> np.ndarray | None:
        """The value of ``name`` if it is an initializer, a ``Constant`` output or an Identity of one; else None."""
        if name in self._const_cache:
            return self._const_cache[name]
        val = None
        if name in self.initializers:
            t = self.initializers[name]
            # a placeholder (Rewritten.structure) has no values here: shapes come from its dims
            val = None if is_placeholder(t) else numpy_helper.to_array(t)
        else:
            p = self.producer.get(name)
            if p is not None and p.op_type == "Identity" and p.input[0] != name:
                val = self.const(p.input[0])  # exporters route weights through Identity
            elif p is not None and p.op_type == "Constant":
                for a in p.attribute:
                    if a.name == "value":
                        val = numpy_helper.to_array(a.t)
                    elif a.name == "value_float":
                        val = np.array(a.f, dtype=np.float32)
                    elif a.name == "value_floats":
                        val = np.array(list(a.floats), dtype=np.float32)
                    elif a.name == "value_int":
                        val = np.array(a.i, dtype=np.int64)
                    elif a.name == "value_ints":
                        val = np.array(list(a.ints), dtype=np.int64)
        self._const_cache[name] = val
        return val

    def is_const(self, name: str) -> bool:
        """Whether ``name`` has a known constant value (see :meth:`const`)."""
        return self.const(name) is not None

    def shape(self, name: str) -> tuple[int, ...] | None:
        """Static shape of ``name`` (None if unknown or any dimension is symbolic)."""
        if name in self.initializers:
            return tuple(int(d) for d in self.initializers[name].dims)
        c = self.const(name)
        if c is not None:
            return tuple(c.shape)
        t = self._types.get(name)
        if t is None or not t.HasField("tensor_type") or not t.tensor_type.HasField("shape"):
            return None
        dims = []
        for d in t.tensor_type.shape.dim:
            if not d.HasField("dim_value"):
                return None
            dims.append(d.dim_value)
        return tuple(dims)

    def elem_type(self, name: str) -> int | None:
        """ONNX element type of ``name`` (TensorProto.FLOAT, …) or None if unknown."""
        if name in self.initializers:
            return self.initializers[name].data_type
        t = self._types.get(name)
        if t is None or not t.HasField("tensor_type"):
            c = self.const(name)
            return None if c is None else helper.np_dtype_to_tensor_dtype(c.dtype)
        return t.tensor_type.elem_type

    def uses(self, name: str) -> list[onnx.NodeProto]:
        """Nodes reading tensor ``name`` (in graph order)."""
        return self.consumers.get(name, [])

    def is_graph_output(self, name: str) -> bool:
        """Whether ``name`` is one of the graph's outputs."""
        return name in self.graph_outputs

    def sole_consumer(self, name: str) -> onnx.NodeProto | None:
        """The only node reading ``name`` (None if several, none, or it is a graph output)."""
        users = self.uses(name)
        if len(users) != 1 or self.is_graph_output(name):
            return None
        return users[0]

    def node(self, name: str) -> onnx.NodeProto:
        """The node called ``name``."""
        return self.node_by_name[name]

    def split_sizes(self, node: onnx.NodeProto) -> list[int] | None:
        """Static section sizes of a ``Split`` node (attribute, input or equal split)."""
        attrs = attrs_of(node)
        if "split" in attrs:
            return [int(s) for s in attrs["split"]]
        if len(node.input) > 1 and node.input[1]:
            c = self.const(node.input[1])
            return None if c is None else [int(s) for s in c.reshape(-1)]
        shp = self.shape(node.input[0])
        if shp is None:
            return None
        axis = int(attrs.get("axis", 0)) % len(shp)
        n = len(node.output)
        total = shp[axis]
        if total % n == 0:
            return [total // n] * n
        chunk = -(-total // n)
        return [chunk] * (n - 1) + [total - chunk * (n - 1)]


class Editor:
    """Copy-on-write edits to a :class:`GraphView`'s model; ``finish()`` returns the new model."""

    def __init__(self, view: GraphView, tag: str = "rw"):
        self.view = view
        self.tag = tag
        self._removed: set[str] = set()
        self._added: list[onnx.NodeProto] = []
        self._inits: list[tuple[str, np.ndarray]] = []  # TensorProtos are built in _build
        self._rename: dict[str, str] = {}
        self._taken: set[str] = set(view.node_by_name) | set(view.initializers) | set(view.producer)
        self._taken |= set(view.graph_inputs) | set(view.graph_outputs)

    def fresh(self, base: str) -> str:
        """A tensor/node name not used anywhere in the graph yet (deterministic)."""
        base = base or self.tag
        name, k = base, 0
        while name in self._taken:
            k += 1
            name = f"{base}_{k}"
        self._taken.add(name)
        return name

    def remove(self, *nodes: onnx.NodeProto | str) -> None:
        """Drop these nodes (by object or name) from the new graph."""
        for n in nodes:
            self._removed.add(n if isinstance(n, str) else n.name)

    def add_node(self, op_type: str, inputs: Sequence[str], outputs: Sequence[str], *,
                 name: str | None = None, **attrs: Any) -> onnx.NodeProto:
        """Add a node (name made unique); ``None`` attribute values are skipped."""
        attrs = {k: (list(v) if isinstance(v, tuple) else v) for k, v in attrs.items() if v is not None}
        node = helper.make_node(op_type, list(inputs), list(outputs),
                                name=self.fresh(name or f"{self.tag}/{op_type}"), **attrs)
        self._added.append(node)
        return node

    def copy_node(self, node: onnx.NodeProto, inputs: Sequence[str], outputs: Sequence[str],
                  *, name: str | None = None) -> onnx.NodeProto:
        """Add a node with ``node``'s op type, domain and attributes but new inputs/outputs."""
        new = onnx.NodeProto()
        new.CopyFrom(node)
        del new.input[:]
        del new.output[:]
        new.input.extend(inputs)
        new.output.extend(outputs)
        new.name = self.fresh(name or f"{node.name}/{self.tag}")
        self._added.append(new)
        return new

    def add_initializer(self, base: str, array: np.ndarray) -> str:
        """Add a constant tensor; returns its (fresh) name."""
        name = self.fresh(base)
        self._inits.append((name, np.ascontiguousarray(array)))
        return name

    def add_int64(self, base: str, values: Iterable[int]) -> str:
        """Add a 1-D int64 constant (shapes, split sizes); returns its name."""
        return self.add_initializer(base, np.asarray(list(values), dtype=np.int64))

    def replace_uses(self, old: str, new: str) -> None:
        """Make every reader of tensor ``old`` read ``new`` instead (graph outputs keep their name)."""
        self._rename[old] = new

    def split(self, x: str, axis: int, sizes: Sequence[int], outputs: Sequence[str], *,
              name: str | None = None) -> onnx.NodeProto:
        """Add an opset-appropriate ``Split`` of ``x`` into ``outputs`` with static ``sizes``."""
        if self.view.opset >= 13:
            s = self.add_int64(f"{self.tag}/split_sizes", sizes)
            return self.add_node("Split", [x, s], outputs, name=name, axis=axis)
        return self.add_node("Split", [x], outputs, name=name, axis=axis, split=list(sizes))

    def finish(self) -> onnx.ModelProto:
        """Build the edited model: rename uses, toposort, drop dead nodes/initializers, infer shapes."""
        return self._build(*self._assemble(), placeholders=False)

    def finish_lazy(self) -> "Rewritten":
        """Like :meth:`finish`, but defer copying the source's weights (see :class:`Rewritten`)."""
        nodes, used = self._assemble()
        return Rewritten(self, nodes, used)

    def _assemble(self) -> tuple[list[onnx.NodeProto], set[str]]:
        """The new node list (renamed, sorted, dead code removed) and the tensor names it reads."""
        src = self.view.model
        nodes = []
        rename = self._rename
        for n in list(src.graph.node) + self._added:
            if n.name in self._removed:
                continue
            if any(t in rename for t in n.input):
                c = onnx.NodeProto()
                c.CopyFrom(n)  # never touch the view's nodes (views are reused across applies)
                n = c
            nodes.append(n)  # unchanged nodes are shared here; _build copies them into the model

        def resolve(t: str) -> str:
            seen = set()
            while t in self._rename and t not in seen:
                seen.add(t)
                t = self._rename[t]
            return t

        for n in nodes:
            if any(t in rename for t in n.input):
                for i, t in enumerate(n.input):
                    if t in rename:
                        n.input[i] = resolve(t)
        # graph outputs keep their names: bridge renamed ones with Identity
        produced = {o for n in nodes for o in n.output}
        for out in self.view.graph_outputs:
            target = resolve(out)
            if target != out and out not in produced:
                nodes.append(helper.make_node("Identity", [target], [out], name=self.fresh(f"{out}/identity")))
        available = set(self.view.graph_inputs) | set(self.view.initializers) | {n for n, _ in self._inits}
        reads = {id(n): node_reads(n) for n in nodes}  # nodes stay alive here, so ids are stable
        nodes = _toposort(nodes, available, reads)
        nodes = _dead_code_elimination(nodes, set(self.view.graph_outputs), reads)
        used = {t for n in nodes for t in reads[id(n)]} | set(self.view.graph_outputs)
        return nodes, used

    def _build(self, nodes: list[onnx.NodeProto], used: set[str], *, placeholders: bool) -> onnx.ModelProto:
        """Assemble the model proto; with ``placeholders`` the source's large weights carry no data."""
        src = self.view.model
        # build the new model field by field: one copy of the (possibly large) initializers
        model = onnx.ModelProto()
        _copy_fields(model, src, skip=("graph",))
        g, sg = model.graph, src.graph
        g.name = sg.name
        g.doc_string = sg.doc_string
        init_names = set(self.view.initializers)
        g.input.extend([i for i in sg.input if i.name not in init_names or i.name in used])
        g.output.extend(sg.output)
        g.sparse_initializer.extend(sg.sparse_initializer)
        kept = [t for t in sg.initializer if t.name in used]
        if placeholders:
            g.initializer.extend([_placeholder(t) if _numel(t) > PLACEHOLDER_NUMEL else t for t in kept])
        else:
            g.initializer.extend(kept)
        for name, arr in self._inits:
            if name not in used:
                continue
            if placeholders and arr.size > PLACEHOLDER_NUMEL:
                g.initializer.append(_placeholder_of(name, arr))
            else:
                g.initializer.append(numpy_helper.from_array(arr, name))
        g.node.extend(nodes)
        return model

    def new_initializer_digests(self, used: set[str]) -> dict[str, bytes]:
        """:func:`~xflow.graphs.hashing.tensor_digest` of each used new constant, from its array."""
        from xflow.graphs.hashing import array_digest

        return {name: array_digest(arr) for name, arr in self._inits if name in used}

    def new_initializer(self, name: str) -> onnx.TensorProto | None:
        """The TensorProto of new constant ``name`` (None if the editor did not add it)."""
        for n, arr in self._inits:
            if n == name:
                return numpy_helper.from_array(arr, name)
        return None


#: Source initializers with more elements than this become data-less placeholders in
#: :attr:`Rewritten.structure` (the same threshold below which shape inference needs values).
PLACEHOLDER_NUMEL = 64

#: ``external_data`` location that marks a placeholder (reading its values fails loudly).
PLACEHOLDER_LOCATION = "xflow:shared-with-source-model"


def _numel(t: onnx.TensorProto) -> int:
    return int(np.prod(t.dims)) if len(t.dims) else 1


def _placeholder_of(name: str, arr: np.ndarray) -> onnx.TensorProto:
    p = onnx.TensorProto(name=name, data_type=helper.np_dtype_to_tensor_dtype(arr.dtype), dims=arr.shape)
    return _mark(p)


def _placeholder(t: onnx.TensorProto) -> onnx.TensorProto:
    """A tensor with ``t``'s name, dtype and shape but no values (marked as external data)."""
    return _mark(onnx.TensorProto(name=t.name, data_type=t.data_type, dims=t.dims))


def _mark(p: onnx.TensorProto) -> onnx.TensorProto:
    p.data_location = onnx.TensorProto.EXTERNAL
    entry = p.external_data.add()
    entry.key, entry.value = "location", PLACEHOLDER_LOCATION
    return p


def is_placeholder(t: onnx.TensorProto) -> bool:
    """Whether ``t`` is a data-less placeholder made by :class:`Rewritten` (values live in the source)."""
    return (t.data_location == onnx.TensorProto.EXTERNAL
            and any(e.key == "location" and e.value == PLACEHOLDER_LOCATION for e in t.external_data))


class Rewritten:
    """A rewrite result whose full model is built only on demand.

    Copying a big model's weights (~95 MB for Inception-v3) into every one-step rewrite
    dominated candidate enumeration, although most consumers (hashing, featurization, shape
    inference, local verification) only need the graph structure. ``structure`` is the new
    model with every *source* initializer of more than :data:`PLACEHOLDER_NUMEL` elements
    replaced by a data-less placeholder (same name, dtype and shape; see :func:`is_placeholder`):
    not runnable, but node-, shape- and name-identical to :meth:`model`, which builds (and
    caches) the real model exactly as :meth:`Editor.finish` would.
    """

    def __init__(self, editor: Editor, nodes: list[onnx.NodeProto], used: set[str]):
        self._editor = editor
        self._nodes = nodes
        self._used = used
        self._model: onnx.ModelProto | None = None
        self._structure: onnx.ModelProto | None = None

    @property
    def source(self) -> onnx.ModelProto:
        """The model the rewrite started from (owner of the placeholders' values)."""
        return self._editor.view.model

    @property
    def structure(self) -> onnx.ModelProto:
        """The new graph with the source's large weights as placeholders (cheap; not runnable)."""
        if self._model is not None:
            return self._model
        if self._structure is None:
            self._structure = self._editor._build(self._nodes, self._used, placeholders=True)
        return self._structure

    def new_digests(self) -> dict[str, bytes]:
        """Tensor digests of the constants the rewrite created (hashed from their arrays)."""
        return self._editor.new_initializer_digests(self._used)

    def tensor(self, name: str) -> onnx.TensorProto:
        """The real TensorProto behind initializer ``name`` (a placeholder's values)."""
        t = self._editor.new_initializer(name)
        return t if t is not None else self._editor.view.initializers[name]

    def model(self) -> onnx.ModelProto:
        """The full rewritten model (built once, then cached)."""
        if self._model is None:
            self._model = self._editor._build(self._nodes, self._used, placeholders=False)
            self._structure = None
        return self._model


def _toposort(nodes: list[onnx.NodeProto], available: set[str],
              reads: dict[int, list[str]] | None = None) -> list[onnx.NodeProto]:
    """Stable topological order (Kahn's algorithm keeping the original order among ready nodes)."""
    import heapq

    def node_reads(n: onnx.NodeProto) -> list[str]:
        return reads[id(n)] if reads is not None else _node_reads(n)

    producers = {o: i for i, n in enumerate(nodes) for o in n.output if o}
    deps: list[set[int]] = []
    users: dict[int, list[int]] = {}
    for i, n in enumerate(nodes):
        d = {producers[t] for t in node_reads(n) if t not in available and t in producers}
        d.discard(i)
        deps.append(d)
        for j in d:
            users.setdefault(j, []).append(i)
    ready = [i for i, d in enumerate(deps) if not d]
    heapq.heapify(ready)
    order = []
    remaining = [len(d) for d in deps]
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for u in users.get(i, []):
            remaining[u] -= 1
            if remaining[u] == 0:
                heapq.heappush(ready, u)
    if len(order) != len(nodes):  # a cycle: should never happen; keep the rest in order
        left = [i for i in range(len(nodes)) if i not in set(order)]
        log.warning("graph has a cycle after rewrite (%d nodes unsorted)", len(left))
        order += left
    return [nodes[i] for i in order]


def _dead_code_elimination(nodes: list[onnx.NodeProto], outputs: set[str],
                           reads: dict[int, list[str]] | None = None) -> list[onnx.NodeProto]:
    """Drop nodes none of whose outputs is used (transitively) by a graph output."""

    def node_reads(n: onnx.NodeProto) -> list[str]:
        return reads[id(n)] if reads is not None else _node_reads(n)
    live = set(outputs)
    keep = []
    for n in reversed(nodes):
        if any(o in live for o in n.output if o):
            keep.append(n)
            live.update(node_reads(n))
    return list(reversed(keep))


_node_reads = node_reads
