"""CLI: `xflow zoo list|export`, `xflow latency`, `xflow render` with --json and clean errors."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from xflow.cli import main


def _json(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    assert rc == 0, err
    return json.loads(out)


def test_zoo_list_json(capsys):
    data = _json(capsys, "zoo", "list", "--json")
    names = [m["name"] for m in data["models"]]
    assert "resnet18" in names and "bert_encoder" in names


@pytest.fixture
def tiny_onnx(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XFLOW_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "m.onnx"
    data = _json(capsys, "zoo", "export", "nasrnn", "--batch", "2", "--cfg", "hidden=16", "--cfg", "seq=2",
                 "-o", str(out), "--json")
    assert data["path"] == str(out) and out.stat().st_size == data["bytes"]
    assert data["config"]["hidden"] == 16
    return out


def test_latency_json(tiny_onnx, capsys):
    data = _json(capsys, "latency", str(tiny_onnx), "--level", "disable", "--level", "all",
                 "--repeats", "3", "--warmup", "1", "--json")
    assert set(data["levels"]) == {"disable", "all"}
    s = data["levels"]["all"]
    assert s["min_ms"] <= s["median_ms"] <= s["max_ms"] and s["repeats"] == 3


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz dot missing")
def test_render_json(tiny_onnx, tmp_path, capsys):
    svg = tmp_path / "m.svg"
    data = _json(capsys, "render", str(tiny_onnx), "-o", str(svg), "--json")
    assert svg.exists() and svg.read_text().lstrip().startswith(("<?xml", "<svg")) and data["nodes"] > 0


@pytest.mark.parametrize("content", [None, b"", "random"])
def test_bad_model_file_is_a_clean_error(tmp_path, capsys, content):
    p = tmp_path / "bad.onnx"
    if content == "random":
        p.write_bytes(np.random.default_rng(0).bytes(4096))
    elif content is not None:
        p.write_bytes(content)
    for extra in ([], ["--no-validate"]):
        rc = main(["latency", str(p), *extra])
        out, err = capsys.readouterr()
        assert rc == 2 and "Traceback" not in err and "xflow latency: error:" in err


def test_unknown_zoo_model_is_a_clean_error(capsys):
    rc = main(["zoo", "export", "nope", "-o", "x.onnx"])
    _, err = capsys.readouterr()
    assert rc == 2 and "unknown zoo model" in err


def test_latency_levels_are_compared_with_interval_and_verdict(tiny_onnx, capsys):
    data = _json(capsys, "latency", str(tiny_onnx), "--level", "disable", "--level", "all",
                 "--repeats", "4", "--warmup", "1", "--json")
    c = data["comparisons"]["all"]
    assert data["baseline"] == "disable"
    assert c["ci"][0] <= c["ratio"] <= c["ci"][1] and c["verdict"] in ("faster", "slower", "same")
    assert "noise_floor" in data and data["conditions"]["rounds"] == 4


def test_compare_identical_copy_agrees_and_reports_ratio_ci_verdict(tiny_onnx, tmp_path, capsys):
    copy = tmp_path / "copy.onnx"
    copy.write_bytes(tiny_onnx.read_bytes())
    data = _json(capsys, "compare", str(tiny_onnx), str(copy), "--repeats", "5", "--warmup", "1", "--json")
    assert data["same_outputs"] is True and data["max_abs_err"] == 0.0
    assert data["ci"][0] <= data["ratio"] <= data["ci"][1]
    assert data["verdict"] in ("faster", "slower", "same") and data["noise_floor"] >= 0
    json.dumps(data, allow_nan=False)


def test_compare_reports_different_outputs(tiny_onnx, tmp_path, capsys):
    other = tmp_path / "other.onnx"
    _json(capsys, "zoo", "export", "nasrnn", "--batch", "2", "--cfg", "hidden=16", "--cfg", "seq=2",
          "--cfg", "seed=1", "-o", str(other), "--json")
    data = _json(capsys, "compare", str(tiny_onnx), str(other), "--repeats", "3", "--warmup", "0", "--json")
    assert data["same_outputs"] is False and data["output_mismatch"]


def test_compare_rejects_one_round(tiny_onnx, capsys):
    rc = main(["compare", str(tiny_onnx), str(tiny_onnx), "--repeats", "1"])
    _, err = capsys.readouterr()
    assert rc == 2 and "--repeats must be >= 2" in err
