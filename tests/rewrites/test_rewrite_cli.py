import json

import onnx

from xflow.cli import main
from xflow.graphs.builders import make_inception_like


def test_cli_list_apply_search(tmp_path, capsys):
    src = tmp_path / "inc.onnx"
    onnx.save(make_inception_like(), src)
    assert main(["rewrite", "list", "--json"]) == 0
    names = [r["name"] for r in json.loads(capsys.readouterr().out)["rules"]]
    assert "merge_sibling_convs" in names
    out = tmp_path / "merged.onnx"
    assert main(["rewrite", "apply", str(src), "--rule", "merge_sibling_convs", "-o", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["nodes_after"] < data["nodes_before"] and out.exists()
    out2 = tmp_path / "best.onnx"
    assert main(["rewrite", "search", str(src), "--method", "greedy", "--budget", "3", "--repeats", "3",
                 "-o", str(out2), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["cost"] < data["initial_cost"] and data["kept"] in ("original", "rewritten") and out2.exists()


def test_cli_apply_reports_non_match(tmp_path, capsys):
    src = tmp_path / "inc.onnx"
    onnx.save(make_inception_like(), src)
    assert main(["rewrite", "apply", str(src), "--rule", "fuse_transposes", "-o", str(tmp_path / "o.onnx")]) == 2
    assert "does not match" in capsys.readouterr().err
    assert main(["rewrite", "apply", str(src), "--rule", "bogus", "-o", str(tmp_path / "o.onnx")]) == 2


def test_cli_optimize_writes_verified_output(tmp_path, capsys):
    src, out = tmp_path / "inc.onnx", tmp_path / "opt.onnx"
    onnx.save(make_inception_like(), src)
    assert main(["rewrite", "optimize", str(src), "-o", str(out), "--search", "greedy", "--budget-s", "10",
                 "--repeats", "3"]) == 0
    text = capsys.readouterr().out
    assert "1. " in text and out.exists()
    assert main(["rewrite", "optimize", str(src), "-o", str(out), "--search", "rl"]) == 2
    assert "xflow rl" in capsys.readouterr().err


def test_cli_optimize_rl_uses_checkpoint(tmp_path, capsys):
    from xflow.envs.features import EDGE_DIM, NODE_DIM
    from xflow.nn import GraphActorCritic

    src, out = tmp_path / "inc.onnx", tmp_path / "opt.onnx"
    onnx.save(make_inception_like(), src)
    assert main(["rewrite", "optimize", str(src), "-o", str(out), "--search", "rl"]) == 2
    assert "--checkpoint" in capsys.readouterr().err
    ckpt = GraphActorCritic(17, NODE_DIM, EDGE_DIM, 16, 1).save(
        tmp_path / "agent.pt", args={"horizon": 3, "cost_model": "nominal"})
    assert main(["rewrite", "optimize", str(src), "-o", str(out), "--search", "rl", "--checkpoint", str(ckpt),
                 "--repeats", "3", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["method"] == "rl" and data["n_expanded"] <= 4 and out.exists()
    assert data["cost"] <= data["initial_cost"]
    assert main(["rewrite", "optimize", str(src), "-o", str(out), "--search", "rl",
                 "--checkpoint", str(tmp_path / "missing.pt")]) == 2
