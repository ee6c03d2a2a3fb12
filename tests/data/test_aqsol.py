"""AQSOL loader against the offline copy."""
from __future__ import annotations

import pickle

import pytest
import torch

from gnnlab.data import DataModule, load_aqsol


@pytest.mark.shared_data
def test_aqsol_statistics(tmp_path, offline_copy):
    offline_copy("AQSOL/raw", "AQSOL")
    splits = load_aqsol(tmp_path)
    # Benchmarking-GNNs' graphs: PyG's 7836/998/999 less those whose last atoms have no bond.
    assert {k: len(v) for k, v in splits.items()} == {"train": 7831, "val": 996, "test": 996}
    pyg = load_aqsol(tmp_path, match_benchmarking_gnns=False)
    assert {k: len(v) for k, v in pyg.items()} == {"train": 7836, "val": 998, "test": 999}
    for name, dataset in pyg.items():
        dropped = [i for i, g in enumerate(dataset) if int(g.edge_index.max()) + 1 != g.num_nodes]
        assert len(dataset) - len(dropped) == len(splits[name])
        assert all(int(g.edge_index.max()) + 1 == g.num_nodes for g in splits[name])
    assert [g.num_nodes for g in pyg["test"]][623] > int(pyg["test"][623].edge_index.max()) + 1
    g = splits["train"][0]
    assert g.x.dtype == torch.long and g.x.dim() == 1
    assert g.edge_attr.dtype == torch.long and g.edge_attr.shape == (g.edge_index.size(1),)
    assert g.y.dtype == torch.float and g.y.shape == (1,)
    assert sorted(p.name for p in (tmp_path / "AQSOL" / "raw").iterdir()) == [
        "atom_dict.pickle", "bond_dict.pickle", "test.pickle", "train.pickle", "val.pickle",
    ]

    module = DataModule(splits, batch_size=64)
    assert module.facts["in_channels"] is None
    assert module.facts["num_node_tokens"] == 65  # the 65 atom types of the Benchmarking-GNNs dictionary
    assert module.facts["num_edge_tokens"] == 5
    batch = next(iter(module.loader("val")))
    assert batch.num_graphs == 64 and batch.y.shape == (64,)


class _Dictionary:
    """Stand-in for the Benchmarking-GNNs ``Dictionary`` class the raw dictionaries were pickled with."""


class _DictionaryUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        return _Dictionary if name == "Dictionary" else super().find_class(module, name)


@pytest.mark.shared_data
def test_aqsol_bond_types_match_the_dictionary(tmp_path, offline_copy):
    """Every bond type's count over the three splits equals the raw dictionary's, and each bond's two
    directions carry the same type (a reordering of edges without their features would break it)."""
    offline_copy("AQSOL/raw", "AQSOL")
    splits = load_aqsol(tmp_path)
    with open(tmp_path / "AQSOL" / "raw" / "bond_dict.pickle", "rb") as f:
        bonds = _DictionaryUnpickler(f).load()
    assert bonds.idx2word == ["NONE", "SINGLE", "DOUBLE", "AROMATIC", "TRIPLE"]
    # Over all stored molecules (a split's _data is the whole file, also where graphs are filtered out).
    directed = sum(torch.bincount(split._data.edge_attr, minlength=5) for split in splits.values())
    assert directed[0] == 0 and (directed % 2 == 0).all()
    assert (directed[1:] // 2).tolist() == bonds.idx2num_occurence[1:]  # 97,362 / 16,688 / 61,539 / 411
    for graph in splits["val"]:
        types = {(u, v): t for u, v, t in zip(*graph.edge_index.tolist(), graph.edge_attr.tolist())}
        assert all(types.get((v, u)) == t for (u, v), t in types.items())


def test_unwritable_root(tmp_path):
    (tmp_path / "afile").write_text("")
    with pytest.raises(PermissionError, match="afile"):
        load_aqsol(tmp_path / "afile" / "sub")
