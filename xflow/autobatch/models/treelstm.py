"""Tree-LSTM sentiment-style classifier over binary trees (DyNet benchmark ``treelstm``).

Leaves embed their word and run the Tree-LSTM leaf cell; internal nodes combine their two
children (:mod:`xflow.autobatch.cells`); every node predicts one of ``n_labels`` classes and the
loss sums the cross-entropies of all nodes. Hand-batched version: level by level — all leaves of
the minibatch at once, then all nodes of height 1, 2, … (each level gathers its children's
states with ``index_select``).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .. import functional as ab
from ..cells import TreeLSTMWeights, treelstm_leaf, treelstm_node
from ..data import Tree, make_trees
from ..graph import Expr
from ..ops import treelstm_gates_torch, treelstm_leaf_torch
from .base import DynamicModel

__all__ = ["TreeLSTMClassifier"]


class TreeLSTMClassifier(DynamicModel):
    """Binary Tree-LSTM with a loss at every node.

    Args:
        vocab (int): word vocabulary size.
        n_labels (int): classes per node.
        emb (int): word embedding size.
        hidden (int): Tree-LSTM hidden size.
        sparse_emb (bool): sparse embedding gradients (default: :obj:`True`).
    """

    name = "treelstm"
    unit = "trees"

    def __init__(self, vocab: int = 20000, n_labels: int = 5, emb: int = 128, hidden: int = 128,
                 max_len: int = 60, mean_len: float = 25.0, sparse_emb: bool = True):
        super().__init__()
        self.sparse_emb = sparse_emb
        self.vocab, self.n_labels, self.max_len, self.mean_len = vocab, n_labels, max_len, mean_len
        H = hidden
        self.E = nn.Parameter(torch.randn(vocab, emb) * 0.1)
        self.w_leaf = nn.Parameter(torch.randn(3 * H, emb) / emb ** 0.5)
        self.b_leaf = nn.Parameter(torch.zeros(3 * H))
        self.u_l = nn.Parameter(torch.randn(5 * H, H) / H ** 0.5)
        self.u_r = nn.Parameter(torch.randn(5 * H, H) / H ** 0.5)
        self.b = nn.Parameter(torch.zeros(5 * H))
        self.out = nn.Linear(H, n_labels)

    @property
    def weights(self) -> TreeLSTMWeights:
        """The cell parameters as :class:`TreeLSTMWeights`."""
        return TreeLSTMWeights(self.w_leaf, self.b_leaf, self.u_l, self.u_r, self.b)

    def make_data(self, n: int, seed: int = 0) -> list[Tree]:
        return make_trees(n, self.vocab, self.n_labels, seed=seed, max_len=self.max_len, mean_len=self.mean_len)

    def loss_eager(self, batch: Sequence[Tree]) -> torch.Tensor:
        total = 0.0
        H = self.u_l.shape[1]
        for t in batch:
            hs: list[torch.Tensor] = []
            cs: list[torch.Tensor] = []
            leaves = [n for n, ch in enumerate(t.children) if ch is None]
            xs = self.embed(self.E, [t.word[n] for n in leaves]).unbind(0)  # one lookup per tree
            x_of = dict(zip(leaves, xs))
            for n, ch in enumerate(t.children):
                if ch is None:
                    pre = F.linear(x_of[n].unsqueeze(0), self.w_leaf, self.b_leaf)
                    hc = treelstm_leaf_torch(pre)
                else:
                    l, r = ch
                    pre = torch.addmm(torch.addmm(self.b, hs[l], self.u_l.t()), hs[r], self.u_r.t())
                    hc = treelstm_gates_torch(pre, cs[l], cs[r])
                hs.append(hc[:, :H])
                cs.append(hc[:, H:])
            logits = self.out(torch.cat(hs, 0))
            total = total + F.cross_entropy(logits, torch.as_tensor(t.labels), reduction="sum")
        return total

    def loss_autobatch(self, batch: Sequence[Tree], fused: bool = True) -> list[Expr]:
        w = self.weights
        Wo, bo = self.out.weight, self.out.bias
        losses = []
        for t in batch:
            states: list[tuple[Expr, Expr]] = []
            terms = []
            for n, ch in enumerate(t.children):
                if ch is None:
                    hc = treelstm_leaf(w, self.lookup(self.E, t.word[n]), fused)
                else:
                    hc = treelstm_node(w, states[ch[0]], states[ch[1]], fused)
                states.append(hc)
                terms.append(ab.cross_entropy(ab.affine(bo, Wo, hc[0]), t.labels[n]))
            losses.append(ab.esum(terms))
        return losses

    def loss_handbatched(self, batch: Sequence[Tree]) -> torch.Tensor:
        H = self.u_l.shape[1]
        # global position of every node in the concatenation of all levels
        by_level: dict[int, list[tuple[int, int]]] = {}
        for ti, t in enumerate(batch):
            for n, h in enumerate(t.height):
                by_level.setdefault(h, []).append((ti, n))
        pos: dict[tuple[int, int], int] = {}
        hs: list[torch.Tensor] = []
        cs: list[torch.Tensor] = []
        labels: list[int] = []
        offset = 0
        Hcat = Ccat = None
        for level in sorted(by_level):
            nodes = by_level[level]
            if level == 0:
                words = torch.as_tensor([batch[ti].word[n] for ti, n in nodes])
                hc = treelstm_leaf_torch(F.linear(self.embed(self.E, words), self.w_leaf, self.b_leaf))
            else:
                li = torch.as_tensor([pos[(ti, batch[ti].children[n][0])] for ti, n in nodes])
                ri = torch.as_tensor([pos[(ti, batch[ti].children[n][1])] for ti, n in nodes])
                pre = torch.addmm(torch.addmm(self.b, Hcat[li], self.u_l.t()), Hcat[ri], self.u_r.t())
                hc = treelstm_gates_torch(pre, Ccat[li], Ccat[ri])
            for k, key in enumerate(nodes):
                pos[key] = offset + k
                labels.append(batch[key[0]].labels[key[1]])
            offset += len(nodes)
            hs.append(hc[:, :H])
            cs.append(hc[:, H:])
            Hcat = torch.cat(hs, 0) if len(hs) > 1 else hs[0]
            Ccat = torch.cat(cs, 0) if len(cs) > 1 else cs[0]
        logits = self.out(Hcat)
        return F.cross_entropy(logits, torch.as_tensor(labels), reduction="sum")
