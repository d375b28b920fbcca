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
