"""precompute: cache hits and misses, file keys, batching, subsets, lists, one large graph, broken
cache files, errors, and the DataModule's ``pe_transforms``."""
from __future__ import annotations

import warnings

import hydra
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from torch_geometric.data import Data, InMemoryDataset
from torch_geometric.loader import DataLoader

from gnnlab.data import DataModule
from gnnlab.transforms import (
    FastRP,
    LaplacianEigenpairs,
    PrecomputedDataset,
    RandomWalkSE,
    dataset_fingerprint,
    precompute,
)
from tests.transforms.graphs import random_edges


class ListDataset(InMemoryDataset):
    """An in-memory dataset built from a list of graphs, without files."""

    def __init__(self, graphs, transform=None):
        super().__init__(None, transform=transform)
        self.data, self.slices = self.collate(graphs)


class RootedDataset(InMemoryDataset):
    """A dataset with a root folder, so that its cache goes to ``processed/pe`` by default."""

    def __init__(self, root, graphs):
        self._graphs = graphs
        super().__init__(str(root))
        self.load(self.processed_paths[0])

    @property
    def processed_file_names(self):
        return ["graphs.pt"]

    def process(self):
        self.save(self._graphs, self.processed_paths[0])


class CountingRWSE(RandomWalkSE):
    """RWSE that counts the graphs it processes."""

    def __init__(self, k):
        super().__init__(k)
        self.calls = 0

    def forward(self, data):
        self.calls += 1
        return super().forward(data)


def _graphs(count: int = 12, seed: int = 0) -> list[Data]:
    rng = np.random.default_rng(seed)
    out = []
    for gid in range(count):
        sizes = [int(s) for s in rng.integers(3, 15, size=int(rng.integers(1, 3)))]
        edge_index, n = random_edges(sizes, p=0.3, seed=seed * 1000 + gid, isolated=int(gid % 3 == 0))
        out.append(Data(x=torch.randn(n, 4), edge_index=edge_index, y=torch.tensor([gid]), num_nodes=n))
    return out


def _direct(graphs, transforms):
    """Apply the transforms graph by graph: the reference for what precompute stores."""
    out = []
    for g in graphs:
        for t in transforms:
            g = t(g)
        out.append(g)
    return out


def test_cache_hit_skips_the_work(tmp_path):
    dataset = ListDataset(_graphs())
    counting = CountingRWSE(4)
    first = precompute(dataset, [counting, LaplacianEigenpairs(3)], cache_dir=tmp_path)
    assert counting.calls == len(dataset)
    assert isinstance(first, PrecomputedDataset) and first.cache_path.parent == tmp_path
    assert len(list(tmp_path.iterdir())) == 1

    counting.calls = 0
    second = precompute(dataset, [counting, LaplacianEigenpairs(3)], cache_dir=tmp_path)
    assert counting.calls == 0 and second.cache_path == first.cache_path
    for a, b in zip(first, second):
        assert torch.equal(a.rwse, b.rwse)
        assert torch.equal(a.lappe_vec.nan_to_num(7.0), b.lappe_vec.nan_to_num(7.0))
        assert torch.equal(a.x, b.x) and torch.equal(a.edge_index, b.edge_index)


def test_other_parameters_or_data_use_another_file(tmp_path):
    dataset = ListDataset(_graphs())
    paths = {
        precompute(dataset, [RandomWalkSE(4)], cache_dir=tmp_path).cache_path,
        precompute(dataset, [RandomWalkSE(5)], cache_dir=tmp_path).cache_path,
        precompute(dataset, [RandomWalkSE(4), FastRP(4)], cache_dir=tmp_path).cache_path,
        precompute(ListDataset(_graphs(seed=1)), [RandomWalkSE(4)], cache_dir=tmp_path).cache_path,
        precompute(dataset[torch.arange(5)], [RandomWalkSE(4)], cache_dir=tmp_path).cache_path,
    }
    assert len(paths) == 5 and len(list(tmp_path.iterdir())) == 5
    assert dataset_fingerprint(dataset) != dataset_fingerprint(dataset[torch.arange(5)])
    # Same graphs in another order: same totals, another file, and the order is kept.
    forward = precompute(dataset[torch.tensor([3, 4])], [RandomWalkSE(4)], cache_dir=tmp_path)
    backward = precompute(dataset[torch.tensor([4, 3])], [RandomWalkSE(4)], cache_dir=tmp_path)
    assert forward.cache_path != backward.cache_path
    assert [int(g.y) for g in backward] == [4, 3]


def test_stored_values_and_batching(tmp_path):
    graphs = _graphs()
    transforms = [LaplacianEigenpairs(4), RandomWalkSE(5), FastRP(6)]
    dataset = precompute(ListDataset(graphs), transforms, cache_dir=tmp_path)
    expected = _direct(graphs, transforms)
    batch = next(iter(DataLoader(dataset, batch_size=5)))
    num_nodes = sum(g.num_nodes for g in graphs[:5])
    assert batch.num_graphs == 5
    assert batch.lappe_vec.shape == batch.lappe_val.shape == (num_nodes, 4)
    assert batch.rwse.shape == (num_nodes, 5) and batch.fastrp.shape == (num_nodes, 6)
    for attr in ("lappe_vec", "lappe_val", "rwse", "fastrp"):
        cat = torch.cat([getattr(g, attr) for g in expected[:5]])
        assert torch.equal(getattr(batch, attr).nan_to_num(9.0), cat.nan_to_num(9.0)), attr
    assert torch.equal(batch.batch, torch.repeat_interleave(torch.tensor([g.num_nodes for g in graphs[:5]])))


def test_subset_keeps_order_and_access_transform(tmp_path):
    graphs = _graphs()

    def mark(data):
        data = data.clone()
        data.marked = torch.ones(1)
        return data

    base = ListDataset(graphs, transform=mark)
    subset = base[torch.tensor([7, 2, 9])]
    out = precompute(subset, RandomWalkSE(3), cache_dir=tmp_path)
    assert [int(g.y) for g in out] == [7, 2, 9]
    assert all(hasattr(g, "marked") for g in out)  # the access-time transform still applies
    for g, ref in zip(out, _direct([graphs[i] for i in (7, 2, 9)], [RandomWalkSE(3)])):
        assert torch.equal(g.rwse, ref.rwse)


def test_plain_list_and_single_large_graph(tmp_path):
    graphs = _graphs(5)
    out = precompute(graphs, {"rw": RandomWalkSE(3), "more": [FastRP(4)]}, cache_dir=tmp_path)
    assert len(out) == 5 and [int(g.y) for g in out] == list(range(5))
    assert torch.equal(out[3].rwse, RandomWalkSE(3)(graphs[3]).rwse)

    edge_index, n = random_edges([1500, 900], p=0.003, seed=3, isolated=10)
    graph = Data(x=torch.randn(n, 2), edge_index=edge_index, train_mask=torch.rand(n) < 0.5)
    single = precompute(ListDataset([graph]), [LaplacianEigenpairs(4), RandomWalkSE(4)], cache_dir=tmp_path)
    assert len(single) == 1
    g = single[0]
    assert g.lappe_vec.shape == (n, 4) and g.rwse.shape == (n, 4) and torch.equal(g.train_mask, graph.train_mask)
    batch = next(iter(DataLoader(single, batch_size=1)))
    assert batch.rwse.shape == (n, 4)
    again = precompute(ListDataset([graph]), [LaplacianEigenpairs(4), RandomWalkSE(4)], cache_dir=tmp_path)
    assert again.cache_path == single.cache_path and torch.equal(again[0].rwse, g.rwse)


def test_default_cache_dir_and_no_root(tmp_path):
    graphs = _graphs(4)
    dataset = RootedDataset(tmp_path / "ds", graphs)
    out = precompute(dataset, RandomWalkSE(3))
    assert out.cache_path.parent == tmp_path / "ds" / "processed" / "pe" and out.cache_path.exists()
    # A dataset without a root folder is computed without a cache file.
    assert precompute(ListDataset(graphs), RandomWalkSE(3)).cache_path is None


def test_broken_or_foreign_cache_is_recomputed(tmp_path):
    dataset = ListDataset(_graphs())
    counting = CountingRWSE(3)
    path = precompute(dataset, counting, cache_dir=tmp_path).cache_path
    reference = [g.rwse for g in precompute(dataset, counting, cache_dir=tmp_path)]

    path.write_bytes(b"not a cache file")
    counting.calls = 0
    with pytest.warns(UserWarning, match="could not read"):
        out = precompute(dataset, counting, cache_dir=tmp_path)
    assert counting.calls == len(dataset)
    assert all(torch.equal(g.rwse, r) for g, r in zip(out, reference))

    # A file at the right name written for other transforms (e.g. a hash clash) is not trusted.
    other = precompute(dataset, RandomWalkSE(4), cache_dir=tmp_path).cache_path
    path.write_bytes(other.read_bytes())
    counting.calls = 0
    with pytest.warns(UserWarning, match="other transforms"):
        precompute(dataset, counting, cache_dir=tmp_path)
    assert counting.calls == len(dataset)
    counting.calls = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        precompute(dataset, counting, cache_dir=tmp_path)  # rewritten: a clean hit again
    assert counting.calls == 0


def test_small_datasets_are_quiet(tmp_path, capsys):
    precompute(ListDataset(_graphs(4)), RandomWalkSE(3), cache_dir=tmp_path)
    assert capsys.readouterr().err == ""
    precompute(ListDataset(_graphs(4)), RandomWalkSE(4), cache_dir=tmp_path, progress=True)
    assert "4/4" in capsys.readouterr().err


def test_bad_input(tmp_path):
    dataset = ListDataset(_graphs(3))
    with pytest.raises(ValueError, match="cache_key"):
        precompute(dataset, [lambda data: data], cache_dir=tmp_path)
    with pytest.raises(ValueError, match="at least one"):
        precompute(dataset, [], cache_dir=tmp_path)
    with pytest.raises(ValueError, match="empty dataset"):
        precompute([], RandomWalkSE(3), cache_dir=tmp_path)
    bad = Data(edge_index=torch.tensor([[0, 5], [1, 0]]), num_nodes=3)
    with pytest.raises(ValueError, match="out of range"):
        precompute([bad], RandomWalkSE(3), cache_dir=tmp_path)


def _splits():
    return {s: ListDataset(_graphs(6, seed=i)) for i, s in enumerate(("train", "val", "test"))}


def test_datamodule_precomputes_every_split(tmp_path):
    splits = _splits()
    module = DataModule(splits, batch_size=4, pe_cache_dir=tmp_path,
                        pe_transforms={"rwse": RandomWalkSE(3), "lap": [LaplacianEigenpairs(2)], "off": None})
    for split in ("train", "val", "test"):
        batch = next(iter(module.loader(split)))
        assert batch.rwse.shape == (batch.num_nodes, 3) and batch.lappe_vec.shape == (batch.num_nodes, 2)
    assert [int(g.y) for g in module.dataset("val")] == [int(g.y) for g in splits["val"]]
    assert module.facts["in_channels"] == 4

    # One dataset behind every split (a node-level graph) is processed once.
    counting = CountingRWSE(3)
    shared = ListDataset(_graphs(1))
    module = DataModule({"train": shared, "val": shared, "test": shared}, pe_transforms={"rwse": counting},
                        pe_cache_dir=tmp_path)
    assert counting.calls == 1 and module.dataset("train") is module.dataset("test")

    untouched = DataModule(splits, pe_transforms={})
    assert untouched.dataset("train") is splits["train"]
    with pytest.raises(ValueError, match="pe_transforms"):
        DataModule(splits, pe_transforms=[RandomWalkSE(3)])


def test_datamodule_from_hydra_config(tmp_path):
    cfg = OmegaConf.create({
        "_target_": "gnnlab.data.DataModule",
        "batch_size": 4,
        "pe_cache_dir": str(tmp_path),
        "pe_transforms": {
            "rwse": {"_target_": "gnnlab.transforms.RandomWalkSE", "k": 3, "attr": "rwse"},
            "fastrp": {"_target_": "gnnlab.transforms.FastRP", "dim": 4, "weights": [1.0, 1.0]},
        },
    })
    module = hydra.utils.instantiate(cfg, splits=_splits())
    batch = next(iter(module.loader("train")))
    assert batch.rwse.shape == (batch.num_nodes, 3) and batch.fastrp.shape == (batch.num_nodes, 4)
