"""Generated modules (serial, branch, hybrid; threads and torch.jit.fork) reproduce the model."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from xflow.parallel import from_fx
from xflow.parallel.api import compile_model, replay
from xflow.parallel.cost import analytic_costs, apply_costs
from xflow.parallel.models import InceptionToy, NasNetLike, export_onnx, torch_benchmark_model
from xflow.parallel.planner import PlanConfig


def _ref(path, x):
    import onnxruntime as ort

    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x.numpy()})[0]


def _exported(make, name):
    """``(model, input, onnx path)`` of a seeded model built by ``make()`` on a 1×3×32×32 input."""
    torch.manual_seed(0)
    m = make().eval()
    x = torch.randn(1, 3, 32, 32)
    return m, x, export_onnx(m, (x,), name)


@pytest.fixture(scope="module")
def toy():
    return _exported(lambda: InceptionToy(width=8, blocks=2), "test_toy")


@pytest.fixture(scope="module")
def nas():
    return _exported(lambda: NasNetLike(c=8, cells=3), "test_nas")


@pytest.mark.parametrize("backend", ["threads", "torchscript"])
@pytest.mark.parametrize("mode", ["serial", "branch", "hybrid"])
def test_generated_matches_ort_on_branchy_models(toy, nas, mode, backend):
    for m, x, path in (toy, nas):
        cfg = PlanConfig(workers=2, mode=mode, min_gain=0.0, sync_us=0.0, fork_us=0.0)
        res = compile_model(path, backend=backend, cost="analytic", config=cfg)
        if mode == "branch":
            assert res.summary()["parallel_stages"] >= 1
        model = res.load()
        y = model(x)
        np.testing.assert_allclose(y.numpy(), _ref(path, x), rtol=1e-4, atol=1e-5)
        with torch.no_grad():
            np.testing.assert_allclose(y.numpy(), m(x).numpy(), rtol=1e-4, atol=1e-4)
        model.close()


def test_cloning_and_cross_cluster_futures_are_correct(nas):
    """Force cross-cluster hand-overs (cells read two earlier cells) and cheap-node cloning."""
    m, x, path = nas
    cfg = PlanConfig(workers=3, mode="branch", min_gain=0.0, sync_us=20.0, fork_us=0.0, clone_max_us=100.0)
    for backend in ("threads", "torchscript"):
        res = compile_model(path, backend=backend, cost="analytic", config=cfg)
        assert res.plan.n_clones > 0
        assert "(clone)" in res.source
        np.testing.assert_allclose(res.load()(x).numpy(), _ref(path, x), rtol=1e-4, atol=1e-5)


def _calibrated_zoo(name):
    """(model, input, ONNX path) of a quick zoo model with LSUV-calibrated weights: with the default
    init GoogLeNet's logits equal its last bias to 2e-12 and any equivalence check passes."""
    from tests.runtime.backend_helpers import calibrate_

    m, (x,) = torch_benchmark_model(name, quick=True)
    calibrate_(m.eval(), (x,))
    return m, x, export_onnx(m, (x,), f"test_{name}_calibrated")


def _branch_plan(path):
    return compile_model(path, cost="analytic",
                         config=PlanConfig(workers=2, mode="branch", min_gain=0.0, fork_us=0.0))


@pytest.mark.parametrize("name", ["squeezenet1_1", "googlenet",
                                  pytest.param("inception_v3", marks=pytest.mark.slow),
                                  pytest.param("resnet50", marks=pytest.mark.slow)])
def test_zoo_models_match_ort(name):
    from tests.runtime.backend_helpers import assert_close, assert_signal

    m, x, path = _calibrated_zoo(name)
    ref = _ref(path, x)
    assert_signal([ref])
    res = _branch_plan(path)
    assert res.summary()["parallel_stages"] >= 1
    model = res.load()
    assert_close([model(x).numpy()], [ref], rtol=1e-3, atol=1e-4)
    model.close()


def test_negated_relu_mutant_of_the_parallel_code_fails(monkeypatch):
    """If every ReLU of GoogLeNet's generated parallel code computed relu(-x), the check must fail."""
    import re

    from tests.runtime.backend_helpers import assert_close
    from xflow.runtime import backend_ops

    m, x, path = _calibrated_zoo("googlenet")
    ref = _ref(path, x)
    real = backend_ops.onednn_activation
    monkeypatch.setattr(backend_ops, "onednn_activation",
                        lambda op, attrs, consts=None: None if op == "Relu" else real(op, attrs, consts))
    monkeypatch.setitem(backend_ops.ACTIVATIONS, "Relu", lambda v, a: f"torch.relu(-({v}))")
    res = _branch_plan(path)
    assert len(re.findall(r"relu_?\(-\(", res.source)) == 57 and res.summary()["parallel_stages"] >= 1
    model = res.load()
    got = model(x).numpy()
    model.close()
    with pytest.raises(AssertionError):
        assert_close([got], [ref], rtol=1e-3, atol=1e-4)


def test_written_module_is_standalone_and_record_replays(toy, tmp_path):
    m, x, path = toy
    res = compile_model(path, cost="analytic",
                        config=PlanConfig(mode="branch", min_gain=0.0, fork_us=0.0, sync_us=0.0))
    files = res.write(tmp_path / "gen_toy.py")
    src = files["module"].read_text()
    assert src.startswith('"""Generated by xflow.parallel')
    assert "def s0_c0(" in src and "def s0_c1(" in src  # one function per cluster (one whole-graph stage)
    np.save(tmp_path / "x.npy", x.numpy())
    code = ("import numpy as np, torch, gen_toy; m = gen_toy.Model(); "
            "y = m(torch.from_numpy(np.load('x.npy'))); np.save('y.npy', y.numpy()); m.close()")
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True, timeout=120)
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), _ref(path, x), rtol=1e-4, atol=1e-5)
    again = replay(files["record"], path)
    assert again.record["stages"] == res.record["stages"]
    assert [c.nodes for s in again.plan.stages for c in s.clusters] == \
        [c.nodes for s in res.plan.stages for c in s.clusters]


def test_fx_graph_analysis(toy):
    m, x, _ = toy
    g = from_fx(m, (x,))
    apply_costs(g, analytic_costs(g))
    from xflow.parallel.planner import make_plan

    plan = make_plan(g, PlanConfig(mode="branch", min_gain=0.0, fork_us=0.0, sync_us=0.0, clustering="regions"))
    assert g.source == "fx" and len(g) > 20
    assert sum(1 for s in plan.stages if s.kind == "parallel") == 2  # one per Inception block
    whole = make_plan(g, PlanConfig(mode="branch", min_gain=0.0, fork_us=0.0, sync_us=0.0))
    assert [s.kind for s in whole.stages] == ["parallel"]  # Ramiel: one whole-graph stage


def test_worker_errors_propagate_instead_of_hanging(nas):
    """A failing cluster must fail the call (futures carry the exception), never deadlock."""
    import threading

    m, x, path = nas
    cfg = PlanConfig(workers=3, mode="branch", min_gain=0.0, sync_us=20.0, fork_us=0.0)
    model = compile_model(path, cost="analytic", config=cfg).load()
    box = {}

    def call():
        try:
            model(torch.randn(1, 5, 32, 32))  # wrong channel count: every conv fails
        except Exception as exc:  # noqa: BLE001
            box["exc"] = exc

    t = threading.Thread(target=call, daemon=True)
    t.start()
    t.join(timeout=60)
    assert not t.is_alive(), "generated code hung after a worker error"
    assert isinstance(box.get("exc"), RuntimeError)
    np.testing.assert_allclose(model(x).numpy(), _ref(path, x), rtol=1e-4, atol=1e-5)  # still usable
    model.close()


def test_cuda_streams_module_is_generated_and_guarded(toy):
    """The CUDA-streams backend: one stream per cluster, events for hand-overs; without a GPU the
    module refuses to build with a clear message (it runs in benchmarks/parallel_cuda_streams.py)."""
    m, x, path = toy
    cfg = PlanConfig(workers=2, mode="branch", min_gain=0.0, sync_us=0.0, fork_us=0.0)
    res = compile_model(path, backend="cuda_streams", config=cfg)
    src = res.source
    assert res.graph.program.options.device == "cuda" and "_convolution_pointwise" not in src
    assert "torch.cuda.stream(self._streams[1])" in src and ".wait_event(" in src
    compile(src, "gen.py", "exec")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="needs a CUDA GPU"):
            res.load()


@pytest.mark.parametrize("backend", ["threads", "torchscript"])
def test_onednn_residual_conv_runs_on_every_backend(nas, backend):
    """NASNet-like cells end in Conv + residual Add: with every conv on oneDNN the fused
    ``Conv+Add`` is emitted through the op packet's ``binary`` schema. The explicit ``.binary``
    attribute did not script, so the torchscript backend failed at load (mutant: emit
    ``_convolution_pointwise.binary``)."""
    from tests.runtime.backend_helpers import assert_close, assert_signal
    from xflow.runtime.backend_lower import LowerOptions

    m, x, path = nas
    ref = _ref(path, x)
    assert_signal([ref])
    res = compile_model(path, mode="serial", backend=backend, cost="analytic",
                        lower=LowerOptions(onednn="on", onednn_min_flops=0))
    assert "'add'" in res.source and "_convolution_pointwise(" in res.source
    model = res.load()
    assert_close([model(x).numpy()], [ref], rtol=1e-3, atol=1e-4)
    model.close()


def test_onednn_graph_lowering_is_fused_and_matches_ort():
    """``onednn="graph"``: plain aten ops, frozen TorchScript kernels, oneDNN Graph partitions that
    actually form (mutant: the fuser not enabled leaves no ``oneDNNFusionGroup`` in the executed
    graph), on a calibrated GoogLeNet, serial and branch-parallel on the torchscript backend."""
    import torch

    from tests.runtime.backend_helpers import assert_close, assert_signal
    from xflow.runtime.backend_lower import LowerOptions

    m, x, path = _calibrated_zoo("googlenet")
    ref = _ref(path, x)
    assert_signal([ref])
    res = compile_model(path, mode="serial", backend="threads", cost="analytic", lower=LowerOptions(onednn="graph"))
    assert "_convolution_pointwise" not in res.source and "relu_(" not in res.source and ".add_(" not in res.source
    model = res.load()
    for _ in range(3):  # the profiling executor fuses on the second call
        got = model(x).numpy()
    assert_close([got], [ref], rtol=1e-3, atol=1e-4)
    assert "oneDNNFusionGroup" in str(torch.jit.last_executed_optimized_graph())
    model.close()
    par = compile_model(path, backend="torchscript", lower=LowerOptions(onednn="graph"), cost="analytic",
                        config=PlanConfig(workers=2, mode="branch", min_gain=0.0, fork_us=0.0))
    assert par.summary()["parallel_stages"] >= 1
    model = par.load()
    for _ in range(3):
        got = model(x).numpy()
    assert_close([got], [ref], rtol=1e-3, atol=1e-4)
    model.close()


def test_onednn_graph_with_threaded_parallel_stages_is_refused(nas):
    """The threads backend's clusters hand over through Python futures, which TorchScript cannot
    compile: a clear error naming the fix instead of a TorchScript traceback."""
    from xflow.errors import UnsupportedLowering
    from xflow.runtime.backend_lower import LowerOptions

    _, _, path = nas
    with pytest.raises(UnsupportedLowering, match="backend='torchscript'"):
        compile_model(path, backend="threads", lower=LowerOptions(onednn="graph"), cost="analytic",
                      config=PlanConfig(workers=2, mode="branch", min_gain=0.0, fork_us=0.0))


def test_onednn_graph_module_leaves_other_torchscript_modules_alone(nas):
    """The fuser switch is process-wide: a graph-lowered module must turn it on only for its own
    calls. Left on (the first version), the next plain TorchScript module was re-optimized into
    oneDNN partitions and its ``torch.cat`` failed on their opaque outputs (mutant: enable it
    globally at load)."""
    import torch

    from xflow.runtime.backend_lower import LowerOptions

    m, x, path = nas
    ref = _ref(path, x)
    graph = compile_model(path, mode="serial", backend="torchscript", cost="analytic",
                          lower=LowerOptions(onednn="graph")).load()
    for _ in range(3):
        graph(x)
    assert "oneDNNFusionGroup" in str(torch.jit.last_executed_optimized_graph())
    assert not torch.jit.onednn_fusion_enabled()
    plain = compile_model(path, mode="branch", backend="torchscript", cost="analytic",
                          config=PlanConfig(workers=2, mode="branch", min_gain=0.0, fork_us=0.0)).load()
    for _ in range(3):
        got = plain(x).numpy()
    assert "oneDNNFusionGroup" not in str(torch.jit.last_executed_optimized_graph())
    np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-4)
    graph.close()
    plain.close()
