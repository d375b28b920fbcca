"""Pruned building blocks (one per file): linear transform, propagation, GCN, GAT and GATv2 convolutions."""
from xflow.sparsify.layers.pruned_linear import PrunedLinear
from xflow.sparsify.layers.pruned_propagation import Graph, PrunedPropagation, prepare_graph
from xflow.sparsify.layers.unifews_gcn_conv import UnifewsGCNConv
from xflow.sparsify.layers.unifews_gat_conv import UnifewsGATConv
from xflow.sparsify.layers.unifews_gatv2_conv import UnifewsGATv2Conv

__all__ = ["PrunedLinear", "PrunedPropagation", "Graph", "prepare_graph", "UnifewsGCNConv", "UnifewsGATConv",
           "UnifewsGATv2Conv"]
