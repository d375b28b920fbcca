"""Observation → PyTorch Geometric batches.

A :class:`gymnasium.spaces.GraphInstance` maps one-to-one onto ``Data(x=nodes,
edge_index=edge_links.T, edge_attr=edges)``. :func:`batch_observations` turns a list of
environment observations into two :class:`~torch_geometric.data.Batch` objects (the current graphs,
and all candidate graphs concatenated) plus the number of candidates of each observation, which is
what :class:`xflow.nn.actor_critic.GraphActorCritic` consumes.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch_geometric.data import Batch, Data

__all__ = ["to_data", "batch_graphs", "batch_observations"]


def to_data(g: Any) -> Data:
    """One ``GraphInstance`` (or anything with ``nodes``, ``edges``, ``edge_links``) as ``Data``."""
    links = np.asarray(g.edge_links, dtype=np.int64).reshape(-1, 2)
    return Data(x=torch.as_tensor(np.asarray(g.nodes, dtype=np.float32)),
                edge_index=torch.as_tensor(links.T.copy()),
                edge_attr=torch.as_tensor(np.asarray(g.edges, dtype=np.float32)))


def batch_graphs(graphs: Sequence[Any]) -> Batch:
    """Concatenate graphs into one disjoint-union ``Batch`` (``batch`` vector maps nodes → graph)."""
    return Batch.from_data_list([to_data(g) for g in graphs])


def batch_observations(observations: Sequence[dict]) -> tuple[Batch, Batch | None, torch.Tensor]:
    """``(current graphs, candidate graphs or None, candidate counts [B])`` of observations."""
    current = batch_graphs([o["graph"] for o in observations])
    counts = torch.tensor([len(o["candidates"]) for o in observations], dtype=torch.long)
    cands = [c for o in observations for c in o["candidates"]]
    return current, (batch_graphs(cands) if cands else None), counts
