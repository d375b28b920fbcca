"""The sweep runner: caching/resume, failure recording, Ray and local backends."""
from __future__ import annotations

import pytest

from xflow.sweep import config_hash, example_task, grid, run_sweep


def test_grid_and_hash_are_stable():
    cfgs = grid(x=[1, 2], y=["a", "b"])
    assert len(cfgs) == 4
    assert config_hash(example_task, {"x": 1}) == config_hash(example_task, {"x": 1})
    assert config_hash(example_task, {"x": 1}) != config_hash(example_task, {"x": 2})


@pytest.mark.parametrize("backend", ["ray", "local"])
def test_sweep_resumes_without_rerunning(tmp_path, backend):
    cfgs = grid(x=[1, 2, 3, 4])
    first = run_sweep(example_task, cfgs, name="t", backend=backend, cache=tmp_path, progress=False)
    assert (first.n_new, first.n_cached, first.n_failed) == (4, 0, 0)
    assert sorted(r["value"] for r in first.records) == [1.0, 4.0, 9.0, 16.0]
    second = run_sweep(example_task, cfgs, name="t", backend=backend, cache=tmp_path, progress=False)
    assert (second.n_new, second.n_cached) == (0, 4)
    assert sorted(r["value"] for r in second.records) == [1.0, 4.0, 9.0, 16.0]


def test_failing_config_is_recorded_not_fatal(tmp_path):
    cfgs = [{"x": 1}, {"x": 2, "fail": True}]
    res = run_sweep(example_task, cfgs, name="f", backend="ray", cache=tmp_path, progress=False)
    assert res.n_failed == 1 and len(res.records) == 1
    (tb,) = res.failures.values()
    assert "asked to fail for x=2" in tb and "Traceback" in tb
