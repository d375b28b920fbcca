"""Lazy package exports resolve to the defining object and reject unknown names."""
from __future__ import annotations

import pytest


def test_lazy_exports_resolve_and_cache():
    import xflow.graphs as graphs
    from xflow.graphs.rendering import render

    assert graphs.render is render  # the function, not the rendering module
    assert graphs.zoo.__name__ == "xflow.graphs.zoo"  # listed as a submodule
    assert vars(graphs)["render"] is render  # cached after first access


def test_unknown_name_is_attribute_error():
    import xflow.parallel as parallel

    with pytest.raises(AttributeError, match="'xflow.parallel' has no attribute 'nope'"):
        parallel.nope  # noqa: B018


def test_measurement_core_and_autobatch_import_without_the_onnx_stack():
    """``xflow.runtime`` loads its submodules on first use: the measurement core (and autobatch,
    which uses it) must not pull in ONNX Runtime or onnx_ir (seconds of import time)."""
    import subprocess
    import sys

    code = ("import sys, xflow.runtime.measure, xflow.autobatch; "
            "print(','.join(m for m in ('onnxruntime', 'onnx_ir', 'onnx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
    import xflow.runtime as runtime
    from xflow.runtime.session import make_session

    assert runtime.make_session is make_session  # the lazy export still resolves
