"""Whole models on the torch backend match ONNX Runtime: the zoo (calibrated so activations do not
vanish), exports from the other torch exporter and old-opset graphs; a mutant with negated ReLUs fails."""
from __future__ import annotations

import io
import warnings

import numpy as np
import pytest

from xflow.runtime import backend_ops
from xflow.runtime.backend import make_backend_session
from xflow.runtime.backend_lower import LowerOptions
from xflow.runtime.equivalence import compare_outputs

from .backend_helpers import assert_close, assert_signal, calibrate_, ort_outputs

# zoo models with a small config (seconds on 2 cores); the rest run with -m slow
FAST = {"squeezenet1_1": dict(image_size=64), "googlenet": dict(image_size=64), "resnet18": dict(image_size=64),
        "mobilenet_v3_small": dict(image_size=64), "bert_encoder": dict(layers=1, seq=16, hidden=64, heads=2, ffn=128),
        "nasrnn": dict(hidden=64, seq=3)}
SLOW = {"inception_v3": dict(image_size=96), "resnet50": dict(image_size=64),
        "resnext50_32x4d": dict(image_size=64), "vgg16": dict(image_size=224)}  # vgg16: ONNX export needs 7 | map size


def _export(module, args, *, dynamo: bool = False, opset: int = 17):
    import onnx
    import torch

    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        if dynamo:
            prog = torch.onnx.export(module, args, dynamo=True, opset_version=opset, external_data=False,
                                     verbose=False)
            return prog.model_proto
        torch.onnx.export(module, args, buf, dynamo=False, opset_version=opset, input_names=["input"],
                          output_names=["output"])
    return onnx.load_from_string(buf.getvalue())


_CACHE: dict = {}


def calibrated_zoo(name: str, **cfg):
    """(ONNX model, feeds) of zoo model ``name`` with LSUV-calibrated weights (outputs carry signal)."""
    key = (name, tuple(sorted(cfg.items())))
    if key not in _CACHE:
        from xflow.graphs import zoo

        m = zoo.torch_model(name, **cfg)
        args = zoo.example_input(name, **cfg)
        calibrate_(m, args)
        model = _export(m, args)
        _CACHE[key] = (model, {"input": args[0].numpy()})
    return _CACHE[key]


def _check(model, feeds, **session_kw):
    ref = ort_outputs(model, feeds)
    assert_signal(ref)
    s = make_backend_session(model, "torch", **session_kw)
    assert_close(s.run(feeds), ref, rtol=1e-3, atol=1e-4)
    return s


@pytest.mark.parametrize("name", sorted(FAST) + [pytest.param(n, marks=pytest.mark.slow) for n in sorted(SLOW)])
def test_zoo_model_matches_onnxruntime(name):
    model, feeds = calibrated_zoo(name, **{**FAST, **SLOW}[name])
    s = _check(model, feeds)
    if name in ("googlenet", "resnet18", "squeezenet1_1"):
        assert s.program.fused_nodes > 0 and s.program.options.layout == "channels_last"


def test_zoo_export_as_cached_matches_through_equivalence_check():
    """The zoo's own export (as ``xflow latency`` sees it) through ``compare_outputs(backend=)``."""
    from xflow.graphs import zoo

    path = zoo.export("squeezenet1_1", image_size=64)
    diffs = compare_outputs(path, path, backend="torch", n_trials=2)
    assert diffs and all(d.ok for d in diffs)


def test_negated_relu_mutant_fails(monkeypatch):
    """If every ReLU (fused or not) computed relu(-x), the equivalence check must say so."""
    model, feeds = calibrated_zoo("googlenet", image_size=64)
    ref = ort_outputs(model, feeds)
    assert_signal(ref)
    real = backend_ops.onednn_activation

    def no_fused_relu(op, attrs, consts=None):
        return None if op == "Relu" else real(op, attrs, consts)

    monkeypatch.setattr(backend_ops, "onednn_activation", no_fused_relu)
    monkeypatch.setitem(backend_ops.ACTIVATIONS, "Relu", lambda x, a: f"torch.relu(-({x}))")
    s = make_backend_session(model, "torch")
    import re

    assert len(re.findall(r"relu_?\(-\(", s.source)) == 57  # every ReLU of GoogLeNet
    got = s.run(feeds)
    with pytest.raises(AssertionError):
        assert_close(got, ref, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("opts", [LowerOptions(layout="contiguous", onednn="off", fuse=False),
                                  LowerOptions(layout="channels_last", onednn="on", onednn_min_flops=0)],
                         ids=["plain", "all_onednn"])
def test_lowering_variants_agree_on_a_real_cnn(opts):
    model, feeds = calibrated_zoo("resnet18", image_size=64)
    _check(model, feeds, lower=opts)


def test_dynamo_exporter_graph_matches():
    """An export from torch's other (dynamo) exporter: opset 18, different op patterns."""
    import torch

    from xflow.graphs import zoo

    m = zoo.torch_model("bert_encoder", layers=1, seq=16, hidden=64, heads=2, ffn=128)
    x = zoo.example_input("bert_encoder", layers=1, seq=16, hidden=64, heads=2, ffn=128)
    try:
        model = _export(m, x, dynamo=True, opset=18)
    except Exception as exc:  # noqa: BLE001 - the dynamo exporter needs onnxscript
        pytest.skip(f"dynamo exporter unavailable: {exc}")
    feeds = {model.graph.input[0].name: x[0].numpy()}
    _check(model, feeds)

    class Small(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.c = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.bn = torch.nn.BatchNorm2d(8)

        def forward(self, t):
            return torch.nn.functional.gelu(self.bn(self.c(t))).mean([2, 3])

    s = Small().eval()
    s.bn.running_var.uniform_(0.5, 2.0)
    s.bn.running_mean.normal_()
    t = torch.randn(1, 3, 12, 12)
    model = _export(s, (t,), dynamo=True, opset=18)
    _check(model, {model.graph.input[0].name: t.numpy()})


def test_old_opset_alexnet_style_graph():
    """Opset-9 graph in the style of the original ONNX model zoo exports: LRN, Dropout, Softmax."""
    from onnx import helper

    from .backend_helpers import onnx_model

    r = np.random.default_rng(3)
    N = helper.make_node
    nodes = [N("Conv", ["x", "w1", "b1"], ["c1"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
             N("Relu", ["c1"], ["r1"]), N("LRN", ["r1"], ["n1"], size=5, alpha=1e-4, beta=0.75, bias=1.0),
             N("MaxPool", ["n1"], ["p1"], kernel_shape=[3, 3], strides=[2, 2]),
             N("Dropout", ["p1"], ["d1"], ratio=0.5),
             N("Flatten", ["d1"], ["f"]), N("Gemm", ["f", "wf", "bf"], ["g"], transB=1),
             N("Softmax", ["g"], ["y"])]
    inits = {"w1": r.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.5,
             "b1": r.standard_normal(8).astype(np.float32),
             "wf": r.standard_normal((10, 8 * 3 * 3)).astype(np.float32) * 0.3,
             "bf": r.standard_normal(10).astype(np.float32)}
    model = onnx_model(nodes, [("x", [1, 3, 16, 16])], [("y", None)], inits, opset=9)
    _check(model, {"x": r.standard_normal((1, 3, 16, 16)).astype(np.float32)})
