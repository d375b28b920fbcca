"""Model dimensions of the autobatch benchmark, per preset (``full``, ``quick``, ``tiny``).

Kept apart from :mod:`xflow.autobatch.bench` (which re-exports them) so that the DyNet peer's loss
check (:func:`xflow.autobatch.dynet_peer.peer_losses`) builds the same models without importing the
benchmark.
"""
from __future__ import annotations

from typing import Any

__all__ = ["PRESETS"]

#: Model dimensions. ``full`` follows DyNet's benchmark sizes; ``quick`` keeps tests/notebooks fast.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "full": {
        "bilstm": dict(vocab=20000, n_tags=50, emb=128, hidden=256, mlp=64),
        "bilstm-char": dict(vocab=20000, n_tags=50, emb=128, hidden=256, mlp=64, n_chars=100, char_emb=20,
                            char_hidden=64),
        "treelstm": dict(vocab=20000, n_labels=5, emb=128, hidden=128),
        "parser": dict(vocab=20000, emb=64, hidden=128, act_emb=16, act_hidden=32, state=128),
    },
    "quick": {
        "bilstm": dict(vocab=5000, n_tags=20, emb=64, hidden=64, mlp=32, max_len=40),
        "bilstm-char": dict(vocab=5000, n_tags=20, emb=64, hidden=64, mlp=32, n_chars=60, char_emb=16,
                            char_hidden=32, max_len=40),
        "treelstm": dict(vocab=5000, n_labels=5, emb=64, hidden=64, max_len=40),
        "parser": dict(vocab=5000, emb=32, hidden=64, act_emb=8, act_hidden=16, state=64, max_len=40),
    },
    "tiny": {
        "bilstm": dict(vocab=300, n_tags=8, emb=16, hidden=16, mlp=8, max_len=12, mean_len=8.0),
        "bilstm-char": dict(vocab=300, n_tags=8, emb=16, hidden=16, mlp=8, n_chars=20, char_emb=8,
                            char_hidden=8, max_len=12, mean_len=8.0),
        "treelstm": dict(vocab=300, n_labels=5, emb=16, hidden=16, max_len=12, mean_len=8.0),
        "parser": dict(vocab=300, emb=8, hidden=8, act_emb=4, act_hidden=4, state=8, max_len=10, mean_len=6.0),
    },
}
