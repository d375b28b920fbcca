"""Transition-based dependency parser (the third task of DyNet's autobatching paper), stack-LSTM style.

Arc-hybrid transitions (Kuhlmann et al., 2011) over a sentence ``w_0..w_{n-1}``:

* ``SHIFT`` — push the buffer front ``b0`` onto the stack;
* ``LEFT``  — pop ``s0`` and make ``b0`` its head;
* ``RIGHT`` — pop ``s0`` and make ``s1`` its head;

a parse takes exactly ``2n - 1`` transitions (the last item on the stack is the root).

Representations (after Dyer et al.'s stack LSTM, 2015, on Kiperwasser & Goldberg's BiLSTM features, 2016):
every token starts as its BiLSTM vector ``v_i = [f_i; b_i]``; when a token receives a dependent its
vector is **composed**, ``r_h ← tanh(C_h r_h + C_d r_d + c)``. The stack is a **stack LSTM**: pushing
``x`` runs one LSTM step from the state of the item below (popping restores it), so the stack summary
is the top item's ``h``. An action LSTM reads the embedding of every action taken. Scores:
``s = W_o tanh(W_s h_stack + W_b r_{b0} + W_a h_action + b) + b_o`` (``r_{b0}`` is a learned pad
vector once the buffer is empty).

**Decisions depend on computed values**, so forwards are incremental: the parser runs all sentences
of a minibatch in lockstep; at every step it records the scores of every unfinished sentence, runs a
forward to read them (one batched forward across the minibatch in xflow and DyNet), takes the
highest-scoring legal action (training follows the model: exploration), and adds a cross-entropy
term towards the best action of the **dynamic oracle** (Goldberg & Nivre, 2013; arc-hybrid costs as in
Kiperwasser & Goldberg's parser: the number of gold arcs an action makes unreachable; among zero-cost
actions, the model's favourite). The new state (compositions, stack-LSTM push, action-LSTM step)
is recorded after the decision.

One transition loop (:func:`parse_lockstep`) drives three backends — eager PyTorch, an autobatch
graph and DyNet (its peer in :func:`xflow.autobatch.dynet_peer.build`) — so they compute the same function with the same weights;
:meth:`TransitionParser.loss_handbatched` batches each lockstep step by hand (one MLP, one
composition, one stack-LSTM and one action-LSTM kernel per step over the sentences that need them).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_sequence, pad_packed_sequence

from .. import functional as ab
from ..cells import LSTMWeights, lstm_sequence, lstm_step, zeros_state
from ..data import _zipf_ids, sentence_lengths
from ..graph import current_graph
from .base import DynamicModel, tanh_affine
from .bilstm import eager_lstm

__all__ = ["TransitionParser", "ParseExample", "make_parses", "parse_lockstep", "Transitions",
           "SHIFT", "LEFT", "RIGHT"]

SHIFT, LEFT, RIGHT = 0, 1, 2
N_ACTIONS = 3

#: Record the loss terms after the last transition (one batch) instead of at every step (one small
#: batch per step, DyNet-example style). Same function either way; a switch so that benchmarks can
#: measure the effect in-process.
defer_losses = True


@dataclass
class ParseExample:
    """A sentence with its gold projective dependency tree (``heads[i]`` = head position, -1 = root)."""

    words: list[int]
    heads: list[int]

    def __len__(self) -> int:
        return len(self.words)


def _random_projective(lo: int, hi: int, head: int, rng: np.random.Generator, heads: list[int]) -> None:
    if lo >= hi:
        return
    r = int(rng.integers(lo, hi))
    heads[r] = head
    _random_projective(lo, r, r, rng, heads)
    _random_projective(r + 1, hi, r, rng, heads)


def make_parses(n: int, vocab: int, seed: int = 0, min_len: int = 3, max_len: int = 80,
                mean_len: float = 25.0) -> list[ParseExample]:
    """``n`` Zipf sentences with news-like lengths and uniformly random projective trees."""
    rng = np.random.default_rng(seed)
    out = []
    for L in sentence_lengths(n, rng, min_len, max_len, mean_len):
        words = _zipf_ids(rng, vocab, int(L)).tolist()
        heads = [-2] * int(L)
        _random_projective(0, int(L), -1, rng, heads)
        out.append(ParseExample(words, heads))
    return out


class Transitions:
    """Arc-hybrid configuration of one sentence: stack of ``(token, state)``, buffer front, token vectors."""

    __slots__ = ("gold", "n", "stack", "i", "reps", "act", "losses", "heads", "actions")

    def __init__(self, gold: Sequence[int], reps: list[Any], act_state: Any):
        self.gold = list(gold)
        self.n = len(gold)
        self.stack: list[tuple[int, Any]] = []
        self.i = 0
        self.reps = reps
        self.act = act_state
        self.losses: list[Any] = []
        self.heads = [-2] * self.n
        self.actions: list[int] = []

    @property
    def done(self) -> bool:
        return self.i == self.n and len(self.stack) == 1

    def legal(self) -> tuple[bool, bool, bool]:
        """Legality of ``(SHIFT, LEFT, RIGHT)``."""
        return self.i < self.n, bool(self.stack) and self.i < self.n, len(self.stack) >= 2

    def costs(self) -> tuple[int, int, int]:
        """Dynamic-oracle cost of each action: gold arcs it makes unreachable (illegal: a large number)."""
        gh, i, n = self.gold, self.i, self.n
        st = [t for t, _ in self.stack]
        big = 1 << 20
        ok_s, ok_l, ok_r = self.legal()
        c_s = c_l = c_r = big
        if ok_s:  # b0 can no longer take a head below s0 nor dependents on the stack
            c_s = int(gh[i] in st[:-1]) + sum(1 for d in st if gh[d] == i)
        if st:
            s0 = st[-1]
            deps = sum(1 for d in range(i, n) if gh[d] == s0)  # s0's dependents still in the buffer
            h = gh[s0]
            if ok_l:
                c_l = int(h != i and (h == -1 or h > i or (len(st) > 1 and h == st[-2]))) + deps
            if ok_r:
                c_r = int(h != st[-2] and (h == -1 or h >= i)) + deps
        return c_s, c_l, c_r

    def decide(self, scores: Sequence[float]) -> tuple[int, int]:
        """``(taken, target)``: the model's best legal action, and the best zero-cost-first action."""
        legal = self.legal()
        costs = self.costs()
        cand = [a for a in range(N_ACTIONS) if legal[a]]
        taken = max(cand, key=lambda a: (scores[a], -a))
        low = min(costs[a] for a in cand)
        target = max((a for a in cand if costs[a] == low), key=lambda a: (scores[a], -a))
        return taken, target

    def apply(self, a: int, backend: Any) -> None:
        """Run transition ``a``, recording its compositions and pushes through ``backend``."""
        if a == SHIFT:
            b = self.i
            below = self.stack[-1][1] if self.stack else backend.stack0
            self.stack.append((b, backend.push(below, self.reps[b])))
            self.i += 1
        elif a == LEFT:
            d, _ = self.stack.pop()
            h = self.i
            self.heads[d] = h
            self.reps[h] = backend.compose(self.reps[h], self.reps[d])
        else:
            d, _ = self.stack.pop()
            h, _ = self.stack.pop()
            self.heads[d] = h
            self.reps[h] = backend.compose(self.reps[h], self.reps[d])
            below = self.stack[-1][1] if self.stack else backend.stack0
            self.stack.append((h, backend.push(below, self.reps[h])))
        self.act = backend.act_step(self.act, a)
        self.actions.append(a)

    def features(self, backend: Any) -> tuple[Any, Any, Any]:
        """``(stack summary h, buffer-front vector, action-LSTM h)``."""
        sh = backend.state_h(self.stack[-1][1] if self.stack else backend.stack0)
        buf = self.reps[self.i] if self.i < self.n else backend.pad
        return sh, buf, backend.state_h(self.act)


def parse_lockstep(backend: Any, batch: Sequence[ParseExample]) -> list[Transitions]:
    """Parse ``batch`` in lockstep with ``backend`` (see module docstring); returns the final configurations
    (``losses`` hold the per-step loss terms)."""
    confs = [Transitions(s.heads, backend.token_vectors(s), backend.act0) for s in batch]
    targets: list[list[tuple[Any, int]]] = [[] for _ in confs]
    while True:
        active = [k for k, c in enumerate(confs) if not c.done]
        if not active:
            break
        scores = [backend.scores(*confs[k].features(backend)) for k in active]
        values = backend.values(scores)
        for k, s, v in zip(active, scores, values):
            c = confs[k]
            taken, target = c.decide(v)
            if defer_losses:
                targets[k].append((s, target))
            else:
                c.losses.append(backend.ce(s, target))
            c.apply(taken, backend)
    # the loss terms feed no decision: recorded after the last transition, so an autobatching
    # backend computes them as one batch instead of one small batch per step
    for c, tg in zip(confs, targets):
        c.losses.extend(backend.ce(s, t) for s, t in tg)
    return confs


class TransitionParser(DynamicModel):
    """Stack-LSTM-style arc-hybrid parser (see module docstring).

    Args:
        vocab (int): word vocabulary size.
        emb (int): word embedding size.
        hidden (int): BiLSTM hidden size per direction (token vectors are ``2 * hidden``) and stack-LSTM size.
        act_emb (int): action embedding size.
        act_hidden (int): action-LSTM size.
        state (int): size of the parser-state MLP layer.
    """

    name = "parser"
    unit = "sentences"

    def __init__(self, vocab: int = 20000, emb: int = 64, hidden: int = 128, act_emb: int = 16, act_hidden: int = 32,
                 state: int = 128, max_len: int = 80, mean_len: float = 25.0, sparse_emb: bool = True):
        super().__init__()
        self.sparse_emb = sparse_emb
        self.vocab, self.max_len, self.mean_len = vocab, max_len, mean_len
        D = 2 * hidden
        self.E = nn.Parameter(torch.randn(vocab, emb) * 0.1)
        self.lstm = nn.LSTM(emb, hidden, bidirectional=True)
        self.stack_lstm = nn.LSTM(D, hidden)
        self.A = nn.Parameter(torch.randn(N_ACTIONS, act_emb) * 0.5)
        self.act_lstm = nn.LSTM(act_emb, act_hidden)
        self.pad = nn.Parameter(torch.randn(D) * 0.1)
        self.C_h = nn.Parameter(torch.randn(D, D) / D ** 0.5)
        self.C_d = nn.Parameter(torch.randn(D, D) / D ** 0.5)
        self.c_b = nn.Parameter(torch.zeros(D))
        self.W_s = nn.Parameter(torch.randn(state, hidden) / hidden ** 0.5)
        self.W_b = nn.Parameter(torch.randn(state, D) / D ** 0.5)
        self.W_a = nn.Parameter(torch.randn(state, act_hidden) / act_hidden ** 0.5)
        self.b_p = nn.Parameter(torch.zeros(state))
        self.out = nn.Linear(state, N_ACTIONS)

    def make_data(self, n: int, seed: int = 0) -> list[ParseExample]:
        return make_parses(n, self.vocab, seed=seed, max_len=self.max_len, mean_len=self.mean_len)

    # the three executions -------------------------------------------------------------
    def loss_eager(self, batch: Sequence[ParseExample]) -> torch.Tensor:
        confs = parse_lockstep(_EagerBackend(self), batch)
        return torch.stack([t for c in confs for t in c.losses]).sum()

    def loss_autobatch(self, batch: Sequence[ParseExample], fused: bool = True) -> list:
        confs = parse_lockstep(_GraphBackend(self, fused), batch)
        return [ab.esum(c.losses) for c in confs]

    def loss_handbatched(self, batch: Sequence[ParseExample]) -> torch.Tensor:
        return _handbatched(self, batch)

    def parse(self, batch: Sequence[ParseExample]) -> list[list[int]]:
        """Predicted heads of every sentence (autobatched, no gradient)."""
        with torch.no_grad(), ab.Graph("agenda"):
            confs = parse_lockstep(_GraphBackend(self, True), batch)
        return [c.heads for c in confs]


def _lstm_cell(lstm: nn.LSTM, x: torch.Tensor, hc: tuple[torch.Tensor, torch.Tensor]):
    return torch.lstm_cell(x, hc, lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0)


class _EagerBackend:
    """Per-sentence eager PyTorch: every value is a ``(1, d)`` tensor, computed when recorded."""

    def __init__(self, m: TransitionParser):
        self.m = m
        H, Ha = m.stack_lstm.hidden_size, m.act_lstm.hidden_size
        z = m.pad.new_zeros
        self.stack0 = (z(1, H), z(1, H))
        self.act0 = (z(1, Ha), z(1, Ha))
        self.pad = m.pad.unsqueeze(0)

    def token_vectors(self, s: ParseExample) -> list[torch.Tensor]:
        xs = self.m.embed(self.m.E, s.words)
        f = eager_lstm(self.m.lstm, xs, False)
        b = eager_lstm(self.m.lstm, xs, True)
        return [torch.cat([ft, bt], 1) for ft, bt in zip(f, b)]

    @staticmethod
    def state_h(st):
        return st[0]

    def push(self, below, x):
        return _lstm_cell(self.m.stack_lstm, x, below)

    def act_step(self, st, a: int):
        return _lstm_cell(self.m.act_lstm, self.m.A[a:a + 1], st)

    def compose(self, h, d):
        m = self.m
        return torch.tanh(F.linear(h, m.C_h, m.c_b) + F.linear(d, m.C_d))

    def scores(self, sh, buf, ah):
        m = self.m
        p = torch.tanh(F.linear(sh, m.W_s, m.b_p) + F.linear(buf, m.W_b) + F.linear(ah, m.W_a))
        return m.out(p)

    @staticmethod
    def values(scores):
        return [s.detach()[0].tolist() for s in scores]

    @staticmethod
    def ce(s, target: int):
        return F.cross_entropy(s, torch.tensor([target]), reduction="sum")


class _GraphBackend:
    """Records into the active autobatch graph; ``values`` runs an (incremental) forward."""

    def __init__(self, m: TransitionParser, fused: bool):
        self.m, self.fused = m, fused
        self.g = g = current_graph()
        # the parameters as plain attributes (an nn.Module attribute lookup costs more than a node)
        self.A, self.C_h, self.C_d, self.c_b = m.A, m.C_h, m.C_d, m.c_b
        self.W_s, self.W_b, self.W_a, self.b_p = m.W_s, m.W_b, m.W_a, m.b_p
        self.W_o, self.b_o = m.out.weight, m.out.bias
        self.sparse = m.sparse_emb
        self.fw = LSTMWeights.from_lstm(m.lstm, reverse=False)
        self.bw = LSTMWeights.from_lstm(m.lstm, reverse=True)
        self.sw = LSTMWeights.from_lstm(m.stack_lstm)
        self.aw = LSTMWeights.from_lstm(m.act_lstm)
        z = zeros_state(g, self.sw.hidden, m.pad)
        self.stack0 = (z, z)
        za = zeros_state(g, self.aw.hidden, m.pad)
        self.act0 = (za, za)
        self.pad = g.param(m.pad)

    def token_vectors(self, s: ParseExample) -> list:
        E, sparse = self.m.E, self.sparse
        xs = [ab.lookup(E, w, sparse=sparse) for w in s.words]
        f = lstm_sequence(self.fw, xs, fused=self.fused)
        b = lstm_sequence(self.bw, xs, reverse=True, fused=self.fused)
        return [ab.concat([ft, bt]) for ft, bt in zip(f, b)]

    @staticmethod
    def state_h(st):
        return st[0]

    def push(self, below, x):
        return lstm_step(self.sw, x, below[0], below[1], self.fused)

    def act_step(self, st, a: int):
        return lstm_step(self.aw, ab.lookup(self.A, a, sparse=self.sparse), st[0], st[1], self.fused)

    def compose(self, h, d):
        return tanh_affine(self.fused, self.c_b, self.C_h, h, self.C_d, d)

    def scores(self, sh, buf, ah):
        p = tanh_affine(self.fused, self.b_p, self.W_s, sh, self.W_b, buf, self.W_a, ah)
        return ab.affine(self.b_o, self.W_o, p)

    def values(self, scores):
        return self.g.forward_batch(scores).detach().tolist()

    @staticmethod
    def ce(s, target: int):
        return ab.cross_entropy(s, target)


def _handbatched(m: TransitionParser, batch: Sequence[ParseExample]) -> torch.Tensor:
    """Lockstep parsing with one kernel per step and per kind of computation (see module docstring)."""
    x = m.embed(m.E, [w for s in batch for w in s.words])
    packed = pack_sequence(list(torch.split(x, [len(s) for s in batch])), enforce_sorted=False)
    out, _ = m.lstm(packed)
    padded, _ = pad_packed_sequence(out, batch_first=True)  # (B, T, 2H)
    H, Ha = m.stack_lstm.hidden_size, m.act_lstm.hidden_size
    zs, za = m.pad.new_zeros(H), m.pad.new_zeros(Ha)
    confs = [Transitions(s.heads, list(padded[k, :len(s)].unbind(0)), (za, za)) for k, s in enumerate(batch)]
    terms = []
    while True:
        active = [c for c in confs if not c.done]
        if not active:
            break
        sh = torch.stack([c.stack[-1][1][0] if c.stack else zs for c in active])
        buf = torch.stack([c.reps[c.i] if c.i < c.n else m.pad for c in active])
        ah = torch.stack([c.act[0] for c in active])
        p = torch.tanh(torch.addmm(m.b_p, sh, m.W_s.t()).addmm_(buf, m.W_b.t()).addmm_(ah, m.W_a.t()))
        scores = m.out(p)
        decided = [c.decide(v) for c, v in zip(active, scores.detach().tolist())]
        terms.append(F.cross_entropy(scores, torch.tensor([t for _, t in decided]), reduction="sum"))
        # compositions (LEFT: b0 <- s0; RIGHT: s1 <- s0), one batched kernel
        comp = [(c, a) for c, (a, _) in zip(active, decided) if a != SHIFT]
        composed: dict[int, int] = {}  # id(conf) -> the token that was composed (RIGHT pushes it again)
        if comp:
            heads_, deps_ = [], []
            for c, a in comp:
                d = c.stack[-1][0]
                h = c.i if a == LEFT else c.stack[-2][0]
                heads_.append(h)
                deps_.append(d)
            R = torch.tanh(torch.addmm(m.c_b, torch.stack([c.reps[h] for (c, _), h in zip(comp, heads_)]), m.C_h.t())
                           .addmm_(torch.stack([c.reps[d] for (c, _), d in zip(comp, deps_)]), m.C_d.t()))
            for k, ((c, a), h, d) in enumerate(zip(comp, heads_, deps_)):
                c.reps[h] = R[k]
                c.heads[d] = h
                composed[id(c)] = h
                c.stack.pop()
                if a == RIGHT:
                    c.stack.pop()
        # stack-LSTM pushes (SHIFT: b0; RIGHT: the composed s1), one batched cell
        push = [(c, a) for c, (a, _) in zip(active, decided) if a != LEFT]
        if push:
            toks = [c.i if a == SHIFT else composed[id(c)] for c, a in push]
            below = [c.stack[-1][1] if c.stack else (zs, zs) for c, _ in push]
            X = torch.stack([c.reps[t] for (c, _), t in zip(push, toks)])
            h2, c2 = _lstm_cell(m.stack_lstm, X, (torch.stack([b[0] for b in below]), torch.stack([b[1] for b in below])))
            for k, ((c, a), t) in enumerate(zip(push, toks)):
                c.stack.append((t, (h2[k], c2[k])))
                if a == SHIFT:
                    c.i += 1
        # action LSTM, one batched cell
        acts = torch.tensor([a for a, _ in decided])
        h2, c2 = _lstm_cell(m.act_lstm, m.A.index_select(0, acts),
                            (torch.stack([c.act[0] for c in active]), torch.stack([c.act[1] for c in active])))
        for k, (c, (a, _)) in enumerate(zip(active, decided)):
            c.act = (h2[k], c2[k])
            c.actions.append(a)
    return torch.stack(terms).sum()
