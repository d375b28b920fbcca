"""Pruned building blocks (one per file): linear transform, propagation, GCN and GAT convolutions."""
from xflow.sparsify.layers.pruned_linear import PrunedLinear
from xflow.sparsify.layers.pruned_propagation import Graph, PrunedPropagation, prepare_graph
from xflow.sparsify.layers.unifews_gcn_conv import UnifewsGCNConv
from xflow.sparsify.layers.unifews_gat_conv import UnifewsGATConv

__all__ = ["PrunedLinear", "PrunedPropagation", "Graph", "prepare_graph", "UnifewsGCNConv", "UnifewsGATConv"]
