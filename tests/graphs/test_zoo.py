"""Model zoo: exports match torch, are cached by content hash, and bad names fail cleanly."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from xflow.errors import ExportError, UnknownName
from xflow.graphs import zoo
from xflow.runtime import make_session

TINY = {
    "squeezenet1_1": dict(image_size=48, num_classes=10),
    "bert_encoder": dict(layers=1, hidden=32, heads=2, ffn=64, seq=8),
    "nasrnn": dict(hidden=16, seq=3),
    "vit_encoder": dict(image_size=32, patch=8, hidden=32, heads=4, mlp=64, layers=1, classes=10),
    "bert_base": dict(layers=1, hidden=48, heads=12, ffn=96, seq=8),
}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XFLOW_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_registry_lists_every_agreed_model():
    names = zoo.list_models()
    for n in ["squeezenet1_1", "resnet18", "resnet50", "resnext50_32x4d", "googlenet", "inception_v3",
              "mobilenet_v3_small", "vgg16", "bert_encoder", "nasrnn", "vit_encoder", "bert_base"]:
        assert n in names
    assert zoo.describe("inception_v3")["defaults"]["image_size"] == 299


def test_one_registry_with_tags():
    """algsel and parallel take their models from the zoo, by tag (one registry)."""
    from xflow.algsel.models import MODEL_NAMES
    from xflow.parallel.models import BENCH_MODELS

    assert set(MODEL_NAMES) == set(zoo.list_models(tag="algsel")) == {"vgg16", "resnet50", "squeezenet1_1",
                                                                      "alexnet", "tiny"}
    assert set(BENCH_MODELS) <= set(zoo.list_models(tag="parallel"))
    assert "inception_v3" in zoo.list_models(tag="rl") and "tiny" not in zoo.list_models(tag="rewrites")
    assert zoo.describe("tiny")["tags"] == ["algsel"]
    with pytest.raises(UnknownName, match="parallel"):
        zoo.list_models(tag="nope")


def test_merged_builders_keep_their_weights():
    """The toy nets moved into the zoo build the same weights as before (seeded build)."""
    from xflow.algsel import build_model
    from xflow.graphs.zoo_nets import InceptionToy, TinyNet

    torch.manual_seed(0)
    ref = TinyNet().eval()
    assert all(torch.equal(a, b) for a, b in zip(build_model("tiny").state_dict().values(),
                                                   ref.state_dict().values()))
    torch.manual_seed(0)
    ref = InceptionToy(width=16, blocks=2)
    got = zoo.torch_model("inception_toy")
    assert all(torch.equal(a, b) for a, b in zip(got.state_dict().values(), ref.state_dict().values()))
    assert build_model("squeezenet").__class__.__name__ == "SqueezeNet"  # alias kept


@pytest.mark.parametrize("name", ["squeezenet1_1", "bert_encoder", "nasrnn", "vit_encoder", "bert_base"])
def test_export_matches_torch(cache, name):
    cfg = TINY[name]
    path = zoo.export(name, batch=2, **cfg)
    assert path.parent == cache / "zoo" and path.suffix == ".onnx"
    model = onnx.load(str(path))
    assert model.opset_import[0].version == zoo.OPSET
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims[0] == 2 and all(d > 0 for d in dims)  # static shapes, batch 2
    assert len(model.graph.initializer) > 0
    # independent check: ORT on a fresh input vs the torch model
    x = zoo.example_input(name, batch=2, **cfg, seed=7)
    ref = zoo.torch_model(name, **cfg)(*x).detach().numpy()
    out = make_session(path, level="disable").run(None, {"input": x[0].numpy()})[0]
    assert ref.var() > 1e-6  # outputs that do not vanish
    np.testing.assert_allclose(out, ref, rtol=1e-3, atol=1e-4 * max(1.0, np.abs(ref).max()))
    opt = make_session(path, level="all").run(None, {"input": x[0].numpy()})[0]  # ORT's optimizer too
    np.testing.assert_allclose(opt, ref, rtol=1e-3, atol=1e-4 * max(1.0, np.abs(ref).max()))


def test_xrlflow_evaluation_models_have_their_shapes():
    """ViT-Base and BERT-base widths (2 layers each), exported from the real torch modules."""
    from xflow.graphs.zoo_nets import ViTEncoder

    vit, bert = zoo.describe("vit_encoder")["defaults"], zoo.describe("bert_base")["defaults"]
    assert (vit["hidden"], vit["heads"], vit["mlp"], vit["layers"]) == (768, 12, 3072, 2)
    assert (vit["image_size"] // vit["patch"]) ** 2 == 64  # X-RLflow's vit_base: 64 patches
    assert (bert["hidden"], bert["heads"], bert["ffn"], bert["seq"], bert["layers"]) == (768, 12, 3072, 128, 2)
    assert {"rl", "rewrites"} <= set(zoo.describe("vit_encoder")["tags"]) & set(zoo.describe("bert_base")["tags"])
    # the Pad-based class token equals ViT's concat(cls, patches) + pos
    torch.manual_seed(0)
    m = ViTEncoder(image_size=32, patch=8, hidden=16, heads=2, mlp=32, layers=1, classes=5).eval()
    x = torch.randn(2, 3, 32, 32)
    t = m.embed(x).reshape(2, 16, 16).transpose(1, 2)
    t = torch.cat([m.cls.expand(2, 1, 16), t], 1) + m.pos
    for layer in m.layers:
        t = layer(t)
    torch.testing.assert_close(m(x), m.head(m.norm(t)[:, 0]))


def test_second_export_is_a_cache_hit(cache, monkeypatch):
    cfg = TINY["nasrnn"]
    p1 = zoo.export("nasrnn", **cfg)
    monkeypatch.setattr(zoo, "_torch_export", lambda *a, **k: pytest.fail("re-exported a cached model"))
    assert zoo.export("nasrnn", **cfg) == p1
    assert zoo.load("nasrnn", **cfg).graph.node  # load reuses the cache too
    assert zoo.cache_key("nasrnn", **cfg) != zoo.cache_key("nasrnn", **{**cfg, "seq": 4})
    assert zoo.cache_key("nasrnn", 1, **cfg) != zoo.cache_key("nasrnn", 2, **cfg)


def test_weights_are_deterministic():
    a = zoo.torch_model("nasrnn", **TINY["nasrnn"])
    b = zoo.torch_model("nasrnn", **TINY["nasrnn"])
    c = zoo.torch_model("nasrnn", **TINY["nasrnn"], seed=1)
    wa, wb, wc = (m.cell.wx[0].weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


def test_mismatch_vs_torch_raises_and_caches_nothing(cache, monkeypatch):
    monkeypatch.setattr(zoo, "_CHECK_RTOL", -1.0)  # any difference (even 0) now counts as a mismatch
    with pytest.raises(ExportError, match="disagrees with torch"):
        zoo.export("nasrnn", **TINY["nasrnn"])
    assert not list((cache / "zoo").glob("*.onnx"))


def test_unknown_model_and_config_key():
    with pytest.raises(UnknownName, match="available: .*resnet18"):
        zoo.export("resnet9000")
    with pytest.raises(UnknownName, match="valid keys"):
        zoo.resolve_config("bert_encoder", depth=3)
    with pytest.raises(ExportError, match="integer"):
        zoo.resolve_config("bert_encoder", seq="long")


@pytest.mark.slow
def test_dynamo_exporter_fallback(cache, monkeypatch):
    orig = torch.onnx.export

    def legacy_broken(*args, **kwargs):
        if kwargs.get("dynamo") is False:
            raise RuntimeError("legacy exporter disabled for this test")
        return orig(*args, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", legacy_broken)
    path = zoo.export("nasrnn", **TINY["nasrnn"])
    assert '"exporter": "dynamo"' in path.with_suffix(".json").read_text()
    assert onnx.load(str(path)).opset_import[0].version == zoo.OPSET


def test_resnext_toy_exports_grouped_bottlenecks_that_match_torch(cache):
    """The RL training model for grouped-conv rewrites: its exported graph keeps the grouped 3x3
    convs (one per block, ``group`` 8 here), matches torch, and offers ``merge_group_convs`` a site
    per grouped conv. Kills: a block built with ``groups=1`` (no site), a lost residual (no Add)."""
    from xflow.rewrites import get_rule

    def attrs(n):
        return {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}

    cfg = dict(image_size=32, stem=16, width=32, groups=8, blocks=2, classes=10)
    path = zoo.export("resnext_toy", batch=1, **cfg)
    model = onnx.load(str(path))
    groups = [attrs(n).get("group", 1) for n in model.graph.node if n.op_type == "Conv"]
    assert sorted(g for g in groups if g > 1) == [8, 8]
    assert [n.op_type for n in model.graph.node].count("Add") == 2  # one residual add per block
    assert len(get_rule("merge_group_convs").match(model)) == 2
    x = zoo.example_input("resnext_toy", batch=1, **cfg, seed=3)
    ref = zoo.torch_model("resnext_toy", **cfg)(*x).detach().numpy()
    out = make_session(path, level="disable").run(None, {model.graph.input[0].name: x[0].numpy()})[0]
    assert ref.var() > 1e-6
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)
