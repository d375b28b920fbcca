"""Unifews-style entry-wise GNN sparsification (Liao et al., 2024) on PyTorch Geometric.

Edge pruning drops a message :math:`m_{uv} = \\hat A_{vu} h_u` when its norm is below
:math:`\\delta_a` times the mean message norm of the layer (self-loops kept, edge sets nested layer to
layer); weight pruning drops :math:`W_{ij}` when :math:`|W_{ij}|\\,\\lVert X_{:,i}\\rVert <
\\delta_w \\lVert X\\rVert_F / F_{in}`. Models: GCN, GAT (iterative), SGC, APPNP (decoupled), their
dense references and PyG stock layers; exact MAC counting; random / DSpar / UGS baselines;
synthetic SBM / power-law graphs; the experiment ``run(config) -> records``.

Public API (see ``docs/sparsify.md``)::

    from xflow.sparsify import run, load_planetoid, build_model, prepare_graph, train_model
"""
from xflow.sparsify.baselines import dspar_edge_mask, random_edge_mask, random_weight_masks, train_ugs
from xflow.sparsify.datasets import load_planetoid, random_split
from xflow.sparsify.experiment import DEFAULTS, METHODS, MODEL_DEFAULTS, load_graph, run, summarize, to_wide
from xflow.sparsify.layers import Graph, PrunedLinear, PrunedPropagation, UnifewsGATConv, UnifewsGCNConv, prepare_graph
from xflow.sparsify.macs import MacCounter, OpCount
from xflow.sparsify.models import APPNP, GAT, GCN, MODELS, SGC, PyGGAT, PyGGCN, SparseGNN, build_model
from xflow.sparsify.pruning import edge_prune_mask, message_norms, self_loop_mask, weight_prune_mask
from xflow.sparsify.synthetic import make_synthetic, powerlaw_graph, sbm_graph
from xflow.sparsify.train import accuracy, evaluate, train_model

__all__ = [
    "run", "summarize", "to_wide", "load_graph", "DEFAULTS", "METHODS", "MODEL_DEFAULTS",
    "load_planetoid", "random_split", "sbm_graph", "powerlaw_graph", "make_synthetic",
    "edge_prune_mask", "weight_prune_mask", "message_norms", "self_loop_mask",
    "Graph", "prepare_graph", "PrunedLinear", "PrunedPropagation", "UnifewsGCNConv", "UnifewsGATConv",
    "SparseGNN", "GCN", "GAT", "SGC", "APPNP", "PyGGCN", "PyGGAT", "MODELS", "build_model",
    "MacCounter", "OpCount", "train_model", "evaluate", "accuracy",
    "random_edge_mask", "dspar_edge_mask", "random_weight_masks", "train_ugs",
]
