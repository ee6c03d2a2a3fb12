"""Planetoid loader against the offline Cora copy, and its argument checks."""
from __future__ import annotations

import pytest
import torch

from gnnlab.data import DataModule, load_planetoid


@pytest.mark.shared_data
def test_cora_statistics(tmp_path, offline_copy):
    offline_copy("Planetoid/Cora/raw", "Cora")
    splits = load_planetoid(tmp_path / "data", "Cora")
    assert set(splits) == {"train", "val", "test"}
    assert splits["train"] is splits["val"] is splits["test"]
    dataset = splits["train"]
    assert len(dataset) == 1
    g = dataset[0]
    assert g.num_nodes == 2708
    assert g.edge_index.size(1) == 10556
    assert g.x.size(1) == 1433
    assert dataset.num_classes == 7
    masks = torch.stack([g.train_mask, g.val_mask, g.test_mask])
    assert masks.sum(1).tolist() == [140, 500, 1000]
    assert masks.sum(0).max() == 1  # disjoint
    # Row-normalised features: every non-empty row sums to one.
    sums = g.x.sum(1)
    assert torch.allclose(sums[sums > 0], torch.ones(int((sums > 0).sum())))
    # The raw files were copied into the data root and processed there.
    assert len(list((tmp_path / "data" / "Planetoid" / "Cora" / "raw").iterdir())) == 8
    assert (tmp_path / "data" / "Planetoid" / "Cora" / "processed").is_dir()

    module = DataModule(splits, batch_size=1)
    assert module.facts["in_channels"] == 1433 and module.facts["num_node_tokens"] is None
    (batch,) = list(module.loader("train"))
    assert batch.num_nodes == 2708


@pytest.mark.shared_data
def test_cora_without_normalisation_and_case_insensitive(tmp_path, offline_copy):
    offline_copy("Planetoid/Cora/raw", "Cora")
    g = load_planetoid(tmp_path, "cora", normalize_features=False)["test"][0]
    assert set(torch.unique(g.x).tolist()) == {0.0, 1.0}  # raw bag-of-words


def test_unknown_name(tmp_path):
    with pytest.raises(ValueError, match="Corra") as info:
        load_planetoid(tmp_path, "Corra")
    assert "Cora, CiteSeer, PubMed" in str(info.value)
    assert not (tmp_path / "Planetoid").exists()


def test_unknown_split(tmp_path):
    with pytest.raises(ValueError, match="valid splits"):
        load_planetoid(tmp_path, "Cora", split="private")


def test_unwritable_root(tmp_path):
    (tmp_path / "afile").write_text("")
    bad = tmp_path / "afile" / "sub"
    with pytest.raises(PermissionError, match=str(bad)):
        load_planetoid(bad, "Cora")
