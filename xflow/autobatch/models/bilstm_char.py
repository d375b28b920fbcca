"""BiLSTM tagger with character-level word embeddings (DyNet benchmark ``bilstm-tagger-withchar``).

Each word's representation is ``[E[w]; c_f; c_b]`` where ``c_f`` / ``c_b`` are the final states of
a forward / backward character LSTM over the word's spelling; the rest is :class:`BiLSTMTagger`.
Every word gets its character representation (DyNet's benchmark does this only for rare words),
which makes the graph several times larger and more irregular.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import pack_sequence

from .. import functional as ab
from ..cells import LSTMWeights, lstm_sequence
from ..data import Sentence, make_sentences, make_spellings
from ..graph import Expr
from .bilstm import BiLSTMTagger, eager_lstm

__all__ = ["BiLSTMCharTagger"]


class BiLSTMCharTagger(BiLSTMTagger):
    """BiLSTM tagger with a character BiLSTM per word.

    Args:
        n_chars (int): character alphabet size.
        char_emb (int): character embedding size.
        char_hidden (int): character LSTM hidden size per direction.
        (others as :class:`BiLSTMTagger`; ``emb`` is the word-embedding part.)
    """

    name = "bilstm-char"

    def __init__(self, vocab: int = 20000, n_tags: int = 50, emb: int = 128, hidden: int = 256, mlp: int = 64,
                 n_chars: int = 100, char_emb: int = 20, char_hidden: int = 64, max_len: int = 80,
                 mean_len: float = 25.0, sparse_emb: bool = True):
        super().__init__(vocab, n_tags, emb, hidden, mlp, max_len, mean_len, sparse_emb)
        self.n_chars = n_chars
        self.C = nn.Parameter(torch.randn(n_chars, char_emb) * 0.1)
        self.char_lstm = nn.LSTM(char_emb, char_hidden, bidirectional=True)
        self.lstm = nn.LSTM(emb + 2 * char_hidden, hidden, bidirectional=True)
        self._spellings = make_spellings(vocab, n_chars)

    def make_data(self, n: int, seed: int = 0) -> list[Sentence]:
        return make_sentences(n, self.vocab, self.n_tags, seed=seed, max_len=self.max_len,
                              mean_len=self.mean_len, spellings=self._spellings)

    def _embed_eager(self, s: Sentence) -> torch.Tensor:
        rows = []
        for chars in s.chars:
            cs = self.embed(self.C, chars)
            f = eager_lstm(self.char_lstm, cs, False)[-1]
            b = eager_lstm(self.char_lstm, cs, True)[0]
            rows.append(torch.cat([f, b], 1))
        return torch.cat([self.embed(self.E, s.words), torch.cat(rows, 0)], 1)

    def _embed_autobatch(self, s: Sentence, fused: bool = True) -> list[Expr]:
        fw = LSTMWeights.from_lstm(self.char_lstm, reverse=False)
        bw = LSTMWeights.from_lstm(self.char_lstm, reverse=True)
        out = []
        for w, chars in zip(s.words, s.chars):
            cs = [self.lookup(self.C, c) for c in chars]
            f = lstm_sequence(fw, cs, fused=fused)[-1]
            b = lstm_sequence(bw, cs, reverse=True, fused=fused)[0]
            out.append(ab.concat([self.lookup(self.E, w), f, b]))
        return out

    def _embed_handbatched(self, batch: Sequence[Sentence]) -> list[torch.Tensor]:
        words = [c for s in batch for c in s.chars]
        chars = self.embed(self.C, [c for w in words for c in w])  # one lookup for all characters
        packed = pack_sequence(list(torch.split(chars, [len(w) for w in words])), enforce_sorted=False)
        _, (h_n, _) = self.char_lstm(packed)  # h_n: (2, N_words, Hc): last fwd state, first bwd state
        reps = torch.cat([h_n[0], h_n[1]], 1)
        all_w = torch.as_tensor([w for s in batch for w in s.words])
        x = torch.cat([self.embed(self.E, all_w), reps], 1)
        return list(torch.split(x, [len(s) for s in batch]))
