"""xflow: a research workbench for computation-graph optimization.

Five techniques under one roof, each a subpackage: ``rewrites``/``envs``/``agents``
(X-RLflow-style RL graph rewriting), ``sparsify`` (Unifews entry-wise GNN sparsification),
``autobatch`` (DyNet-style on-the-fly batching), ``algsel`` (ai3-style per-layer conv
algorithm selection) and ``parallel`` (Ramiel-style dataflow parallelization).
Heavy dependencies are imported lazily by the subpackages that need them.
"""
from __future__ import annotations

import logging

__version__ = "0.1.0"
__all__ = ["__version__"]

logging.getLogger(__name__).addHandler(logging.NullHandler())
