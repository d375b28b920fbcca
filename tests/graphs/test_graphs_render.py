"""Graphviz rendering: whole graph, neighbourhoods, highlights, and the missing-dot error."""
from __future__ import annotations

import shutil

import pytest

from xflow.errors import GraphvizMissing, UnknownName, XflowError
from xflow.graphs import load_model, render, to_dot
from xflow.graphs.builders import make_inception_like
from xflow.graphs.rendering import neighbourhood

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' not installed")


@pytest.fixture(scope="module")
def g():
    return load_model(make_inception_like())


@needs_dot
def test_render_svg_whole_graph(g, tmp_path):
    out = render(g, tmp_path / "sub" / "inception.svg", highlight=["b2_3x3"])
    svg = out.read_text()
    assert out.exists() and svg.lstrip().startswith(("<?xml", "<svg"))
    for n in g.nodes:
        assert n.name in svg
    assert "#ffb000" in svg  # the highlight colour


@needs_dot
def test_render_png_neighbourhood(g, tmp_path):
    out = render(g, tmp_path / "n.png", around="b2_3x3", radius=1, highlight="b2_3x3")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_neighbourhood(g):
    names = [n.name for n in neighbourhood(g, "b2_3x3", radius=1)]
    assert names == ["b2_1x1_relu", "b2_3x3", "b2_3x3_relu"]
    assert [n.name for n in neighbourhood(g, "b2_3x3", radius=0)] == ["b2_3x3"]
    assert len(neighbourhood(g, "concat", radius=10)) == len(g.nodes)


def test_to_dot_without_binary(g):
    src = to_dot(g, around="concat", radius=1).source
    assert "concat" in src and "b1_1x1_relu" in src
    assert "b2_1x1" not in src  # two hops away


def test_unknown_names_and_format(g, tmp_path):
    with pytest.raises(UnknownName, match="b2_3x4"):
        to_dot(g, highlight=["b2_3x4"])
    with pytest.raises(UnknownName):
        to_dot(g, around="nope")
    with pytest.raises(XflowError, match="unknown format 'gif'"):
        render(g, tmp_path / "x.gif")


def test_missing_dot_raises_with_install_hint(g, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no `dot` anywhere
    with pytest.raises(GraphvizMissing, match="apt-get install graphviz"):
        render(g, tmp_path / "x.svg")
