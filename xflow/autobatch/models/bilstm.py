"""BiLSTM tagger with word embeddings (DyNet benchmark ``bilstm-tagger``).

For a sentence ``w_1..w_n``: ``x_t = E[w_t]``; a forward and a backward LSTM give ``f_t``, ``b_t``;
``z_t = tanh(W_f f_t + W_b b_t + b_1)``; ``s_t = W_2 z_t + b_2``; loss ``Σ_t CE(s_t, y_t)``.
The two LSTM directions are the two directions of one ``nn.LSTM(bidirectional=True)`` so the
hand-batched version is a packed ``nn.LSTM`` call over the padded minibatch.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_sequence, pad_packed_sequence

from .. import functional as ab
from ..cells import LSTMWeights, lstm_sequence
from ..data import Sentence, make_sentences
from ..graph import Expr
from .base import DynamicModel, tanh_affine

__all__ = ["BiLSTMTagger", "eager_lstm"]


def eager_lstm(lstm: nn.LSTM, xs: torch.Tensor, reverse: bool) -> list[torch.Tensor]:
    """Step-by-step LSTM over ``xs (n, in)`` with ``torch.lstm_cell`` (one fused cell per step)."""
    sfx = "_l0_reverse" if reverse else "_l0"
    w_ih, w_hh = getattr(lstm, "weight_ih" + sfx), getattr(lstm, "weight_hh" + sfx)
    b_ih, b_hh = getattr(lstm, "bias_ih" + sfx), getattr(lstm, "bias_hh" + sfx)
    H = lstm.hidden_size
    h = c = xs.new_zeros(1, H)
    out: list[torch.Tensor] = [None] * xs.shape[0]  # type: ignore[list-item]
    order = range(xs.shape[0] - 1, -1, -1) if reverse else range(xs.shape[0])
    for t in order:
        h, c = torch.lstm_cell(xs[t:t + 1], (h, c), w_ih, w_hh, b_ih, b_hh)
        out[t] = h
    return out


class BiLSTMTagger(DynamicModel):
    """BiLSTM tagger (see module docstring).

    Args:
        vocab (int): word vocabulary size.
        n_tags (int): number of tags.
        emb (int): word embedding size.
        hidden (int): LSTM hidden size per direction.
        mlp (int): hidden size of the output MLP.
        sparse_emb (bool): sparse embedding gradients (default: :obj:`True`).
    """

    name = "bilstm"
    unit = "sentences"

    def __init__(self, vocab: int = 20000, n_tags: int = 50, emb: int = 128, hidden: int = 256, mlp: int = 64,
                 max_len: int = 80, mean_len: float = 25.0, sparse_emb: bool = True):
        super().__init__()
        self.sparse_emb = sparse_emb
        self.vocab, self.n_tags, self.max_len, self.mean_len = vocab, n_tags, max_len, mean_len
        self.E = nn.Parameter(torch.randn(vocab, emb) * 0.1)
        self.lstm = nn.LSTM(emb, hidden, bidirectional=True)
        self.W_f = nn.Parameter(torch.randn(mlp, hidden) / hidden ** 0.5)
        self.W_b = nn.Parameter(torch.randn(mlp, hidden) / hidden ** 0.5)
        self.b_1 = nn.Parameter(torch.zeros(mlp))
        self.out = nn.Linear(mlp, n_tags)

    def extra_repr(self) -> str:
        return f"vocab={self.vocab}, tags={self.n_tags}"

    def make_data(self, n: int, seed: int = 0) -> list[Sentence]:
        return make_sentences(n, self.vocab, self.n_tags, seed=seed, max_len=self.max_len, mean_len=self.mean_len)

    # word representations (overridden by the char model) ---------------------------------
    def _embed_eager(self, s: Sentence) -> torch.Tensor:
        return self.embed(self.E, s.words)

    def _embed_autobatch(self, s: Sentence, fused: bool = True) -> list[Expr]:
        return [self.lookup(self.E, w) for w in s.words]

    def _embed_handbatched(self, batch: Sequence[Sentence]) -> list[torch.Tensor]:
        x = self.embed(self.E, [w for s in batch for w in s.words])  # one lookup for the batch
        return list(torch.split(x, [len(s) for s in batch]))

    # the three executions -------------------------------------------------------------
    def loss_eager(self, batch: Sequence[Sentence]) -> torch.Tensor:
        total = 0.0
        W1 = torch.cat([self.W_f, self.W_b], 1)
        for s in batch:
            xs = self._embed_eager(s)
            f = eager_lstm(self.lstm, xs, False)
            b = eager_lstm(self.lstm, xs, True)
            hs = torch.cat([torch.cat(f, 0), torch.cat(b, 0)], 1)
            z = torch.tanh(F.linear(hs, W1, self.b_1))
            total = total + F.cross_entropy(self.out(z), torch.as_tensor(s.tags), reduction="sum")
        return total

    def loss_autobatch(self, batch: Sequence[Sentence], fused: bool = True) -> list[Expr]:
        fw = LSTMWeights.from_lstm(self.lstm, reverse=False)
        bw = LSTMWeights.from_lstm(self.lstm, reverse=True)
        W2, b2 = self.out.weight, self.out.bias
        losses = []
        for s in batch:
            xs = self._embed_autobatch(s, fused)
            f = lstm_sequence(fw, xs, fused=fused)
            b = lstm_sequence(bw, xs, reverse=True, fused=fused)
            terms = []
            for ft, bt, y in zip(f, b, s.tags):
                z = tanh_affine(fused, self.b_1, self.W_f, ft, self.W_b, bt)
                terms.append(ab.cross_entropy(ab.affine(b2, W2, z), y))
            losses.append(ab.esum(terms))
        return losses

    def loss_handbatched(self, batch: Sequence[Sentence]) -> torch.Tensor:
        packed = pack_sequence(self._embed_handbatched(batch), enforce_sorted=False)
        out, _ = self.lstm(packed)
        padded, lengths = pad_packed_sequence(out, batch_first=True)  # (B, T, 2H)
        mask = torch.arange(padded.shape[1])[None, :] < lengths[:, None]
        hs = padded[mask]  # (N_tokens, 2H) in sentence order
        W1 = torch.cat([self.W_f, self.W_b], 1)
        z = torch.tanh(F.linear(hs, W1, self.b_1))
        tags = torch.as_tensor([t for s in batch for t in s.tags])
        return F.cross_entropy(self.out(z), tags, reduction="sum")
