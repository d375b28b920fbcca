"""Dataset lookup (with a clear error when missing), splits and synthetic graphs."""
import pytest
import torch

from xflow import paths
from xflow.errors import DatasetNotFound, UnknownName
from xflow.sparsify import datasets
from xflow.sparsify.synthetic import make_synthetic, powerlaw_graph, sbm_graph


def test_missing_dataset_names_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("XFLOW_DATA", str(tmp_path / "nodata"))
    monkeypatch.setenv("XFLOW_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(paths, "data_dirs", lambda: [tmp_path / "nodata"])
    with pytest.raises(DatasetNotFound) as err:
        datasets.load_planetoid("cora", download=False)
    msg = str(err.value)
    assert "ind.cora.x" in msg and str(tmp_path / "nodata" / "Planetoid" / "Cora" / "raw") in msg


def test_failed_download_becomes_dataset_not_found(tmp_path, monkeypatch):
    import torch_geometric.datasets.planetoid as planetoid

    monkeypatch.setenv("XFLOW_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(paths, "data_dirs", lambda: [tmp_path / "nodata"])

    def no_network(*a, **k):
        raise OSError("network unreachable")

    monkeypatch.setattr(planetoid.Planetoid, "download", no_network)
    with pytest.raises(DatasetNotFound, match="network unreachable"):
        datasets.load_planetoid("citeseer", download=True)


def test_unknown_dataset_and_split():
    with pytest.raises(UnknownName):
        datasets.load_planetoid("pubmedx")
    with pytest.raises(UnknownName):
        datasets.load_planetoid("cora", split="weird")


@pytest.mark.skipif(datasets.find_planetoid_raw("cora") is None, reason="Cora raw files not available")
def test_load_cora_public_and_random_split():
    data = datasets.load_planetoid("cora")
    assert data.num_nodes == 2708 and data.edge_index.shape[1] == 10556
    assert int(data.train_mask.sum()) == 140 and int(data.test_mask.sum()) == 1000
    r0 = datasets.load_planetoid("cora", split="random", seed=0)
    r0b = datasets.load_planetoid("cora", split="random", seed=0)
    r1 = datasets.load_planetoid("cora", split="random", seed=1)
    assert int(r0.train_mask.sum()) == 1354 and int(r0.val_mask.sum()) == 677
    assert torch.equal(r0.train_mask, r0b.train_mask) and not torch.equal(r0.train_mask, r1.train_mask)
    assert not bool((r0.train_mask & r0.test_mask).any())


@pytest.mark.skipif(datasets.find_planetoid_raw("cora") is None, reason="Cora raw files not available")
def test_dangling_cached_raw_links_are_relinked(tmp_path, monkeypatch):
    # The cache outlives checkouts: links left by a deleted checkout dangle (this broke CI once).
    monkeypatch.setenv("XFLOW_CACHE", str(tmp_path / "cache"))
    raw = paths.cache_dir("datasets", "Planetoid") / "Cora" / "raw"
    raw.mkdir(parents=True)
    for f in datasets.raw_file_names("cora"):
        (raw / f).symlink_to(tmp_path / "gone" / f)
    data = datasets.load_planetoid("cora")
    assert data.num_nodes == 2708 and data.edge_index.shape[1] == 10556
    src = datasets.find_planetoid_raw("cora")
    for f in datasets.raw_file_names("cora"):
        assert (raw / f).exists() and (raw / f).resolve() == (src / f).resolve()
    assert not list(raw.glob(".*.tmp"))


def test_random_split_partitions_nodes():
    data = sbm_graph(100, 4, seed=0)
    s = datasets.random_split(data, seed=3)
    total = s.train_mask.int() + s.val_mask.int() + s.test_mask.int()
    assert bool((total == 1).all()) and int(s.train_mask.sum()) == 50
    with pytest.raises(ValueError):
        datasets.random_split(data, fractions=(0.5, 0.5, 0.5))


@pytest.mark.parametrize("gen", [sbm_graph, powerlaw_graph])
def test_synthetic_graphs_are_symmetric_simple_and_seeded(gen):
    a = gen(500, 8, num_classes=4, num_features=6, seed=0)
    b = gen(500, 8, num_classes=4, num_features=6, seed=0)
    assert torch.equal(a.edge_index, b.edge_index)
    ei = a.edge_index
    assert not bool((ei[0] == ei[1]).any())
    fwd = set(map(tuple, ei.t().tolist()))
    assert all((v, u) in fwd for u, v in fwd)
    assert 500 * 4 < ei.shape[1] <= 500 * 8
    assert a.x.shape == (500, 6) and int(a.y.max()) == 3


def test_sbm_is_homophilous_and_powerlaw_is_skewed():
    s = sbm_graph(2000, 10, num_classes=4, p_in=0.9, seed=0)
    same = (s.y[s.edge_index[0]] == s.y[s.edge_index[1]]).float().mean()
    assert same > 0.8
    p = powerlaw_graph(2000, 10, seed=0)
    deg = torch.bincount(p.edge_index[0], minlength=2000).float()
    assert deg.max() > 10 * deg.median()
    with pytest.raises(UnknownName):
        make_synthetic("ring", 10)


def _write_ogb(root, n=6, drop=None):
    import gzip

    files = {
        "raw/edge.csv.gz": "0,1\n1,2\n2,3\n3,4\n4,0\n",  # node 5 isolated
        "raw/node-feat.csv.gz": "".join(f"{i}.0,{-i}.5\n" for i in range(n)),
        "raw/node-label.csv.gz": "".join(f"{i % 2}\n" for i in range(n)),
        "split/random/train.csv.gz": "0\n1\n5\n", "split/random/valid.csv.gz": "2\n",
        "split/random/test.csv.gz": "3\n4\n",
    }
    for rel, text in files.items():
        if rel == drop:
            continue
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(p, "wt") as f:
            f.write(text)


def test_ogb_folder_loads_symmetrised_without_isolated_nodes(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "data_dirs", lambda: [tmp_path])
    _write_ogb(tmp_path / "ogbn_toy")
    data = datasets.load_dataset("ogbn-toy")
    assert data.num_nodes == 5 and data.edge_index.shape[1] == 10  # 5 undirected edges, both ways
    assert torch.equal(data.x[:, 0], torch.arange(5, dtype=torch.float32))  # isolated node 5 dropped
    assert int(data.train_mask.sum()) == 2 and int(data.test_mask.sum()) == 2 and int(data.val_mask.sum()) == 1


def test_missing_ogb_files_are_named(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "data_dirs", lambda: [tmp_path])
    with pytest.raises(DatasetNotFound, match="raw/node-feat.csv.gz"):
        datasets.load_dataset("ogbn-arxiv")
    _write_ogb(tmp_path / "ogbn_toy", drop="raw/node-label.csv.gz")
    with pytest.raises(DatasetNotFound, match=r"lacks raw/node-label\.csv\.gz"):
        datasets.load_dataset("ogbn-toy")


def test_missing_pubmed_is_one_clear_cli_line(tmp_path, monkeypatch, capsys):
    from xflow.cli import main

    monkeypatch.setenv("XFLOW_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(paths, "data_dirs", lambda: [tmp_path / "nodata"])
    monkeypatch.setattr(datasets, "load_planetoid", lambda *a, **k: (_ for _ in ()).throw(
        DatasetNotFound(datasets._missing_message("PubMed", "download disabled"))))
    rc = main(["sparsify", "run", "--dataset", "pubmed", "--epochs", "1"])
    err = capsys.readouterr().err
    first = err.strip().splitlines()[0]
    assert rc != 0 and "ind.pubmed.x" in first and "PubMed/raw" in first and "Traceback" not in err
