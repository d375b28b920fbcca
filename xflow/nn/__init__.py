"""Graph neural networks for the rewrite agent: one layer/head per module (after PyG).

* :class:`GATEncoder` — GATv2 message passing + mean/max pooling → one vector per graph;
* :class:`CandidatePolicyHead` — scores each candidate graph against the current one;
* :class:`ValueHead` — value of the current graph;
* :class:`GraphActorCritic` — the three together over environment observations;
* :func:`to_data`, :func:`batch_observations` — observations → PyG batches.
"""
from xflow.nn.actor_critic import MASKED_LOGIT, GraphActorCritic
from xflow.nn.batching import batch_graphs, batch_observations, to_data
from xflow.nn.gat_encoder import GATEncoder
from xflow.nn.policy_head import CandidatePolicyHead
from xflow.nn.value_head import ValueHead

__all__ = [
    "GATEncoder",
    "CandidatePolicyHead",
    "ValueHead",
    "GraphActorCritic",
    "MASKED_LOGIT",
    "to_data",
    "batch_graphs",
    "batch_observations",
]
