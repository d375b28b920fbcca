"""Module assembly for the torch backend: a lowered :class:`~xflow.runtime.backend_lower.Program`
→ the source of a readable, standalone Python module.

A generated module contains

* a header docstring saying what produced it;
* ``load_weights(path)``: the ONNX initializers as torch tensors;
* helpers the emitted lines call (BatchNorm folding, oneDNN weight prepacking, even-size LRN);
* ``class Kernels(torch.nn.Module)``: the weights (and the weights derived from them once, at build
  time) as buffers, and the methods that run kernels — one per serial stage here, one per cluster
  when :mod:`xflow.parallel` generates the module through :func:`kernels_class`;
* ``class Model``: ``Model()(*inputs)`` runs it.

:func:`serial_module` writes the one-method serial form the ``torch`` / ``torch-cuda`` backends run;
:func:`load_module` imports a generated source (optionally scripting ``Kernels``).
"""
from __future__ import annotations

import datetime as _dt
import re
import textwrap
from typing import Any

from xflow.paths import cache_dir
from xflow.runtime.backend_lower import Kernel, Program

__all__ = ["PRELUDE", "kernel_env", "kernel_line", "method_source", "kernels_class", "serial_module", "load_module",
           "program_weights", "weights_map", "header_meta", "tuple_src", "unpack"]

from xflow.runtime.backend_prelude import PRELUDE  # noqa: E402 - re-exported


def tuple_src(xs: list[str]) -> str:
    """``(a,)`` / ``(a, b)`` / ``()`` source."""
    if not xs:
        return "()"
    return "(" + ", ".join(xs) + ("," if len(xs) == 1 else "") + ")"


def unpack(names: list[str], expr: str, tmp: str) -> list[str]:
    """Statements assigning the elements of the tuple ``expr`` to ``names``."""
    if not names:
        return [expr]
    return [f"{tmp} = {expr}"] + [f"{n} = {tmp}[{k}]" for k, n in enumerate(names)]


def kernel_line(k: Kernel, *, clone: bool = False, trace_index: int | None = None) -> str:
    """The kernel's statements with a comment naming its op(s) and node; ``trace_index`` wraps it
    in a trace record ``(thread id, index, start, end)`` appended to the module's ``TRACE``."""
    more = f" (+{len(k.nodes) - 1} fused)" if len(k.nodes) > 1 else ""
    tag = f"  # {k.op} {k.name}{more}" + (" (clone)" if clone else "")
    lines = k.line.split("\n")
    body = "\n".join(lines[:-1] + [lines[-1] + tag])
    if trace_index is not None:
        return (f"_t0 = time.perf_counter()\n{body}\n"
                f"TRACE.append((threading.get_ident(), {trace_index}, _t0, time.perf_counter()))")
    return body


def method_source(name: str, args: list[str], body: list[str], doc: str) -> str:
    """A ``@torch.jit.export`` method of ``Kernels`` (unindented)."""
    sig = ", ".join(["self"] + args)
    src = ["@torch.jit.export", f"def {name}({sig}):", f'    """{doc}"""']
    src += ["    " + ln for b in body for ln in b.split("\n")]
    return "\n".join(src)


def weights_map(p: Program) -> dict[str, str]:
    """ONNX initializer → attribute name, for the initializers the module reads."""
    used = p.weight_refs()
    for _targets, expr in p.derived:
        used.update(re.findall(r"self\.(w_\w+)", expr))
    return {onnx: attr for onnx, attr in sorted(p.names.weights().items()) if attr in used}


def _init_body(p: Program) -> list[str]:
    """``Kernels.__init__``: raw weights the kernels read become buffers; derived weights are
    computed once from the raw ones (kept as buffers only when a kernel reads them)."""
    refs = p.weight_refs()
    wm = weights_map(p)
    attr_to_onnx = {a: o for o, a in wm.items()}
    body = ["super().__init__()", "w = weights"]
    for attr in sorted(a for a in attr_to_onnx if a in refs):
        body.append(f"self.register_buffer({attr!r}, w[{attr_to_onnx[attr]!r}])")
    local: set[str] = set()

    def sub(expr: str) -> str:
        def rep(m: re.Match) -> str:
            a = m.group(1)
            if a.startswith("w_") and a not in refs:
                return f"w[{attr_to_onnx[a]!r}]"
            if a.startswith("d_") and a in local:
                return a
            return m.group(0)
        return re.sub(r"self\.([wd]_\w+)", rep, expr)

    for targets, expr in p.derived:
        rhs = sub(expr)
        if len(targets) == 1:
            t = targets[0]
            if t in refs:
                body.append(f"self.register_buffer({t!r}, {rhs})")
            else:
                body.append(f"{t} = {rhs}")
                local.add(t)
            continue
        body.append(f"_d = {rhs}")
        for i, t in enumerate(targets):
            if t in refs:
                body.append(f"self.register_buffer({t!r}, _d[{i}])")
            else:
                body.append(f"{t} = _d[{i}]")
                local.add(t)
    return body


def kernels_class(p: Program, methods: list[str], doc: str = "Weights as buffers; one method per stage.") -> str:
    """Source of ``class Kernels(torch.nn.Module)`` with ``methods`` (from :func:`method_source`)."""
    out = ["class Kernels(torch.nn.Module):", f'    """{doc}"""', "",
           "    def __init__(self, weights: Dict[str, Tensor]) -> None:"]
    out += ["        " + ln for ln in _init_body(p)]
    out += ["", "    def forward(self, x: Tensor) -> Tensor:  # unused; the methods are the entry points",
            "        return x", ""]
    for m in methods:
        out.append(textwrap.indent(m, "    "))
        out.append("")
    return "\n".join(out)


def header_meta(source: str | None) -> dict[str, str]:
    """Version, date and source name for a generated module's header."""
    try:
        from importlib.metadata import version

        ver = version("xflow")
    except Exception:  # noqa: BLE001 - not installed as a distribution (source checkout)
        ver = "dev"
    return {"xflow_version": ver, "source": source or "<in-memory>",
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def serial_module(p: Program, *, source: str | None = None, weights_file: str = "model.onnx") -> str:
    """Source of a standalone module running ``p``'s kernels in order on the calling thread.

    ``Model(weights=None, path=None, device='cpu', threads=0, script=False)``: weights from the dict
    or the ONNX file ``path`` (default: ``weights_file`` next to the module); ``threads`` > 0 sets
    torch's intra-op threads for each call; ``script`` compiles ``Kernels`` with TorchScript (always
    done, and frozen, for the ``onednn="graph"`` lowering).
    """
    meta = header_meta(source)
    nm = p.names
    ins = [nm.var(i) for i in p.inputs]
    outs = [nm.expr(o) if p.view.is_const(o) else nm.var(o) for o in p.outputs]
    body = list(p.prologue) + [kernel_line(k) for k in p.kernels]
    body.append(f"return {tuple_src(outs)}")
    opts = p.options
    doc = (f"All {len(p.kernels)} kernels in order (layout {opts.layout}, oneDNN {opts.onednn}, "
           f"{p.fused_nodes} nodes fused).")
    kern = kernels_class(p, [method_source("run", ins, body, doc)])
    header = textwrap.dedent(f'''\
        """Generated by xflow.runtime (torch backend) {meta["xflow_version"]} on {meta["date"]}. Do not edit by hand.

        Source model : {meta["source"]}  (content hash {p.view.content_hash})
        Kernels      : {len(p.kernels)} for {len(p.view.nodes)} ONNX nodes ({p.fused_nodes} fused)
        Lowering     : device {opts.device}, layout {opts.layout}, oneDNN {opts.onednn}, fuse {opts.fuse}

        Usage:  m = Model(); outputs = m({", ".join(ins)})   # a tuple, one tensor per graph output
        """''')
    model = [
        "class Model:",
        '    """Runs the kernels; call with the graph inputs, returns a tuple of the graph outputs."""', "",
        "    def __init__(self, weights: Optional[Dict[str, Tensor]] = None, path: Optional[str] = None,",
        "                 device: str = 'cpu', threads: int = 0, script: bool = False) -> None:",
        "        if weights is None:",
        "            weights = load_weights(path or DEFAULT_ONNX)",
        "        self.device = torch.device(device)",
        "        with torch.no_grad():",
        "            k = Kernels({n: t.to(self.device) for n, t in weights.items()}).eval()",
        "        if script or ONEDNN_GRAPH:  # the oneDNN Graph fuser runs frozen TorchScript",
        "            k = _compile_kernels(k, ['run'], ONEDNN_GRAPH)",
        "        self.k = k",
        "        self.threads = int(threads)", "",
        "    def close(self) -> None:",
        '        """Nothing to release (same interface as the parallel modules)."""', "",
        f"    def __call__(self, {', '.join(ins)}):",
        f"        return self.forward({', '.join(ins)})", "",
        f"    def forward(self, {', '.join(ins)}):",
        "        _set_threads(self.threads)",
        "        fusion = _onednn_fusion(True) if ONEDNN_GRAPH else False",
        "        try:",
        "            with torch.no_grad():",
        f"                return self.k.run({', '.join(ins)})",
        "        finally:",
        "            if ONEDNN_GRAPH:",
        "                _onednn_fusion(fusion)",
    ]
    consts = [
        f"INPUTS = {list(p.inputs)!r}",
        f"OUTPUTS = {list(p.output_names)!r}",
        f"DEFAULT_ONNX = os.path.join(os.path.dirname(os.path.abspath(__file__)), {weights_file!r})",
        f"ONEDNN_GRAPH = {opts.onednn == 'graph'}",
    ]
    return "\n".join([header, PRELUDE, "\n".join(consts), "", "", kern, "", "\n".join(model), ""])


def program_weights(p: Program) -> dict[str, Any]:
    """The initializers the module reads, as torch tensors (for in-memory modules)."""
    import torch

    return {onnx: torch.from_numpy(p.view.initializers[onnx].copy()) for onnx in weights_map(p)}


def load_module(source: str, *, cache_area: str = "generated"):
    """Import generated ``source`` and return the module object.

    The source is written to ``cache_dir('backend', cache_area)`` under its hash and imported from
    there (``torch.jit.script`` needs a source file; the same source is written once).
    """
    import hashlib
    import importlib.util
    import os

    h = hashlib.sha256(source.encode()).hexdigest()[:16]
    path = cache_dir("backend", cache_area) / f"gen_{h}.py"
    if not path.exists() or path.read_text() != source:
        tmp = path.with_suffix(f".tmp{os.getpid()}_{id(source)}")
        tmp.write_text(source)
        tmp.replace(path)
    spec = importlib.util.spec_from_file_location(f"xflow_gen_{h}", path)
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod


def kernel_env(p: Program, *, device: str = "cpu") -> tuple[dict[str, Any], Any]:
    """``(globals, kernels)`` in which each kernel's statements can be executed one at a time:
    the serial module's namespace (torch, ``F``, helpers) with ``self`` bound to a built
    ``Kernels`` instance (weights and derived weights ready). Used by per-kernel profilers, so
    what they time is exactly what generated modules run."""
    import torch

    mod = load_module(serial_module(p))
    with torch.no_grad():
        k = mod.Kernels({n: t.to(device) for n, t in program_weights(p).items()}).eval()
    env = dict(vars(mod))
    env["self"] = k
    return env, k
