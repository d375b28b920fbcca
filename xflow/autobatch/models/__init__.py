"""Benchmark models of DyNet's autobatching paper, each runnable eager, autobatched and hand-batched.

Registry: ``bilstm`` (:class:`BiLSTMTagger`), ``bilstm-char`` (:class:`BiLSTMCharTagger`),
``treelstm`` (:class:`TreeLSTMClassifier`), ``parser`` (:class:`TransitionParser`). Add a model: a :class:`DynamicModel` subclass in its
own file and one line in :data:`MODELS`.
"""
from __future__ import annotations

from typing import Any

from xflow.errors import UnknownName

from .base import DynamicModel
from .bilstm import BiLSTMTagger
from .bilstm_char import BiLSTMCharTagger
from .parser import TransitionParser
from .treelstm import TreeLSTMClassifier

__all__ = ["MODELS", "get_model", "DynamicModel", "BiLSTMTagger", "BiLSTMCharTagger", "TreeLSTMClassifier", "TransitionParser"]

MODELS: dict[str, type[DynamicModel]] = {
    "bilstm": BiLSTMTagger,
    "bilstm-char": BiLSTMCharTagger,
    "treelstm": TreeLSTMClassifier,
    "parser": TransitionParser,
}


def get_model(name: str, **dims: Any) -> DynamicModel:
    """Instantiate a registered model with its dimensions (``emb=…, hidden=…``)."""
    try:
        cls = MODELS[name]
    except KeyError:
        raise UnknownName(f"unknown autobatch model {name!r}; choose one of {sorted(MODELS)}") from None
    return cls(**dims)
