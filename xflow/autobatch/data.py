"""Synthetic data with realistic size distributions (no downloads), fixed seeds.

* **Sentence lengths** follow a news-treebank-like distribution: a Gamma(k=4, θ=6.25) draw
  (mean 25, sd 12.5, right-skewed like WSJ sentence lengths), rounded and clipped to
  ``[min_len, max_len]``.
* **Words** are Zipf-distributed ids (exponent 1.1) over the vocabulary, so frequent words repeat.
* **Tags** are a deterministic function of the word plus 10% noise (a learnable signal).
* **Characters**: every vocabulary id has a fixed spelling, length 1 + Poisson(4.5) (clipped to
  ``max_chars``), over ``n_chars`` symbols.
* **Trees**: uniformly random binary bracketings of a sentence (split point uniform at every span),
  five labels per node (SST-like), nodes listed in post-order (children before parents).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Sentence", "Tree", "sentence_lengths", "make_sentences", "make_spellings", "make_trees"]


@dataclass
class Sentence:
    """A tagged sentence: word ids, tag ids and (optionally) the character ids of every word."""

    words: list[int]
    tags: list[int]
    chars: list[list[int]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.words)


@dataclass
class Tree:
    """A binary tree in post-order: ``children[n]`` is ``(left, right)`` or ``None`` for a leaf.

    ``word[n]`` is the word id of a leaf (``-1`` for internal nodes); ``labels[n]`` the node's
    class; the root is the last node. ``height[n]`` is 0 for leaves, ``1 + max(children)`` else.
    """

    children: list[tuple[int, int] | None]
    word: list[int]
    labels: list[int]
    height: list[int]

    def __len__(self) -> int:
        return len(self.children)

    @property
    def n_leaves(self) -> int:
        """Number of leaves (= sentence length)."""
        return sum(c is None for c in self.children)


def sentence_lengths(n: int, rng: np.random.Generator, min_len: int = 3, max_len: int = 80,
                     mean: float = 25.0) -> np.ndarray:
    """``n`` sentence lengths: Gamma(4, mean/4), rounded, clipped to ``[min_len, max_len]``."""
    x = rng.gamma(4.0, mean / 4.0, size=n)
    return np.clip(np.rint(x), min_len, max_len).astype(int)


def _zipf_ids(rng: np.random.Generator, vocab: int, size: int, a: float = 1.1) -> np.ndarray:
    ranks = np.arange(1, vocab + 1, dtype=float)
    p = ranks ** (-a)
    p /= p.sum()
    return rng.choice(vocab, size=size, p=p)


def make_spellings(vocab: int, n_chars: int, seed: int = 0, max_chars: int = 16) -> list[list[int]]:
    """A fixed spelling (list of char ids) for every word id."""
    rng = np.random.default_rng(seed + 7919)
    lens = np.clip(1 + rng.poisson(4.5, size=vocab), 1, max_chars)
    return [rng.integers(0, n_chars, size=int(k)).tolist() for k in lens]


def make_sentences(n: int, vocab: int, n_tags: int, seed: int = 0, min_len: int = 3, max_len: int = 80,
                   mean_len: float = 25.0, spellings: list[list[int]] | None = None) -> list[Sentence]:
    """``n`` tagged sentences (see module docstring); with ``spellings``, words carry char ids."""
    rng = np.random.default_rng(seed)
    lens = sentence_lengths(n, rng, min_len, max_len, mean_len)
    out = []
    for L in lens:
        w = _zipf_ids(rng, vocab, int(L))
        tags = (w * 7 + 3) % n_tags
        noise = rng.random(int(L)) < 0.1
        tags[noise] = rng.integers(0, n_tags, size=int(noise.sum()))
        words = w.tolist()
        out.append(Sentence(words, tags.tolist(), [spellings[x] for x in words] if spellings else []))
    return out


def _bracket(lo: int, hi: int, rng: np.random.Generator, words: list[int], tree: Tree) -> int:
    if hi - lo == 1:
        tree.children.append(None)
        tree.word.append(words[lo])
        tree.height.append(0)
        return len(tree.children) - 1
    k = int(rng.integers(lo + 1, hi))
    left = _bracket(lo, k, rng, words, tree)
    right = _bracket(k, hi, rng, words, tree)
    tree.children.append((left, right))
    tree.word.append(-1)
    tree.height.append(1 + max(tree.height[left], tree.height[right]))
    return len(tree.children) - 1


def make_trees(n: int, vocab: int, n_labels: int = 5, seed: int = 0, min_len: int = 3, max_len: int = 60,
               mean_len: float = 25.0) -> list[Tree]:
    """``n`` random binary bracketings over Zipf sentences with news-like lengths."""
    rng = np.random.default_rng(seed)
    lens = sentence_lengths(n, rng, min_len, max_len, mean_len)
    out = []
    for L in lens:
        words = _zipf_ids(rng, vocab, int(L)).tolist()
        t = Tree([], [], [], [])
        _bracket(0, int(L), rng, words, t)
        t.labels = rng.integers(0, n_labels, size=len(t.children)).tolist()
        out.append(t)
    return out
