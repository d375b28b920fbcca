"""Replayable JSON record of every choice the parallelizer made.

The record holds the model hash, the planner configuration, the cost of every node, the removed
node counts, and each stage (kind, intra-op threads, decision and alternatives, clusters as node
*names*, cloned nodes). :func:`plan_from_record` rebuilds the exact :class:`Plan` from a record and
the same model, so a measured speed-up can be re-run without re-profiling or re-clustering.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from xflow.errors import XflowError
from xflow.parallel.dataflow import DataflowGraph
from xflow.parallel.schedule import Cluster, Plan, Stage
from xflow.safeio import atomic_write_json

__all__ = ["plan_record", "plan_from_record", "save_record", "load_record", "RECORD_VERSION"]

RECORD_VERSION = 1


def plan_record(g: DataflowGraph, plan: Plan, *, config: dict[str, Any] | None = None,
                extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """JSON-serialisable description of ``plan`` on ``g``."""
    nm = [n.name for n in g.nodes]
    return {
        "record_version": RECORD_VERSION,
        "producer": "xflow.parallel",
        "model_hash": g.content_hash,
        "n_nodes": len(g.nodes),
        "passes": dict(g.pass_stats),
        "config": dict(config or {}),
        "workers": plan.workers,
        "mode": plan.mode,
        "fallback": plan.fallback,
        "predicted_us": plan.predicted_us,
        "serial_predicted_us": plan.serial_predicted_us,
        "predicted_speedup": plan.predicted_speedup,
        "n_clones": plan.n_clones,
        "info": plan.info,
        "costs_us": {n.name: {str(t): c for t, c in n.cost.items()} for n in g.nodes},
        "stages": [
            {"kind": s.kind, "threads": s.threads, "predicted_us": s.predicted_us,
             "decision": s.decision, "alternatives_us": s.alternatives_us,
             "clusters": [{"nodes": [nm[v] for v in c.nodes], "clones": [nm[v] for v in c.clones],
                           "cost_us": c.cost(g, 1)} for c in s.clusters]}
            for s in plan.stages
        ],
        **(extra or {}),
    }


def plan_from_record(g: DataflowGraph, rec: dict[str, Any], *, check_hash: bool = True) -> Plan:
    """Rebuild the plan stored in ``rec`` for graph ``g`` (restores the recorded node costs too)."""
    if check_hash and rec.get("model_hash") != g.content_hash:
        raise XflowError(f"record was made for model {rec.get('model_hash')}, not {g.content_hash}; "
                         "compile the model again or pass the model the record came from")
    idx = {n.name: n.id for n in g.nodes}
    for name, c in rec.get("costs_us", {}).items():
        if name in idx:
            g.nodes[idx[name]].cost = {int(t): float(v) for t, v in c.items()}
    try:
        stages = [Stage(kind=s["kind"], threads=int(s["threads"]), predicted_us=float(s["predicted_us"]),
                        decision=s.get("decision", ""), alternatives_us=s.get("alternatives_us", {}),
                        clusters=[Cluster(nodes=[idx[x] for x in c["nodes"]],
                                          clones=[idx[x] for x in c["clones"]]) for c in s["clusters"]])
                  for s in rec["stages"]]
    except KeyError as exc:
        raise XflowError(f"record names node {exc} which is not in the model") from exc
    return Plan(stages=stages, workers=int(rec["workers"]), mode=rec["mode"],
                predicted_us=float(rec["predicted_us"]), serial_predicted_us=float(rec["serial_predicted_us"]),
                fallback=bool(rec.get("fallback", False)), info=dict(rec.get("info", {})))


def save_record(rec: dict[str, Any], path: str | Path) -> Path:
    """Write ``rec`` as indented JSON (atomically: a killed run never leaves half a record)."""
    return atomic_write_json(path, rec, indent=1, default=float)


def load_record(path: str | Path) -> dict[str, Any]:
    """Read a record written by :func:`save_record`."""
    return json.loads(Path(path).read_text())
