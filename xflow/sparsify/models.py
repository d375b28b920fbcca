r"""GNN models with Unifews entry-wise sparsification, plus PyG stock references.

Iterative message passing (pruning inside every layer, masks inherited layer to layer):

* :class:`GCN` — :math:`\hat A\,\sigma(\hat A X W_1) W_2` with :class:`UnifewsGCNConv`.
* :class:`GAT` — multi-head attention: GAT v1 with :class:`UnifewsGATConv` (``version=1``, xflow
  profile) or GATv2 with the reference's rule, :class:`UnifewsGATv2Conv` (``version=2``, reference).

Decoupled (propagate once, then transform):

* :class:`SGC` — :math:`\operatorname{softmax}(\hat A^K X\, W)`; hop :math:`k` is pruned with the
  edge rule on :math:`\hat A^{k-1}X` (push-style: a node's small message is not pushed), hops nested.
* :class:`APPNP` — truncated personalised PageRank of the features,
  :math:`P = \sum_{k<K}\alpha(1-\alpha)^k \hat A^k X + (1-\alpha)^K \hat A^K X`, then a 2-layer MLP.

With :math:`\delta_a=\delta_w=0` every model is its dense reference. :class:`PyGGCN` and
:class:`PyGGAT` wrap PyG's ``GCNConv``/``GATConv`` as a sanity check. All models share the
:class:`SparseGNN` interface: ``prepare(x, graph)``, ``forward(x, graph, counter)``, ``freeze()``,
``set_masks(edge_masks, weight_masks)``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from xflow.errors import UnknownName
from xflow.sparsify.layers import (Graph, PrunedLinear, PrunedPropagation, UnifewsGATConv, UnifewsGATv2Conv,
                                  UnifewsGCNConv)
from xflow.sparsify.macs import MacCounter
from xflow.sparsify.ops import dropout_any

__all__ = ["SparseGNN", "GCN", "GAT", "SGC", "APPNP", "PyGGCN", "PyGGAT", "MODELS", "build_model"]


class SparseGNN(nn.Module):
    """Common interface of the sparsifiable models."""

    decoupled = False

    def prepare(self, x: Tensor, graph: Graph) -> None:
        """Precompute whatever does not depend on trainable weights (decoupled propagation)."""

    def propagations(self) -> list[PrunedPropagation]:
        """The pruned propagation operators, in execution order."""
        return [m for m in self.modules() if isinstance(m, PrunedPropagation)]

    def linears(self) -> list[PrunedLinear]:
        """The pruned linear operators, in execution order."""
        return [m for m in self.modules() if isinstance(m, PrunedLinear)]

    def freeze(self) -> None:
        """Fix every mask at its current value (called half-way through training)."""
        for m in self.propagations() + self.linears():
            m.freeze()

    def unfreeze(self) -> None:
        """Let every mask be recomputed at the next forward again (reference schedule)."""
        for m in self.propagations() + self.linears():
            m.unfreeze()

    def lock_nodes(self, nodes: Tensor | None) -> None:
        """Reference-code evaluation (``node_lock``): with frozen masks, keep every candidate edge whose
        target is in ``nodes`` (``(N,)`` bool) in each layer; ``None`` switches it off."""
        for p in self.propagations():
            p.lock_nodes = nodes

    def set_weight_mode(self, *, straight_through: bool | None = None, cumulative: bool | None = None,
                        clamp: bool | None = None) -> None:
        """Set how the weight masks of every :class:`PrunedLinear` evolve (see its docstring)."""
        for lin in self.linears():
            if straight_through is not None:
                lin.straight_through = straight_through
            if cumulative is not None:
                lin.cumulative = cumulative
            if clamp is not None:
                lin.clamp = clamp

    def set_masks(self, edge_masks: list[Tensor] | None = None, weight_masks: list[Tensor] | None = None) -> None:
        """Impose fixed masks (baselines): one edge mask per propagation, one weight mask per linear."""
        if edge_masks is not None:
            props = self.propagations()
            if len(edge_masks) != len(props):
                raise ValueError(f"need {len(props)} edge masks, got {len(edge_masks)}")
            for p, m in zip(props, edge_masks):
                p.set_mask(m)
        if weight_masks is not None:
            lins = self.linears()
            if len(weight_masks) != len(lins):
                raise ValueError(f"need {len(lins)} weight masks, got {len(weight_masks)}")
            for lin, m in zip(lins, weight_masks):
                lin.set_mask(m)


class GCN(SparseGNN):
    """``num_layers``-layer GCN with Unifews pruning (ReLU + dropout between layers)."""

    def __init__(self, in_channels: int, out_channels: int, hidden: int = 16, num_layers: int = 2,
                 dropout: float = 0.5, delta_a: float = 0.0, delta_w: float = 0.0, batch_norm: bool = False,
                 input_dropout: bool = True, bn_momentum: float = 0.1):
        super().__init__()
        # input_dropout: dropout on the raw features too (Kipf & Welling); the Unifews reference
        # applies dropout only after the hidden activations (input_dropout=False)
        self.input_dropout = input_dropout
        dims = [in_channels] + [hidden] * (num_layers - 1) + [out_channels]
        self.convs = nn.ModuleList(UnifewsGCNConv(a, b, delta_a, delta_w) for a, b in zip(dims[:-1], dims[1:]))
        # BatchNorm after hidden layers (as in the Unifews reference code): pruning shrinks the
        # aggregated signal of nodes that lost edges; normalisation keeps later layers well scaled.
        # (the reference uses momentum 0.9 in PyTorch's convention: running = 0.1·running + 0.9·batch)
        self.norms = nn.ModuleList(nn.BatchNorm1d(hidden, momentum=bn_momentum) if batch_norm else nn.Identity()
                                   for _ in range(num_layers - 1))
        self.dropout = dropout
        self.edge_scale: nn.Parameter | None = None  # learnable adjacency mask (UGS baseline)

    def forward(self, x: Tensor, graph: Graph, counter: MacCounter | None = None) -> Tensor:
        """Logits ``(N, C)``; edge masks are inherited from layer to layer."""
        w = graph.edge_weight if self.edge_scale is None else graph.edge_weight * self.edge_scale
        cand = None
        for i, conv in enumerate(self.convs):
            if i > 0 or self.input_dropout:
                x = dropout_any(x, self.dropout, self.training)
            x, cand = conv(x, graph, cand, counter, f"conv{i}", edge_weight=w)
            if i < len(self.convs) - 1:
                x = F.relu(self.norms[i](x))
        return x


class GAT(SparseGNN):
    """Two-layer GAT with Unifews pruning.

    ``version=1`` (xflow profile): GAT v1, ``hidden`` per head, ELU, dropout 0.6 on input, hidden and
    attention. ``version=2`` (reference profile, ``GNNThr`` with ``GATv2ConvThr``): GATv2 with the
    reference edge rule, ``hidden`` in total (``hidden // heads`` per head, concatenated), BatchNorm
    (``bn_momentum``) → ReLU → dropout after the hidden layer only, no attention dropout, one
    output head.
    """

    def __init__(self, in_channels: int, out_channels: int, hidden: int = 8, heads: int = 8,
                 dropout: float = 0.6, delta_a: float = 0.0, delta_w: float = 0.0, version: int = 1,
                 batch_norm: bool = False, bn_momentum: float = 0.1, input_dropout: bool = True,
                 att_dropout: float | None = None):
        super().__init__()
        if version not in (1, 2):
            raise UnknownName(f"GAT version must be 1 or 2, got {version!r}")
        self.version = version
        if version == 1:
            att = dropout if att_dropout is None else att_dropout
            self.conv1 = UnifewsGATConv(in_channels, hidden, heads, True, delta_a, delta_w, att)
            self.conv2 = UnifewsGATConv(hidden * heads, out_channels, 1, False, delta_a, delta_w, att)
            width = hidden * heads
        else:
            if hidden % heads:
                raise ValueError(f"GATv2 hidden width {hidden} must be a multiple of heads={heads}")
            att = 0.0 if att_dropout is None else att_dropout
            self.conv1 = UnifewsGATv2Conv(in_channels, hidden // heads, heads, True, delta_a, delta_w, att)
            self.conv2 = UnifewsGATv2Conv(hidden, out_channels, 1, False, delta_a, delta_w, att)
            width = hidden
        self.norm = nn.BatchNorm1d(width, momentum=bn_momentum) if batch_norm else nn.Identity()
        self.input_dropout = input_dropout
        self.dropout = dropout

    def forward(self, x: Tensor, graph: Graph, counter: MacCounter | None = None) -> Tensor:
        """Logits ``(N, C)``; the second layer attends over the edges the first kept."""
        if self.input_dropout:
            x = dropout_any(x, self.dropout, self.training)
        x, cand = self.conv1(x, graph, None, counter, "conv0")
        x = F.elu(self.norm(x)) if self.version == 1 else F.relu(self.norm(x))
        x = dropout_any(x, self.dropout, self.training)
        x, _ = self.conv2(x, graph, cand, counter, "conv1")
        return x


class _Decoupled(SparseGNN):
    """Shared machinery: ``K`` pruned hops computed once in :meth:`prepare`."""

    decoupled = True

    def __init__(self, K: int, delta_a: float):
        super().__init__()
        self.K = K
        self.props = nn.ModuleList(PrunedPropagation(delta_a) for _ in range(K))
        self._feat: Tensor | None = None
        self._prop_counter = MacCounter()

    def _hops(self, x: Tensor, graph: Graph):
        """Yield ``Â_k ... Â_1 x`` for k = 1..K with nested, pruned edge sets (and count MACs)."""
        counter = MacCounter()
        cand = None
        h = x
        with torch.no_grad():
            for k, prop in enumerate(self.props):
                h, cand = prop(h, graph, None, cand, counter, f"hop{k}")
                yield h
        self._prop_counter = counter

    def _count_prop(self, counter: MacCounter | None) -> None:
        if counter is not None:
            counter.extend(self._prop_counter)

    def _features(self) -> Tensor:
        if self._feat is None:
            raise RuntimeError(f"{type(self).__name__}.prepare(x, graph) must be called before forward")
        return self._feat


class SGC(_Decoupled):
    """Simplified graph convolution: ``K`` pruned hops of the features, then one pruned linear layer.

    With ``hidden`` set, the head is a 2-layer MLP (``lin0`` → BatchNorm → ReLU → dropout → ``lin1``)
    as in the Unifews reference code's decoupled models (``MLP`` in ``archs/models.py``).
    """

    def __init__(self, in_channels: int, out_channels: int, K: int = 2, delta_a: float = 0.0,
                 delta_w: float = 0.0, dropout: float = 0.0, batch_norm: bool = False, hidden: int | None = None):
        super().__init__(K, delta_a)
        # standardising the propagated features (element-wise, not counted in MACs) undoes the
        # degree-dependent shrinkage that pruned hops leave behind
        self.norm = nn.BatchNorm1d(in_channels, affine=False) if batch_norm else nn.Identity()
        if hidden:
            self.lin = PrunedLinear(in_channels, hidden, delta_w)
            self.hidden_norm = nn.BatchNorm1d(hidden)
            self.lin_out: PrunedLinear | None = PrunedLinear(hidden, out_channels, delta_w)
        else:
            self.lin = PrunedLinear(in_channels, out_channels, delta_w)
            self.lin_out = None
        self.dropout = dropout

    def prepare(self, x: Tensor, graph: Graph) -> None:
        """``Â^K x`` with Unifews hop pruning (cached)."""
        h = x
        for h in self._hops(x, graph):
            pass
        self._feat = h

    def forward(self, x: Tensor, graph: Graph, counter: MacCounter | None = None) -> Tensor:
        """Logits from the cached propagated features (``x`` is ignored after :meth:`prepare`)."""
        self._count_prop(counter)
        h = F.dropout(self.norm(self._features()), self.dropout, self.training)
        h = self.lin(h, counter, "lin0")
        if self.lin_out is None:
            return h
        h = F.dropout(F.relu(self.hidden_norm(h)), max(self.dropout, 0.5), self.training)
        return self.lin_out(h, counter, "lin1")


class APPNP(_Decoupled):
    """Decoupled APPNP: pruned personalised-PageRank propagation of the features, then a 2-layer MLP."""

    def __init__(self, in_channels: int, out_channels: int, hidden: int = 64, K: int = 10, alpha: float = 0.1,
                 dropout: float = 0.5, delta_a: float = 0.0, delta_w: float = 0.0, batch_norm: bool = False):
        super().__init__(K, delta_a)
        self.alpha = alpha
        self.norm = nn.BatchNorm1d(hidden) if batch_norm else nn.Identity()
        self.lin1 = PrunedLinear(in_channels, hidden, delta_w)
        self.lin2 = PrunedLinear(hidden, out_channels, delta_w)
        self.dropout = dropout

    def prepare(self, x: Tensor, graph: Graph) -> None:
        r""":math:`P = \sum_{k<K}\alpha(1-\alpha)^k \hat A^k X + (1-\alpha)^K \hat A^K X` with pruned hops."""
        a = self.alpha
        acc = a * x
        h = x
        for k, h in enumerate(self._hops(x, graph), start=1):
            if k < self.K:
                acc = acc + a * (1 - a) ** k * h
        self._feat = acc + (1 - a) ** self.K * h

    def forward(self, x: Tensor, graph: Graph, counter: MacCounter | None = None) -> Tensor:
        """Logits ``(N, C)`` from the cached propagated features."""
        self._count_prop(counter)
        h = F.dropout(self._features(), self.dropout, self.training)
        h = F.relu(self.norm(self.lin1(h, counter, "lin0")))
        h = F.dropout(h, self.dropout, self.training)
        return self.lin2(h, counter, "lin1")


def _dense_gcn_count(counter, n, e, dims):
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        counter.add(f"conv{i}.lin", "transformation", a * b, a * b, n * a * b, n * a * b)
        counter.add(f"conv{i}.prop", "propagation", e, e, e * b, e * b, n)


class PyGGCN(SparseGNN):
    """Reference: two PyG ``GCNConv`` layers (dense; MACs counted analytically)."""

    def __init__(self, in_channels: int, out_channels: int, hidden: int = 16, dropout: float = 0.5, **_):
        super().__init__()
        from torch_geometric.nn import GCNConv

        self.dims = [in_channels, hidden, out_channels]
        self.conv1 = GCNConv(in_channels, hidden, add_self_loops=False, normalize=False)
        self.conv2 = GCNConv(hidden, out_channels, add_self_loops=False, normalize=False)
        self.dropout = dropout

    def forward(self, x: Tensor, graph: Graph, counter: MacCounter | None = None) -> Tensor:
        """Logits over the pre-normalised ``Â`` of ``graph``."""
        x = F.dropout(x, self.dropout, self.training)
        x = F.relu(self.conv1(x, graph.edge_index, graph.edge_weight))
        x = F.dropout(x, self.dropout, self.training)
        x = self.conv2(x, graph.edge_index, graph.edge_weight)
        if counter is not None:
            _dense_gcn_count(counter, graph.num_nodes, graph.num_edges, self.dims)
        return x


class PyGGAT(SparseGNN):
    """Reference: two PyG ``GATConv`` layers (8×8 hidden heads, 1 output head; dense)."""

    def __init__(self, in_channels: int, out_channels: int, hidden: int = 8, heads: int = 8,
                 dropout: float = 0.6, **_):
        super().__init__()
        from torch_geometric.nn import GATConv

        self.shape = (in_channels, hidden, heads, out_channels)
        self.conv1 = GATConv(in_channels, hidden, heads=heads, dropout=dropout, add_self_loops=False)
        self.conv2 = GATConv(hidden * heads, out_channels, heads=1, concat=False, dropout=dropout,
                             add_self_loops=False)
        self.dropout = dropout

    def forward(self, x: Tensor, graph: Graph, counter: MacCounter | None = None) -> Tensor:
        """Logits (``graph.edge_index`` already has self-loops)."""
        x = F.dropout(x, self.dropout, self.training)
        x = F.elu(self.conv1(x, graph.edge_index))
        x = F.dropout(x, self.dropout, self.training)
        x = self.conv2(x, graph.edge_index)
        if counter is not None:
            fi, hd, h, c = self.shape
            n, e = graph.num_nodes, graph.num_edges
            for name, a, b, hh in (("conv0", fi, hd, h), ("conv1", hd * h, c, 1)):
                counter.add(f"{name}.lin", "transformation", a * b * hh, a * b * hh, n * a * b * hh, n * a * b * hh)
                counter.add(f"{name}.att", "attention", 0, 0, 2 * n * hh * b, 2 * n * hh * b)
                counter.add(f"{name}.prop", "propagation", e, e, e * hh * b, e * hh * b, n)
        return x


MODELS: dict[str, type[SparseGNN]] = {
    "gcn": GCN, "gat": GAT, "sgc": SGC, "appnp": APPNP, "gcn_pyg": PyGGCN, "gat_pyg": PyGGAT,
}


def build_model(name: str, in_channels: int, out_channels: int, *, delta_a: float = 0.0,
                delta_w: float = 0.0, **hparams) -> SparseGNN:
    """Instantiate model ``name`` (see :data:`MODELS`); unknown hyper-parameters are an error."""
    if name not in MODELS:
        raise UnknownName(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    cls = MODELS[name]
    if name.endswith("_pyg"):
        if delta_a or delta_w:
            raise ValueError(f"{name} is the dense PyG reference; it cannot be pruned (set delta_a=delta_w=0)")
        return cls(in_channels, out_channels, **hparams)
    return cls(in_channels, out_channels, delta_a=delta_a, delta_w=delta_w, **hparams)
