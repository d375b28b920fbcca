"""Docs tables of the graph core (``make report``): the model zoo, generated from its registry."""
from __future__ import annotations

from xflow.tables import markdown_table, report_table

__all__: list[str] = []


@report_table("graphs.zoo_models")
def zoo_models_table() -> str:
    """Every zoo model with its description, default config and tags (from :mod:`xflow.graphs.zoo`)."""
    from xflow.graphs import zoo

    rows = []
    for name in zoo.list_models():
        d = zoo.describe(name)
        cfg = ", ".join(f"{k} {v}" for k, v in d["defaults"].items() if k != "seed")
        tags = ", ".join(d.get("tags", ())) if d.get("tags") else "—"
        rows.append([f"`{name}`", d["description"], cfg, tags])
    return markdown_table(["name", "description", "default config", "used by"], rows)
