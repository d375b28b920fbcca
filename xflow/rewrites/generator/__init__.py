"""Rule generation in the manner of TASO (Jia et al., SOSP 2019) and the generic applier.

Pipeline (:func:`generate`): :mod:`.enumerate` (every graph of up to n operators over symbolic-shaped
variables, fingerprinted on random inputs at several shapes) → :mod:`.prune` (candidate pairs from
equal fingerprints, TASO's redundancy pruning) → :mod:`.verify` (random tests in ONNX Runtime and
numpy at several shapes and dtypes, exact z3 check) → ``xflow/rewrites/generated/rules.json``.
:mod:`.rule` turns any rule of that file into a :class:`~xflow.rewrites.Rule`
(:func:`generated_rules`), so a generated rule needs no hand-written code.
"""
from __future__ import annotations

from xflow._lazy import lazy_getattr

__all__ = ["generate", "save_rules", "generated_rules", "load_rule_set", "GeneratedRule", "Pattern", "RULES_PATH"]

__getattr__ = lazy_getattr(__name__, {
    "generate": "xflow.rewrites.generator.generate",
    "save_rules": "xflow.rewrites.generator.generate",
    "RULES_PATH": "xflow.rewrites.generator.generate",
    "generated_rules": "xflow.rewrites.generator.rule",
    "load_rule_set": "xflow.rewrites.generator.rule",
    "GeneratedRule": "xflow.rewrites.generator.rule",
    "Pattern": "xflow.rewrites.generator.pattern",
})
