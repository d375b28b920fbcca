"""The generator pipeline: enumerate → fingerprint buckets → prune → verify → rule set as JSON.

:func:`generate` runs every domain of :data:`~xflow.rewrites.generator.enumerate.DOMAINS` to
``max_ops`` operators, keeps the verified candidates and returns the rule-set document that
:func:`save_rules` writes (atomically) to ``xflow/rewrites/generated/rules.json``. Each rule carries
its provenance (domain, source/target graphs, fingerprint bucket, operator counts) and its
verification evidence; rejected candidates are listed with the reason.

CLI: ``python -m xflow rewrite generate [--max-ops 3] [--out PATH]`` (minutes; not a unit test).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

from xflow.rewrites.generator.enumerate import DOMAINS, enumerate_graphs
from xflow.rewrites.generator.ops import OPS
from xflow.rewrites.generator.prune import Candidate, candidate_pairs, canonical_key
from xflow.rewrites.generator.verify import verify_candidate

__all__ = ["generate", "save_rules", "RULES_PATH", "rule_class", "FORMAT_VERSION", "Z3_ENVS"]

log = logging.getLogger(__name__)

#: Where the committed rule set lives.
RULES_PATH = Path(__file__).resolve().parent.parent / "generated" / "rules.json"

#: Version of the rules.json format.
FORMAT_VERSION = 1

#: The small instantiation at which z3 checks each rule exactly (per domain).
Z3_ENVS: dict[str, dict[str, int]] = {
    "matrix": {"m": 1, "k": 2, "n": 3, "p": 2},
    "image": {"b": 1, "c": 1, "d": 2, "h": 3, "w": 3},
}

_CLASS_ORDER = [("conv", {"Conv"}), ("pool", {"MaxPool", "AveragePool"}), ("matmul", {"MatMul", "Gemm"}),
                ("concat_split", {"Concat", "Split"}), ("transpose", {"Transpose"})]


def rule_class(cand: Candidate) -> str:
    """The rule's class, by the ops it involves: conv > pool > matmul > concat_split > transpose >
    elementwise (Add/Mul/activations only)."""
    ops = set(cand.src.op_types()) | set(cand.dst.op_types())
    for name, members in _CLASS_ORDER:
        if ops & members:
            return name
    return "elementwise"


def _name(cand: Candidate) -> str:
    digest = hashlib.sha1(canonical_key(cand.src, cand.dst).encode()).hexdigest()[:8]
    return f"gen_{rule_class(cand)}_{digest}"


def generate(max_ops: int = 3, domains: Sequence[str] | None = None, *, seed: int = 0, n_random: int = 2,
             z3_timeout_ms: int = 5000, progress: bool = False) -> dict[str, Any]:
    """Run the whole pipeline; returns the rule-set document (see the module docstring)."""
    t0 = time.perf_counter()
    doc: dict[str, Any] = {"format_version": FORMAT_VERSION, "generator": {
        "max_ops": max_ops, "seed": seed, "n_random_envs": n_random, "z3_timeout_ms": z3_timeout_ms,
        "domains": {}, "ops": sorted(OPS)}, "rules": [], "rejected": []}
    names: set[str] = set()
    for dname in (domains or list(DOMAINS)):
        dom = DOMAINS[dname]
        enum = enumerate_graphs(dom, max_ops, seed=seed, progress=progress)
        cands, stats = candidate_pairs(enum)
        bucket_size = {str(g): len(b) for b in enum.buckets.values() for g in b}
        t_ver = time.perf_counter()
        n_ok = 0
        it = cands
        if progress:
            from tqdm.auto import tqdm

            it = tqdm(cands, desc=f"verify {dname}")
        for c in it:
            ev = verify_candidate(c.src, c.dst, dom.env_dicts(), n_random=n_random, seed=seed,
                                  z3_env=Z3_ENVS.get(dname), z3_timeout_ms=z3_timeout_ms)
            name = _name(c)
            entry = {"name": name, "class": rule_class(c), "domain": dname,
                     "src": c.src.to_json(), "dst": c.dst.to_json()}
            if not ev.ok:
                doc["rejected"].append({**entry, "reason": ev.reason})
                continue
            if name in names:  # canonical keys are unique; a digest clash would be a bug
                raise AssertionError(f"duplicate generated rule name {name}")
            names.add(name)
            n_ok += 1
            entry["provenance"] = {"origin": c.origin, "n_ops": [len(c.src.nodes), len(c.dst.nodes)],
                                   "fingerprint_bucket_size": bucket_size.get(str(c.src), 1),
                                   "canonical": canonical_key(c.src, c.dst)}
            entry["verification"] = ev.to_json()
            doc["rules"].append(entry)
        doc["generator"]["domains"][dname] = {
            "variables": {v: [d if isinstance(d, int) else list(d) for d in s] for v, s in dom.variables},
            "ops": list(dom.ops), "envs": dom.env_dicts(), "graphs": enum.n_graphs,
            "fingerprints": len(enum.buckets), "enumerate_s": round(enum.time_s, 2), "prune": stats,
            "verified": n_ok, "verify_s": round(time.perf_counter() - t_ver, 2)}
    doc["rules"].sort(key=lambda r: r["name"])
    doc["generator"]["time_s"] = round(time.perf_counter() - t0, 1)
    return doc


def save_rules(doc: dict[str, Any], path: str | Path = RULES_PATH) -> Path:
    """Write the rule-set document atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".rules.", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=False)
        f.write("\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return path
