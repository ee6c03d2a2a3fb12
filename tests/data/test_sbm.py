"""PATTERN / CLUSTER generators: determinism, structure, label rules, edge densities and caching."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import gnnlab.data.sbm as sbm
from gnnlab.data import SBMDataset, generate_sbm, load_sbm


def _same(a, b) -> bool:
    return len(a) == len(b) and all(
        torch.equal(g.x, h.x) and torch.equal(g.y, h.y) and torch.equal(g.edge_index, h.edge_index)
        for g, h in zip(a, b)
    )


def _check_structure(g, name):
    n = g.num_nodes
    assert g.x.dtype == g.y.dtype == g.edge_index.dtype == g.edge_attr.dtype == torch.long
    assert g.x.shape == g.y.shape == (n,)
    assert g.edge_attr.shape == (g.edge_index.size(1),) and not g.edge_attr.any()
    row, col = g.edge_index
    assert (row != col).all(), "self loop"
    key = row * n + col
    assert (key[1:] > key[:-1]).all(), "edges must be sorted and unique"
    assert torch.equal(torch.sort(col * n + row).values, key), "edge_index is not symmetric"
    if name == "CLUSTER":
        sizes = torch.bincount(g.y, minlength=6)
        assert len(sizes) == 6 and ((sizes >= 5) & (sizes < 35)).all()
    else:
        assert set(g.x.tolist()) <= {0, 1, 2}
        assert set(g.y.tolist()) <= {0, 1}
        assert 5 <= int(g.y.sum()) <= 34
        assert 5 * 5 <= int((g.y == 0).sum()) <= 5 * 34


@pytest.mark.parametrize("name", ["CLUSTER", "PATTERN"])
def test_seeded_determinism(name):
    a = generate_sbm(name, 50, seed=3)
    assert _same(a, generate_sbm(name, 50, seed=3))
    assert not _same(a, generate_sbm(name, 50, seed=4))
    assert not _same(a, generate_sbm(name, 50, seed=3, split="val"))  # splits use their own streams
    assert _same(a[:20], generate_sbm(name, 20, seed=3))  # a shorter run is a prefix


@pytest.mark.parametrize("name", ["CLUSTER", "PATTERN"])
def test_structure(name):
    for g in generate_sbm(name, 50, seed=0):
        _check_structure(g, name)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), name=st.sampled_from(["CLUSTER", "PATTERN"]))
def test_structure_any_seed(seed, name):
    for g in generate_sbm(name, 2, seed=seed):
        _check_structure(g, name)


def test_cluster_feature_rule():
    for g in generate_sbm("CLUSTER", 50, seed=1):
        for community in range(6):
            tokens = g.x[g.y == community]
            nonzero = tokens[tokens != 0]
            assert nonzero.tolist() == [community + 1]


def test_labels_are_not_positional():
    graphs = generate_sbm("CLUSTER", 50, seed=0)
    # Unpermuted, node 0 would always be in community 0.
    assert len({int(g.y[0]) for g in graphs}) > 1
    graphs = generate_sbm("PATTERN", 50, seed=0)
    assert len({int(g.y[-1]) for g in graphs}) > 1


def _pattern_signature(g):
    mask = g.y == 1
    tokens = tuple(torch.sort(g.x[mask]).values.tolist())
    sub = mask[g.edge_index[0]] & mask[g.edge_index[1]]
    return int(mask.sum()), tokens, int(sub.sum())


def test_pattern_instances_are_planted_as_published():
    """100 instances per seed, shared by the splits; graph i holds instance i mod 100 (so the published
    split sizes give each instance 100 train, 20 val and 20 test graphs)."""
    train = generate_sbm("PATTERN", 300, seed=5)
    val = generate_sbm("PATTERN", 200, seed=5, split="val")
    by_instance = {}
    for split in (train, val):
        for i, g in enumerate(split):
            assert int(g.pattern_id) == i % 100
            by_instance.setdefault(int(g.pattern_id), set()).add(_pattern_signature(g))
    assert sorted(by_instance) == list(range(100))
    assert all(len(signatures) == 1 for signatures in by_instance.values())  # same subgraph everywhere
    distinct = {next(iter(signatures)) for signatures in by_instance.values()}
    assert len(distinct) >= 95  # instances differ (two small ones may coincide by chance)
    sizes = [sig[0] for sig in distinct]
    assert min(sizes) >= 5 and max(sizes) <= 34 and len(set(sizes)) > 10
    for split, n in sbm.PUBLISHED_SIZES["PATTERN"].items():
        assert n % 100 == 0 and n // 100 == {"train": 100, "val": 20, "test": 20}[split]
    other = generate_sbm("PATTERN", 100, seed=6)
    assert {_pattern_signature(g) for g in other} != distinct  # another seed, other instances


@pytest.mark.parametrize("name", ["PATTERN", "CLUSTER"])
def test_statistics_match_the_published_data(name):
    """Nodes and directed edges per graph within 2.5% of the published files' means (PATTERN: and the share of
    pattern nodes within 1.5 points of 17%), on 5 seeds x 500 graphs (500 pattern instances); the
    closed-form expectation of the generator's parameters within 2%."""
    published = sbm.PUBLISHED_STATISTICS[name]
    graphs = [g for seed in range(5) for g in generate_sbm(name, 500, seed=seed)]
    nodes = np.mean([g.num_nodes for g in graphs])
    edges = np.mean([g.edge_index.size(1) for g in graphs])
    assert abs(nodes / published["nodes"] - 1) < 0.025, nodes
    assert abs(edges / published["edges"] - 1) < 0.025, edges
    expected = sbm.expected_statistics(name)
    assert abs(expected["nodes"] / published["nodes"] - 1) < 0.02
    assert abs(expected["edges"] / published["edges"] - 1) < 0.02
    assert abs(nodes / expected["nodes"] - 1) < 0.02 and abs(edges / expected["edges"] - 1) < 0.02
    if name == "PATTERN":
        positive = sum(int(g.y.sum()) for g in graphs) / sum(g.num_nodes for g in graphs)
        assert abs(positive - 0.17) < 0.015 and abs(expected["positive"] - 0.17) < 0.015, positive


def _pair_counts(y: torch.Tensor, edge_index: torch.Tensor, same: torch.Tensor) -> tuple[int, int]:
    """(edges, pairs) over unordered node pairs selected by the boolean matrix ``same``."""
    n = len(y)
    upper = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)
    adj = torch.zeros(n, n, dtype=torch.bool)
    adj[edge_index[0], edge_index[1]] = True
    sel = same & upper
    return int((adj & sel).sum()), int(sel.sum())


def test_cluster_edge_densities():
    intra = inter = np.zeros(2)
    for g in generate_sbm("CLUSTER", 200, seed=11):
        same = g.y[:, None] == g.y[None, :]
        intra = intra + _pair_counts(g.y, g.edge_index, same)
        inter = inter + _pair_counts(g.y, g.edge_index, ~same)
    assert abs(intra[0] / intra[1] - 0.55) < 0.03
    assert abs(inter[0] / inter[1] - 0.25) < 0.03


def test_pattern_edge_densities():
    params = sbm.SBM_PARAMS["PATTERN"]
    # Inside the SBM part the community ids are not in the data, so use the generator before permutation.
    rng = np.random.default_rng(0)
    pattern = sbm._draw_pattern(np.random.default_rng(1), params)
    counts = np.zeros((3, 2))
    for _ in range(200):
        block, _tokens, src, dst = sbm._draw_graph(rng, params, pattern)
        n = len(block)
        kinds = []
        for s, d in ((src, dst), (np.arange(n)[:, None], np.arange(n)[None, :])):
            bs, bd = block[s], block[d]
            in_pattern = (bs == 5) | (bd == 5)
            kinds.append((~in_pattern & (bs == bd), ~in_pattern & (bs != bd), in_pattern & (bs != bd)))
        upper = np.triu(np.ones((n, n), dtype=bool), k=1)
        for k in range(3):
            counts[k] += (kinds[0][k].sum(), (kinds[1][k] & upper).sum())
    p_intra, p_inter, p_cross = counts[:, 0] / counts[:, 1]
    assert abs(p_intra - 0.5) < 0.03
    assert abs(p_inter - 0.35) < 0.03
    assert abs(p_cross - 0.55) < 0.03

    # The pattern-to-rest density is also visible in the public data (label 1 = pattern).
    edges = pairs = 0
    for g in generate_sbm("PATTERN", 100, seed=2):
        e, p = _pair_counts(g.y, g.edge_index, g.y[:, None] != g.y[None, :])
        edges, pairs = edges + e, pairs + p
    assert abs(edges / pairs - 0.55) < 0.03

    # The pattern's own density, over many independently drawn patterns.
    edges = pairs = 0
    for seed in range(60):
        pat = sbm._draw_pattern(np.random.default_rng(seed), params)
        edges += len(pat.src)
        pairs += pat.size * (pat.size - 1) // 2
    assert abs(edges / pairs - 0.5) < 0.03


def test_dataset_caching(tmp_path, monkeypatch):
    ds = SBMDataset(tmp_path, "cluster", split="val", num_graphs=12, seed=2, progress=False)
    assert len(ds) == 12
    folder = tmp_path / "SBM_CLUSTER" / "processed"
    files = {p.name for p in folder.glob("cluster_*.pt")}
    assert files == {f"cluster_val_n12_seed2_v{sbm.GENERATOR_VERSION}.pt"}
    assert _same(list(ds), generate_sbm("CLUSTER", 12, seed=2, split="val"))

    def fail(*args, **kwargs):
        raise AssertionError("cached data should not be regenerated")

    monkeypatch.setattr(sbm, "generate_sbm", fail)
    again = SBMDataset(tmp_path, "CLUSTER", split="val", num_graphs=12, seed=2)
    assert _same(list(ds), list(again))
    monkeypatch.undo()

    SBMDataset(tmp_path, "CLUSTER", split="val", num_graphs=7, seed=2, progress=False)
    SBMDataset(tmp_path, "CLUSTER", split="val", num_graphs=7, seed=3, progress=False)
    SBMDataset(tmp_path, "CLUSTER", split="test", num_graphs=7, seed=3, progress=False)
    SBMDataset(tmp_path, "PATTERN", split="test", num_graphs=7, seed=3, progress=False)
    assert len(list(folder.glob("cluster_*.pt"))) == 4
    assert len(list((tmp_path / "SBM_PATTERN" / "processed").glob("pattern_*.pt"))) == 1


def test_load_sbm_sizes(tmp_path, monkeypatch):
    splits = load_sbm(tmp_path, "PATTERN", num_train=6, num_val=4, num_test=3, seed=1, progress=False)
    assert list(splits) == ["train", "val", "test"]
    assert [len(d) for d in splits.values()] == [6, 4, 3]
    assert {d.split for d in splits.values()} == {"train", "val", "test"}

    made = {}

    class Recorder:
        def __init__(self, root, name, split, num_graphs, seed, progress):
            made[(name, split)] = num_graphs

    monkeypatch.setattr(sbm, "SBMDataset", Recorder)
    sbm.load_sbm(tmp_path, "PATTERN")
    sbm.load_sbm(tmp_path, "CLUSTER", num_train=100)
    assert made == {
        ("PATTERN", "train"): 10000, ("PATTERN", "val"): 2000, ("PATTERN", "test"): 2000,
        ("CLUSTER", "train"): 100, ("CLUSTER", "val"): 1000, ("CLUSTER", "test"): 1000,
    }


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="CLUSTER, PATTERN"):
        load_sbm(tmp_path, "SBM_FOO")
    with pytest.raises(ValueError, match="'FOO'"):
        SBMDataset(tmp_path, "FOO")
    with pytest.raises(ValueError, match="valid splits"):
        SBMDataset(tmp_path, "CLUSTER", split="training", num_graphs=2)
    with pytest.raises(ValueError, match="num_graphs"):
        generate_sbm("CLUSTER", 0)
    with pytest.raises(ValueError, match="seed"):
        generate_sbm("CLUSTER", 2, seed=-1)
    with pytest.raises(PermissionError, match="not writable"):
        (tmp_path / "afile").write_text("")
        SBMDataset(tmp_path / "afile" / "sub", "CLUSTER", num_graphs=2)
