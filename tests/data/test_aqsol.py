"""AQSOL loader against the offline copy."""
from __future__ import annotations

import pytest
import torch

from gnnlab.data import DataModule, load_aqsol


@pytest.mark.shared_data
def test_aqsol_statistics(tmp_path, offline_copy):
    offline_copy("AQSOL/raw", "AQSOL")
    splits = load_aqsol(tmp_path)
    assert {k: len(v) for k, v in splits.items()} == {"train": 7836, "val": 998, "test": 999}
    g = splits["train"][0]
    assert g.x.dtype == torch.long and g.x.dim() == 1
    assert g.edge_attr.dtype == torch.long and g.edge_attr.shape == (g.edge_index.size(1),)
    assert g.y.dtype == torch.float and g.y.shape == (1,)
    assert sorted(p.name for p in (tmp_path / "AQSOL" / "raw").iterdir()) == [
        "atom_dict.pickle", "bond_dict.pickle", "test.pickle", "train.pickle", "val.pickle",
    ]

    module = DataModule(splits, batch_size=64)
    assert module.num_node_features is None
    assert module.num_node_tokens == 65  # the 65 atom types of the Benchmarking-GNNs dictionary
    assert module.num_edge_tokens == 5
    batch = next(iter(module.loader("val")))
    assert batch.num_graphs == 64 and batch.y.shape == (64,)


def test_unwritable_root(tmp_path):
    (tmp_path / "afile").write_text("")
    with pytest.raises(PermissionError, match="afile"):
        load_aqsol(tmp_path / "afile" / "sub")
