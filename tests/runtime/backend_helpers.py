"""Hand-made ONNX graphs and checks for the backend tests: outputs must match ONNX Runtime *and*
carry signal (a constant or vanishing output would let a wrong kernel pass)."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

_NP2ONNX = {np.dtype("float32"): TensorProto.FLOAT, np.dtype("int64"): TensorProto.INT64,
            np.dtype("bool"): TensorProto.BOOL, np.dtype("int32"): TensorProto.INT32,
            np.dtype("float64"): TensorProto.DOUBLE}


def onnx_model(nodes, inputs, outputs, inits=None, opset=17) -> onnx.ModelProto:
    """A checked model: ``inputs`` are ``(name, shape[, dtype])``, ``outputs`` ``(name, shape|None[, dtype])``."""
    def vi(spec):
        name, shape = spec[0], spec[1]
        dt = _NP2ONNX[np.dtype(spec[2])] if len(spec) > 2 else TensorProto.FLOAT
        return helper.make_tensor_value_info(name, dt, shape)

    g = helper.make_graph(nodes, "t", [vi(s) for s in inputs], [vi(s) for s in outputs],
                          initializer=[numpy_helper.from_array(np.asarray(v), name=k) for k, v in (inits or {}).items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    m = onnx.shape_inference.infer_shapes(m)
    inferred = {v.name: v for v in m.graph.value_info}
    for o in m.graph.output:
        if not o.type.tensor_type.HasField("shape") and o.name in inferred:
            o.CopyFrom(inferred[o.name])
    onnx.checker.check_model(m)
    return m


def ort_outputs(model, feeds):
    """Reference outputs: ONNX Runtime with graph optimizations disabled."""
    from xflow.runtime.session import make_session

    return make_session(model, level="disable").run(None, feeds)


def assert_signal(outputs, *, min_std: float = 1e-2) -> None:
    """Every output varies: floats have a relative spread of at least ``min_std``; integer/bool
    outputs hold at least two distinct values (unless they have a single element)."""
    for i, y in enumerate(outputs):
        y = np.asarray(y)
        if y.size <= 1:
            continue
        if y.dtype.kind == "f":
            assert np.all(np.isfinite(y)), f"output {i} has non-finite values"
            scale = float(np.abs(y).max())
            assert scale > 0 and float(y.std()) > min_std * scale, \
                f"output {i} carries no signal (std {y.std():.3g}, max {scale:.3g}): the test could not fail"
        else:
            assert len(np.unique(y)) > 1, f"output {i} is constant ({y.ravel()[:1]}): the test could not fail"


def assert_close(got, ref, *, rtol: float = 1e-4, atol: float = 1e-4) -> None:
    """Same shapes, dtypes and values (``atol`` relative to the reference's magnitude)."""
    assert len(got) == len(ref)
    for g, r in zip(got, ref):
        g, r = np.asarray(g), np.asarray(r)
        assert g.shape == r.shape, (g.shape, r.shape)
        assert g.dtype == r.dtype, (g.dtype, r.dtype)
        if r.dtype.kind == "f":
            scale = max(float(np.abs(r).max()), 1e-30)
            np.testing.assert_allclose(g, r, rtol=rtol, atol=atol * scale)
        else:
            np.testing.assert_array_equal(g, r)


def calibrate_(module, inputs, *, target_std: float = 1.0, rounds: int = 2):
    """Data-dependent init (LSUV-style): rescale every conv/linear weight, in execution order, so its
    output has standard deviation ``target_std`` on ``inputs``. Random-init CNNs otherwise shrink
    activations layer after layer until the logits equal the last bias (GoogLeNet: to 2e-12)."""
    import torch

    layers = [m for m in module.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    prev = torch.get_num_threads()
    torch.set_num_threads(1)  # on a loaded 2-core machine OpenMP barriers make 2 threads ~100x slower
    try:
        _calibrate(module, inputs, layers, target_std, rounds)
    finally:
        torch.set_num_threads(prev)
    return module


def _calibrate(module, inputs, layers, target_std, rounds):
    import torch

    with torch.no_grad():
        for _ in range(rounds):
            for layer in layers:
                box: dict[str, float] = {}

                def hook(_m, _i, o, box=box) -> None:  # returning a value would replace the output
                    box.setdefault("std", float(o.std()))

                h = layer.register_forward_hook(hook)
                module(*inputs)
                h.remove()
                std = box.get("std", 0.0)
                if std > 0:
                    layer.weight.mul_(target_std / std)
                    if layer.bias is not None:
                        layer.bias.mul_(target_std / std)
