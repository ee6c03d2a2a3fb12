"""Link-prediction splits: NCN's Planetoid protocol and the official ogbl-ddi split.

The strongest check runs NCN's ``randomsplit`` literally (on top of PyG's ``train_test_split_edges``)
and requires the library's split to be identical, pair for pair, on Cora and on random graphs.
"""
from __future__ import annotations

import sys
import types
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gnnlab.data import LinkSplit, load_planetoid, ncn_random_split, ogbl_ddi_split, planetoid_link_split
from gnnlab.data.linkpred import splits as LP

CORA_COUNTS = {"train_pos": 3696, "valid_pos": 527, "valid_neg": 1055, "test_pos": 1055, "test_neg": 1055}
DDI_COUNTS = {"train_pos": 1_067_911, "valid_pos": 133_489, "valid_neg": 101_882, "test_pos": 133_489,
              "test_neg": 95_599}


def _pyg_train_test_split_edges():
    try:
        from torch_geometric.utils import train_test_split_edges
    except ImportError:
        pytest.skip("this PyG no longer has train_test_split_edges, which the reference needs")
    return train_test_split_edges


def ncn_randomsplit_literal(data, seed: int, val_ratio: float = 0.10, test_ratio: float = 0.2) -> dict:
    """NCN's ``randomsplit`` (GraphPKU/NeuralCommonNeighbor, dataset.py) step by step, after its
    ``set_seed(run)``; returns ``[2, E]`` tensors like :class:`LinkSplit`'s."""
    from torch_geometric.utils import to_undirected

    train_test_split_edges = _pyg_train_test_split_edges()

    def removerepeated(ei):
        ei = to_undirected(ei)
        return ei[:, ei[0] < ei[1]]

    torch.manual_seed(seed)
    data = data.clone()
    data.num_nodes = data.x.shape[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation notice
        data = train_test_split_edges(data, test_ratio, test_ratio)
    num_val = int(data.val_pos_edge_index.shape[1] * val_ratio / test_ratio)
    data.val_pos_edge_index = data.val_pos_edge_index[:, torch.randperm(data.val_pos_edge_index.shape[1])]
    return {
        "train_pos": removerepeated(torch.cat((data.train_pos_edge_index, data.val_pos_edge_index[:, :-num_val]), dim=-1)),
        "valid_pos": removerepeated(data.val_pos_edge_index[:, -num_val:]),
        "valid_neg": removerepeated(data.val_neg_edge_index),
        "test_pos": removerepeated(data.test_pos_edge_index),
        "test_neg": removerepeated(data.test_neg_edge_index),
    }


def _keys(pairs: torch.Tensor, n: int) -> set[int]:
    lo, hi = pairs.min(0).values, pairs.max(0).values
    return set((lo * n + hi).tolist())


def _assert_same(split: LinkSplit, ref: dict) -> None:
    for key, expected in ref.items():
        assert torch.equal(getattr(split, key), expected), key


# ---------------------------------------------------------------------------------------------- Cora


@pytest.fixture
def cora_root(tmp_path, offline_copy):
    offline_copy("Planetoid/Cora/raw", "Cora")
    return tmp_path / "data"


@pytest.mark.shared_data
def test_cora_split_equals_ncn_randomsplit(cora_root):
    data = load_planetoid(cora_root, "Cora", normalize_features=False)["train"][0]
    for seed in (0, 1, 9):
        split = planetoid_link_split("Cora", cora_root, seed)
        _assert_same(split, ncn_randomsplit_literal(data, seed))


@pytest.mark.shared_data
def test_cora_split_protocol(cora_root):
    before = torch.get_rng_state()
    split = planetoid_link_split("Cora", cora_root, 0)
    assert torch.equal(torch.get_rng_state(), before)  # the global RNG is left alone
    assert split.sizes() == CORA_COUNTS
    assert split.num_nodes == 2708 and split.name == "Cora"
    assert split.x.shape == (2708, 1433) and set(torch.unique(split.x).tolist()) == {0.0, 1.0}  # raw, as NCN

    full = load_planetoid(cora_root, "Cora")["train"][0].edge_index
    n = split.num_nodes
    all_edges = _keys(full, n)
    assert len(all_edges) == 5278
    sets = {key: _keys(getattr(split, key), n) for key in CORA_COUNTS}
    for key, pairs in sets.items():
        assert len(pairs) == CORA_COUNTS[key], f"{key} has repeated pairs"
        t = getattr(split, key)
        assert bool((t[0] < t[1]).all()), f"{key} is not stored as i < j"
        order = t[0] * n + t[1]
        assert bool((order[1:] > order[:-1]).all()), f"{key} is not sorted row-major"
    # Positives partition the edges 70/10/20; negatives are non-edges; nothing is in two splits.
    assert sets["train_pos"] | sets["valid_pos"] | sets["test_pos"] == all_edges
    assert not (sets["valid_neg"] | sets["test_neg"]) & all_edges
    names = list(sets)
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            assert not sets[names[a]] & sets[names[b]], f"{names[a]} and {names[b]} share a pair"
    # The ratios NCN's floors give: floor(0.2 * 5278) = 1055, int(1055 * 0.1 / 0.2) = 527.
    assert split.sizes()["train_pos"] == 5278 - 1055 - 527

    ei = split.train_edge_index()
    assert ei.shape == (2, 2 * 3696)
    assert _keys(ei, n) == sets["train_pos"]
    assert torch.equal(ei, torch.stack([ei[1], ei[0]])[:, torch.argsort(ei[1] * n + ei[0])])  # symmetric
    assert split.train_edge_index(include_valid=True).size(1) == 2 * (3696 + 527)


@pytest.mark.shared_data
def test_cora_seeds(cora_root):
    a, b = planetoid_link_split("Cora", cora_root, 3), planetoid_link_split("cora", cora_root, 3)
    for key in CORA_COUNTS:
        assert torch.equal(getattr(a, key), getattr(b, key))
    others = [planetoid_link_split("Cora", cora_root, s) for s in (4, 5)]
    for other in others:
        assert other.sizes() == CORA_COUNTS
        for key in CORA_COUNTS:
            assert not torch.equal(getattr(a, key), getattr(other, key)), key
    normalised = planetoid_link_split("Cora", cora_root, 3, normalize_features=True)
    assert torch.equal(normalised.test_pos, a.test_pos)
    sums = normalised.x.sum(1)
    assert torch.allclose(sums[sums > 0], torch.ones(int((sums > 0).sum())))


# ------------------------------------------------------------------------------- random graphs


def _random_graph(seed: int, n: int, p: float):
    from torch_geometric.data import Data
    from torch_geometric.utils import to_undirected

    g = torch.Generator().manual_seed(seed)
    i, j = torch.triu_indices(n, n, offset=1)
    keep = torch.rand(i.numel(), generator=g) < p
    edge_index = to_undirected(torch.stack([i[keep], j[keep]]), num_nodes=n)
    return Data(x=torch.zeros(n, 1), edge_index=edge_index, num_nodes=n)


@settings(max_examples=40, deadline=None)
@given(graph_seed=st.integers(0, 10_000), seed=st.integers(0, 2**31 - 1), n=st.integers(12, 70),
       p=st.floats(0.08, 0.9), shuffle=st.booleans())
def test_random_graphs_equal_ncn_randomsplit(graph_seed, seed, n, p, shuffle):
    data = _random_graph(graph_seed, n, p)
    if data.edge_index.size(1) // 2 < 10:
        return  # too few edges for a non-empty 10 % validation set
    if shuffle:  # the stored edge order matters (it is what the first randperm permutes): keep it identical
        data.edge_index = data.edge_index[:, torch.randperm(data.edge_index.size(1), generator=torch.Generator().manual_seed(graph_seed))]
    split = ncn_random_split(data.edge_index, n, seed)
    _assert_same(split, ncn_randomsplit_literal(data, seed))


def test_non_edge_sampling_matches_dense_enumeration():
    # PyG's way: every non-edge (i < j) of the full graph, row-major, picked by one randperm.
    data = _random_graph(1, 40, 0.3)
    row, col = data.edge_index[:, data.edge_index[0] < data.edge_index[1]]
    mask = torch.ones(40, 40, dtype=torch.bool).triu(1)
    mask[row, col] = False
    free = mask.nonzero().t()
    for count in (1, 50, free.size(1)):
        expected = free[:, torch.randperm(free.size(1), generator=torch.Generator().manual_seed(7))[:count]]
        got = LP._sample_non_edges(row, col, 40, count, torch.Generator().manual_seed(7))
        assert torch.equal(got, expected)


def test_split_arguments():
    data = _random_graph(0, 30, 0.3)
    with pytest.raises(ValueError, match="too few"):
        ncn_random_split(data.edge_index[:, :8], 30, 0)
    with pytest.raises(ValueError, match="seed"):
        ncn_random_split(data.edge_index, 30, 1.5)
    with pytest.raises(ValueError, match="val_ratio"):
        ncn_random_split(data.edge_index, 30, 0, val_ratio=0.3, test_ratio=0.2)
    with pytest.raises(ValueError, match=r"\[2, E\]"):
        ncn_random_split(data.edge_index.t(), 30, 0)


# ------------------------------------------------------------------------------------- LinkSplit


def _tiny(**overrides) -> LinkSplit:
    args = dict(num_nodes=5, x=torch.randn(5, 3), train_pos=torch.tensor([[0, 1, 2], [1, 2, 3]]),
                valid_pos=torch.tensor([[3], [4]]), valid_neg=torch.tensor([[0], [4]]),
                test_pos=torch.tensor([[0], [3]]), test_neg=torch.tensor([[1, 4], [4, 2]]), name="tiny")
    args.update(overrides)
    return LinkSplit(**args)


def test_linksplit_basics():
    s = _tiny()
    assert repr(s) == "LinkSplit(name='tiny', num_nodes=5, x=[5, 3], train=3, valid=1+/1-, test=1+/2-, device=cpu)"
    assert s.train_edge_index().tolist() == [[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]]
    assert s.train_edge_index(include_valid=True).size(1) == 8
    moved = s.to("cpu")
    assert moved is not s and torch.equal(moved.test_neg, s.test_neg) and moved.name == "tiny"
    assert "x=None" in repr(_tiny(x=None))
    # Duplicated training pairs collapse in the message-passing graph.
    assert _tiny(train_pos=torch.tensor([[0, 0], [1, 1]])).train_edge_index().tolist() == [[0, 1], [1, 0]]


@pytest.mark.parametrize("overrides, match", [
    (dict(num_nodes=0), "num_nodes"),
    (dict(x=torch.randn(4, 3)), "rows"),
    (dict(train_pos=torch.tensor([0, 1])), r"\[2, E\]"),
    (dict(valid_neg=torch.tensor([[0.0], [1.0]])), "int64"),
    (dict(test_neg=torch.tensor([[0], [5]])), "outside"),
    (dict(train_pos=torch.tensor([[1], [0]])), "i < j"),
])
def test_linksplit_validation(overrides, match):
    with pytest.raises(ValueError, match=match):
        _tiny(**overrides)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_linksplit_to_cuda():
    s = _tiny().to("cuda")
    assert s.train_pos.is_cuda and s.x.is_cuda and s.test_neg.is_cuda
    assert s.train_edge_index().is_cuda
    assert "device=cuda" in repr(s)


# ------------------------------------------------------------------------------------------- ddi


@pytest.mark.shared_data
def test_ogbl_ddi_counts(tmp_path, offline_copy):
    shared = offline_copy("ogbl_ddi", "ogbl-ddi")
    split = ogbl_ddi_split(tmp_path)
    assert split.num_nodes == 4267 and split.x is None and split.name == "ogbl-ddi"
    assert split.sizes() == DDI_COUNTS
    train_file = tmp_path / "ogbl_ddi" / "split" / "target" / "train.pt"
    assert train_file.exists()  # rebuilt from raw/edge.csv.gz, as OGB ships it

    # The training positives are the raw edge list, each edge as (min, max), in OGB's order.
    raw = torch.from_numpy(np.loadtxt(shared / "raw" / "edge.csv.gz", delimiter=",", dtype=np.int64))
    assert torch.equal(split.train_pos, torch.sort(raw, dim=1).values.t())
    n = split.num_nodes
    train = _keys(split.train_pos, n)
    assert len(train) == DDI_COUNTS["train_pos"]  # no repeated edge
    assert not train & _keys(split.valid_pos, n) and not train & _keys(split.test_pos, n)

    # Second call: everything is in the data root already, train.pt is read back.
    again = ogbl_ddi_split(tmp_path)
    for key in DDI_COUNTS:
        assert torch.equal(getattr(again, key), getattr(split, key))


@pytest.mark.shared_data
def test_ogbl_ddi_equals_ogb_loader(tmp_path, offline_copy):
    ogb_lp = pytest.importorskip("ogb.linkproppred", reason="ogb is not installed")
    offline_copy("ogbl_ddi", "ogbl-ddi")
    split = ogbl_ddi_split(tmp_path)  # leaves a complete OGB folder behind
    from torch_geometric.data.data import DataEdgeAttr, DataTensorAttr
    from torch_geometric.data.storage import GlobalStorage

    # ogb 1.3.6 loads with torch.load's defaults; allow what its files contain.
    with torch.serialization.safe_globals([DataEdgeAttr, DataTensorAttr, GlobalStorage, *LP._numpy_safe_globals()]):
        dataset = ogb_lp.PygLinkPropPredDataset("ogbl-ddi", root=str(tmp_path))
        official = dataset.get_edge_split()
    assert dataset[0].num_nodes == split.num_nodes
    assert torch.equal(torch.sort(official["train"]["edge"], dim=1).values.t(), split.train_pos)
    for part in ("valid", "test"):
        assert torch.equal(official[part]["edge"].t(), getattr(split, f"{part}_pos"))
        assert torch.equal(official[part]["edge_neg"].t(), getattr(split, f"{part}_neg"))
    # OGB's message-passing graph is the training graph in both directions.
    assert torch.equal(torch.unique(dataset[0].edge_index, dim=1), split.train_edge_index())


@pytest.mark.shared_data
def test_ogbl_ddi_download_path_uses_ogb(tmp_path, offline_copy, monkeypatch):
    shared = offline_copy("ogbl_ddi", "ogbl-ddi")
    calls = []

    class FakeDataset:  # stands in for ogb's downloader: unpacks the official files into root/ogbl_ddi
        def __init__(self, name, root):
            import shutil

            calls.append((name, root))
            shutil.copytree(shared, f"{root}/ogbl_ddi")

    fake = types.ModuleType("ogb.linkproppred")
    fake.PygLinkPropPredDataset = FakeDataset
    monkeypatch.setitem(sys.modules, "ogb.linkproppred", fake)
    monkeypatch.setenv("GNNLAB_SHARED_DATA", "")  # no offline copies
    split = ogbl_ddi_split(tmp_path / "root")
    assert calls == [("ogbl-ddi", str((tmp_path / "root").absolute()))]
    assert split.sizes() == DDI_COUNTS


def test_ogbl_ddi_without_ogb(tmp_path, monkeypatch):
    monkeypatch.setenv("GNNLAB_SHARED_DATA", "")
    monkeypatch.setitem(sys.modules, "ogb.linkproppred", None)  # import fails
    with pytest.raises(ImportError, match="pip install ogb"):
        ogbl_ddi_split(tmp_path)


def test_ogbl_ddi_incomplete_folder(tmp_path, monkeypatch):
    pytest.importorskip("ogb.linkproppred", reason="ogb is not installed")
    monkeypatch.setenv("GNNLAB_SHARED_DATA", "")
    (tmp_path / "ogbl_ddi" / "raw").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="incomplete"):
        ogbl_ddi_split(tmp_path)


def test_split_file_refuses_other_pickles(tmp_path):
    import pickle

    path = tmp_path / "valid.pt"
    torch.save({"edge": np.zeros((3, 2), dtype=np.int64), "extra": types.SimpleNamespace(a=1)}, path)
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        LP._load_split_file(path)
    torch.save({"edge": np.arange(6, dtype=np.int64).reshape(3, 2)}, path)
    assert LP._load_split_file(path)["edge"].tolist() == [[0, 1], [2, 3], [4, 5]]


def test_ogbl_split_rejects_unknown_names(tmp_path):
    from gnnlab.data import ogbl_split

    with pytest.raises(ValueError, match="unknown dataset"):
        ogbl_split("ogbl-wikikg2", tmp_path)


class _FakeOGB:
    """Stands in for ogb's PygLinkPropPredDataset (no download): a 6-node graph in OGB's split format."""

    def __init__(self, name, root):
        from torch_geometric.data import Data

        self.name = name
        self.data = Data(num_nodes=6, x=torch.arange(12, dtype=torch.float32).view(6, 2))

    def __getitem__(self, i):
        return self.data

    def get_edge_split(self):
        if self.name == "ogbl-citation2":
            neg = torch.tensor([[1, 2, 3], [4, 5, 0]])
            return {"train": {"source_node": torch.tensor([3, 0, 2]), "target_node": torch.tensor([1, 4, 2])},
                    "valid": {"source_node": torch.tensor([0, 5]), "target_node": torch.tensor([5, 1]),
                              "target_node_neg": neg},
                    "test": {"source_node": torch.tensor([1, 2]), "target_node": torch.tensor([2, 3]),
                             "target_node_neg": neg}}
        edges = torch.tensor([[3, 1], [1, 3], [0, 4], [0, 4]])  # a reversed duplicate, a repeated year
        return {"train": {"edge": edges},
                "valid": {"edge": torch.tensor([[0, 5]]), "edge_neg": torch.tensor([[1, 2], [2, 5]])},
                "test": {"edge": torch.tensor([[2, 3]]), "edge_neg": torch.tensor([[4, 5]])}}


@pytest.mark.parametrize("name", ["ogbl-collab", "ogbl-citation2"])
def test_ogbl_split_converts_ogb_format(name, tmp_path, monkeypatch):
    lp = pytest.importorskip("ogb.linkproppred", reason="ogb is not installed")
    from gnnlab.data import ogbl_split
    from gnnlab.train.metrics import mrr

    monkeypatch.setattr(lp, "PygLinkPropPredDataset", _FakeOGB)
    split = ogbl_split(name, tmp_path)
    assert split.num_nodes == 6 and split.x.dtype == torch.float32 and split.name == name
    if name == "ogbl-citation2":
        assert split.train_pos.tolist() == [[0, 1], [4, 3]]  # (0,4), (1,3); the self-citation 2->2 dropped
        assert split.valid_pos.tolist() == [[0, 5], [5, 1]]
        # 3 negatives per positive, row-major: (0, 1), (0, 2), (0, 3), (5, 4), (5, 5), (5, 0)
        assert split.valid_neg.tolist() == [[0, 0, 0, 5, 5, 5], [1, 2, 3, 4, 5, 0]]
        assert mrr(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0, -1.0, 1.0, 1.0, 1.0]).view(2, -1)) == \
            pytest.approx((1 / 2 + 1 / 4) / 2)
    else:
        assert split.train_pos.tolist() == [[0, 1], [4, 3]]
        assert split.valid_neg.tolist() == [[1, 2], [2, 5]]
        assert split.test_pos.tolist() == [[2], [3]]
