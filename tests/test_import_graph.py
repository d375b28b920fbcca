"""The import graph of xflow: lower layers never import upper ones, no cycles, no hidden imports.

Every module's imports of xflow modules are read with ``ast`` — at module level and inside
functions (``if TYPE_CHECKING:`` blocks are skipped: they never run). The layers, lowest first:

=========  ===========================================================================
layer      modules
=========  ===========================================================================
base       ``xflow``, ``_lazy``, ``errors``, ``device``, ``paths``, ``safeio``, ``clitools``,
           ``results``, ``sweep``, ``tables``
graphs     ``xflow.graphs.*`` — the one ONNX IR (onnx-ir), shapes, folding, hashing, FLOPs, zoo
runtime    ``xflow.runtime.*`` — backends, sessions, the measurement core
costs      ``xflow.costs.*`` — the one cost layer (roofline over profiles, measured op tables)
viz        ``xflow.viz.*`` — the shared plotting helpers and widgets (matplotlib, ipywidgets) that
           notebooks and techniques draw with; above the core so it can render graphs and results
technique  one group per technique, never importing another group:
           ``rewriting`` (``rewrites`` < ``envs`` < ``agents``; ``nn`` < ``agents``),
           ``sparsify``, ``autobatch``, ``algsel``, ``parallel``; inside a group its
           ``benchmark`` / ``bench`` / ``experiment(s)`` modules sit on top (they compose the
           group's parts, e.g. every optimizer of the rewriting group)
entry      ``xflow.cli``, ``xflow.report``, ``xflow.notebooks`` and every ``<pkg>.cli`` /
           ``<pkg>.report`` (thin: arguments → library calls)
=========  ===========================================================================

A module may import modules of its own layer (same package or group, respecting the order above)
or of lower layers. An import inside a function must say why it is not at the top: the importing
module is an entry module (``xflow --help`` stays fast), or the imported module pulls in a heavy
optional dependency (:data:`HEAVY`) that the importing module does not, or a top-level import would
close a cycle. Run ``python -m pytest tests/test_import_graph.py -q`` to check; the failure
messages list every offending edge with its line.

:data:`PENDING` lists the edges that still break these rules in modules another workstream is
rewriting (who, and what the fix is); a test fails as soon as one of them disappears, so the list
only ever shrinks.
"""
from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "xflow"

#: Third-party packages whose import is slow or optional: deferring them is a reason for an
#: in-function import.
HEAVY = frozenset({"torch", "torch_geometric", "torchvision", "gymnasium", "ray", "tyro", "scipy", "pandas",
                   "matplotlib", "graphviz", "onnxruntime", "ipywidgets", "dynet", "onnxsim", "onnxslim",
                   "papermill", "nbformat", "tqdm"})

BASE = {"xflow", "xflow._lazy", "xflow.errors", "xflow.device", "xflow.paths", "xflow.safeio", "xflow.clitools", "xflow.results",
        "xflow.sweep", "xflow.tables"}
CORE = {"graphs": 1, "runtime": 2, "costs": 3, "viz": 4}
GROUPS = {"rewrites": ("rewriting", 0), "envs": ("rewriting", 1), "nn": ("rewriting", 1),
          "agents": ("rewriting", 2), "sparsify": ("sparsify", 0), "autobatch": ("autobatch", 0),
          "algsel": ("algsel", 0), "parallel": ("parallel", 0)}
APPS = {"benchmark", "bench", "experiment", "experiments"}
TECHNIQUE, ENTRY = 5, 6

#: Known violations in modules other workstreams own: ``(importer, imported): owner and fix``.
PENDING: dict[tuple[str, str], str] = {
    # empty: every violation found after the eight workstreams merged is fixed; add an entry only
    # with the owner and the fix, e.g. ("xflow.x", "xflow.y"): "workstream: what moves where"
}


def _modules() -> dict[str, Path]:
    out = {}
    for f in PKG.rglob("*.py"):
        parts = list(f.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


MODULES = _modules()


def layer(mod: str) -> tuple[int, str, int]:
    """``(layer rank, technique group, rank inside the group)`` of a module."""
    parts = mod.split(".")
    if mod in BASE:
        return (0, "", 0)
    if mod in ("xflow.cli", "xflow.__main__", "xflow.report", "xflow.notebooks") or parts[-1] in ("cli", "report"):
        return (ENTRY, "", 0)
    pkg = parts[1]
    if pkg in CORE:
        return (CORE[pkg], "", 0)
    group, rank = GROUPS[pkg]
    if parts[-1] in APPS:
        rank = 9
    return (TECHNIQUE, group, rank)


def _resolve(mod: str, is_pkg: bool, node: ast.ImportFrom) -> list[str]:
    if node.level:
        base = mod.split(".") if is_pkg else mod.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    return [f"{target}.{a.name}" if f"{target}.{a.name}" in MODULES else target for a in node.names]


@lru_cache(maxsize=None)
def imports(mod: str) -> tuple[tuple[str, bool, int], ...]:
    """``(imported module, inside a function?, line)`` for every import of ``mod`` (xflow and
    third-party top-level names), ``TYPE_CHECKING`` blocks excluded."""
    f = MODULES[mod]
    tree = ast.parse(f.read_text())
    skip, in_fn = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            in_fn.update(id(n) for n in ast.walk(node) if n is not node)
    out = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            targets = _resolve(mod, f.name == "__init__.py", node)
        else:
            continue
        for t in targets:
            if t == "xflow" or t.startswith("xflow."):
                while t not in MODULES and "." in t:
                    t = t.rsplit(".", 1)[0]
            out.append((t, id(node) in in_fn, node.lineno))
    return tuple(out)


def xflow_edges(mod: str, *, top_only: bool = False) -> set[str]:
    return {t for t, fn, _ in imports(mod) if t in MODULES and t != mod and not (top_only and fn)}


@lru_cache(maxsize=None)
def heavy(mod: str) -> frozenset[str]:
    """Heavy third-party packages that importing ``mod`` loads (top-level imports, transitively)."""
    found = {t.split(".")[0] for t, fn, _ in imports(mod) if not fn and t.split(".")[0] in HEAVY}
    for dep in xflow_edges(mod, top_only=True):
        if dep != mod and not mod.startswith(dep + "."):  # a package's parent runs first anyway
            found |= heavy(dep)
    return frozenset(found)


def _reaches(src: str, dst: str, *, top_only: bool) -> bool:
    seen, stack = set(), [src]
    while stack:
        m = stack.pop()
        if m == dst:
            return True
        if m in seen:
            continue
        seen.add(m)
        stack.extend(xflow_edges(m, top_only=top_only))
    return False


def _allowed(src: str, dst: str) -> bool:
    (ls, gs, rs), (ld, gd, rd) = layer(src), layer(dst)
    if dst.startswith(src + ".") or src.startswith(dst + "."):  # a package and its own modules
        return True
    if ld < ls:
        return True
    if ld > ls:
        return False
    if ls == TECHNIQUE:
        return gs == gd and (rd < rs or (rd == rs and src.split(".")[1] == dst.split(".")[1]))
    return True


def test_layers_are_known():
    for mod in MODULES:
        layer(mod)  # KeyError for a package missing from the table above


def test_no_upward_or_cross_technique_import():
    bad = [f"{src}:{line} imports {dst} ({layer(src)} -> {layer(dst)})"
           for src in sorted(MODULES) for dst, _, line in imports(src)
           if dst in MODULES and dst != src and not _allowed(src, dst) and (src, dst) not in PENDING]
    assert not bad, "upward or cross-technique imports:\n  " + "\n  ".join(bad)


def test_no_import_cycles():
    """No cycle among xflow modules, counting imports inside functions (they run too)."""
    graph = {m: {d for d in xflow_edges(m) if (m, d) not in PENDING} - {p for p in MODULES if m.startswith(p + ".")}
             for m in MODULES}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for m in sorted(MODULES):
        if m not in index:
            visit(m)
    assert not cycles, "import cycles:\n  " + "\n  ".join(" <-> ".join(c) for c in cycles)


def test_no_top_level_cycle_through_a_parent_package():
    """A module that imports a name from its own package at the top, while the package's
    ``__init__`` imports that module at the top, runs against a half-initialised package (the
    cycle check above skips a module's edges to its parents: they run first anyway)."""
    bad = [f"{src}:{line} imports {dst}, whose __init__ imports {src} back at the top"
           for src in sorted(MODULES) for dst, in_fn, line in imports(src)
           if not in_fn and src.startswith(dst + ".") and _reaches(dst, src, top_only=True)]
    assert not bad, "cycles through a parent package:\n  " + "\n  ".join(sorted(set(bad)))


def test_imports_inside_functions_are_justified():
    """An xflow import inside a function: entry module, heavy dependency deferred, or cycle broken."""
    bad = []
    for src in sorted(MODULES):
        if layer(src)[0] == ENTRY:
            continue
        for dst, in_fn, line in imports(src):
            if not in_fn or dst not in MODULES or dst == src or (src, dst) in PENDING:
                continue
            if heavy(dst) - heavy(src):
                continue  # defers torch / ray / pandas … that the module itself does not load
            if _reaches(dst, src, top_only=True):
                continue  # a top-level import would close a cycle
            bad.append(f"{src}:{line} imports {dst} inside a function (move it to the top)")
    assert not bad, "\n  ".join(["unjustified in-function imports:", *bad])


def test_pending_violations_still_exist():
    """Each :data:`PENDING` entry is still in the code (remove it from the list once fixed)."""
    gone = [f"{src} -> {dst}" for src, dst in PENDING
            if src not in MODULES or dst not in {t for t, _, _ in imports(src)}]
    assert not gone, "fixed, remove from PENDING:\n  " + "\n  ".join(gone)


def test_the_checker_sees_violations():
    """The checker itself: a made-up upward edge and a cycle are caught."""
    assert not _allowed("xflow.graphs.ir", "xflow.rewrites._base")
    assert not _allowed("xflow.costs.roofline", "xflow.envs.rewrite")
    assert not _allowed("xflow.algsel.swap", "xflow.parallel.ops")  # cross-technique
    assert not _allowed("xflow.rewrites.search", "xflow.agents.search")  # rewrites < agents
    assert _allowed("xflow.agents.search", "xflow.rewrites.search")
    assert _allowed("xflow.rewrites.benchmark", "xflow.agents.search")  # the group's app
    assert _allowed("xflow.rewrites.cli", "xflow.agents.search")
    assert "torch" in heavy("xflow.nn.gat_encoder") and not heavy("xflow.errors")
