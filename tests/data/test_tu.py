"""TU loader: fold protocols (splits file and stratified k-fold), offline copies, argument checks."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import ConcatDataset

from gnnlab.data import DataModule, load_tu
from gnnlab.data._offline import ENV_VAR


def _indices(subset) -> list[int]:
    return [int(i) for i in subset.indices()]


def _check_partition(splits, num_graphs):
    parts = [set(_indices(splits[k])) for k in ("train", "val", "test")]
    assert sum(map(len, parts)) == len(set().union(*parts)) == num_graphs


def _write_fake_tu(raw: Path, name: str, num_graphs: int = 30) -> np.ndarray:
    """A featureless TU dataset: ``num_graphs`` 4-cycles with labels 0/1 (two thirds are 0)."""
    raw.mkdir(parents=True)
    edges, indicator = [], []
    for g in range(num_graphs):
        base = 4 * g + 1  # TU files count nodes from 1
        for a in range(4):
            u, v = base + a, base + (a + 1) % 4
            edges += [(u, v), (v, u)]
        indicator += [g + 1] * 4
    labels = np.array([1 if g % 3 == 0 else 0 for g in range(num_graphs)])
    (raw / f"{name}_A.txt").write_text("".join(f"{u}, {v}\n" for u, v in edges))
    (raw / f"{name}_graph_indicator.txt").write_text("".join(f"{i}\n" for i in indicator))
    (raw / f"{name}_graph_labels.txt").write_text("".join(f"{y}\n" for y in labels))
    return labels


@pytest.mark.shared_data
def test_mutag_stratified_folds(tmp_path, offline_copy):
    offline_copy("TUDataset/MUTAG/raw", "MUTAG")
    tests = []
    for fold in range(10):
        splits = load_tu(tmp_path, "MUTAG", fold=fold, seed=0)
        _check_partition(splits, 188)
        tests.append(_indices(splits["test"]))
    assert sum(map(len, tests)) == len(set().union(*map(set, tests))) == 188

    splits = load_tu(tmp_path, "MUTAG", fold=0, seed=0)
    g = splits["train"][0]
    assert g.x.shape[1] == 7 and g.edge_attr.shape[1] == 4
    assert len(splits["val"]) == 17  # 10 % of the 169 training graphs
    # Stratified: the class balance of each part is close to the whole (125 : 63).
    for part in splits.values():
        share = float(torch.cat([d.y for d in part]).float().mean())
        assert abs(share - 125 / 188) < 0.1
    # Seeded: same seed same folds, another seed other folds.
    assert _indices(load_tu(tmp_path, "MUTAG", fold=0, seed=0)["test"]) == tests[0]
    assert _indices(load_tu(tmp_path, "MUTAG", fold=0, seed=1)["test"]) != tests[0]
    # Published statistics: 188 graphs with 17.93 nodes on average.
    nodes = sum(g.num_nodes for part in load_tu(tmp_path, "mutag").values() for g in part)
    assert round(nodes / 188, 2) == 17.93


@pytest.mark.shared_data
def test_proteins_fair_comparison_splits(tmp_path, offline_copy):
    offline_copy("TUDataset/PROTEINS/raw", "PROTEINS")
    splits_path = offline_copy("TUDataset/PROTEINS/PROTEINS_splits.json", "PROTEINS splits")
    reference = json.loads(splits_path.read_text())

    tests = []
    for fold in range(10):
        splits = load_tu(tmp_path, "PROTEINS", fold=fold)
        _check_partition(splits, 1113)
        assert _indices(splits["test"]) == reference[fold]["test"]
        assert _indices(splits["train"]) == reference[fold]["model_selection"][0]["train"]
        assert _indices(splits["val"]) == reference[fold]["model_selection"][0]["validation"]
        tests.append(set(_indices(splits["test"])))
    assert sum(map(len, tests)) == len(set().union(*tests)) == 1113  # disjoint and covering
    assert (tmp_path / "TUDataset" / "PROTEINS" / "PROTEINS_splits.json").is_file()

    module = DataModule(splits, batch_size=32)
    assert module.facts["in_channels"] == 3 and module.facts["num_node_tokens"] is None
    graphs = sum(len(d) for d in (module.dataset(s) for s in ("train", "val", "test")))
    assert graphs == 1113
    nodes = sum(b.num_nodes for s in ("train", "val", "test") for b in module.loader(s))
    assert nodes == 43471
    # The node-count deciles over all 1113 graphs give the SortPooling k of Errica et al.'s DGCNN for
    # PROTEINS (their code hard-codes 32 for 60 % and 81 for 90 %).
    whole = DataModule({"train": ConcatDataset([module.dataset(s) for s in ("train", "val", "test")]), "val": splits["val"],
                        "test": splits["test"]}).facts["node_count_deciles"]
    assert (whole[6], whole[9]) == (32, 81)

    with pytest.raises(ValueError, match="num_folds"):
        load_tu(tmp_path, "PROTEINS", fold=0, num_folds=5)


@pytest.mark.shared_data
def test_proteins_without_splits_file_falls_back_to_stratified(tmp_path, offline_copy, monkeypatch):
    raw = offline_copy("TUDataset/PROTEINS/raw", "PROTEINS")
    shutil.copytree(raw, tmp_path / "TUDataset" / "PROTEINS" / "raw")
    monkeypatch.setenv(ENV_VAR, "")  # no offline copies, hence no splits file
    splits = load_tu(tmp_path, "PROTEINS", fold=3, num_folds=5, seed=7)
    _check_partition(splits, 1113)
    assert len(splits["test"]) in (222, 223)
    assert not (tmp_path / "TUDataset" / "PROTEINS" / "PROTEINS_splits.json").exists()


def test_featureless_dataset_gets_constant_feature(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, "")
    labels = _write_fake_tu(tmp_path / "TUDataset" / "IMDB-BINARY" / "raw", "IMDB-BINARY")
    splits = load_tu(tmp_path, "imdb-binary", fold=1, num_folds=5, seed=0)
    _check_partition(splits, 30)
    assert len(splits["test"]) == 6
    for part in splits.values():
        for g in part:
            assert torch.equal(g.x, torch.ones(4, 1))
    # Stratified: each test fold holds 2 of the 10 positive graphs.
    assert sum(int(labels[i]) for i in _indices(splits["test"])) == 2
    assert DataModule(splits).facts["in_channels"] == 1


def test_explicit_splits_file(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, "")
    _write_fake_tu(tmp_path / "TUDataset" / "IMDB-BINARY" / "raw", "IMDB-BINARY", num_graphs=6)
    folds = [
        {"test": [0, 1], "model_selection": [{"train": [2, 3, 4], "validation": [5]}]},
        {"test": [2, 3], "model_selection": [{"train": [0, 1, 4], "validation": [5]}]},
    ]
    path = tmp_path / "folds.json"
    path.write_text(json.dumps(folds))
    splits = load_tu(tmp_path, "IMDB-BINARY", fold=1, num_folds=2, splits_file=path)
    assert [_indices(splits[k]) for k in ("train", "val", "test")] == [[0, 1, 4], [5], [2, 3]]

    path.write_text(json.dumps([{"test": [0, 99], "model_selection": [{"train": [1], "validation": [2]}]}] * 2))
    with pytest.raises(ValueError, match="indices"):
        load_tu(tmp_path, "IMDB-BINARY", fold=0, num_folds=2, splits_file=path)
    path.write_text(json.dumps([{"test": [0]}] * 2))
    with pytest.raises(ValueError, match="model_selection"):
        load_tu(tmp_path, "IMDB-BINARY", fold=0, num_folds=2, splits_file=path)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="MUTAGG") as info:
        load_tu(tmp_path, "MUTAGG")
    assert "PROTEINS" in str(info.value)
    for fold in (10, -1, 1.5):
        with pytest.raises(ValueError, match="fold"):
            load_tu(tmp_path, "MUTAG", fold=fold)
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        load_tu(tmp_path, "PROTEINS", fold=5, num_folds=5)
    with pytest.raises(ValueError, match="num_folds"):
        load_tu(tmp_path, "MUTAG", num_folds=1)
    assert not (tmp_path / "TUDataset").exists()
    (tmp_path / "afile").write_text("")
    with pytest.raises(PermissionError, match="afile"):
        load_tu(tmp_path / "afile" / "sub", "MUTAG")
