"""The DataModule checks every dataset once at load: finite features, valid edges and labels."""
from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Data, InMemoryDataset

from gnnlab.data import DataModule
from gnnlab.errors import DataError


class TinyDataset(InMemoryDataset):
    """A few hand-made graphs, collated like every PyG in-memory dataset."""

    def __init__(self, graphs: list[Data], name: str = "TINY", transform=None):
        super().__init__(None, transform=transform)
        self.name = name
        self.data, self.slices = self.collate(graphs)


def _graphs(n: int = 4) -> list[Data]:
    graphs = []
    for i in range(n):
        nodes = 3 + i
        src = torch.arange(nodes - 1)
        graphs.append(Data(
            x=torch.randn(nodes, 2),
            edge_index=torch.stack([torch.cat([src, src + 1]), torch.cat([src + 1, src])]),
            edge_attr=torch.randn(2 * (nodes - 1), 3),
            y=torch.tensor([i % 2]),
        ))
    return graphs


def _module(train: InMemoryDataset, num_classes: int | None = 2) -> DataModule:
    ok = TinyDataset(_graphs())
    return DataModule({"train": train, "val": ok, "test": ok}, batch_size=2, num_classes=num_classes)


def test_valid_dataset_passes():
    module = _module(TinyDataset(_graphs()))
    assert len(module.dataset("train")) == 4


def test_nan_node_feature_names_dataset_graph_and_tensor():
    graphs = _graphs()
    graphs[2].x[1, 0] = float("nan")
    with pytest.raises(DataError, match=r"TINY \(train split\), graph 2: x .*non-finite.*nan.*node 1"):
        _module(TinyDataset(graphs))


def test_inf_edge_feature_is_reported():
    graphs = _graphs()
    graphs[3].edge_attr[4, 2] = float("inf")
    with pytest.raises(DataError, match=r"TINY \(train split\), graph 3: edge_attr .*non-finite.*inf.*edge 4"):
        _module(TinyDataset(graphs))


def test_out_of_range_edge_is_reported():
    graphs = _graphs()
    graphs[1].edge_index[1, 0] = 4  # graph 1 has 4 nodes: 0..3
    with pytest.raises(DataError, match=r"graph 1: edge_index .*node 4 .*\[0, 4\)"):
        _module(TinyDataset(graphs))


def test_negative_edge_index_is_reported():
    graphs = _graphs()
    graphs[0].edge_index[0, 1] = -1
    with pytest.raises(DataError, match=r"graph 0: edge_index .*node -1"):
        _module(TinyDataset(graphs))


def test_float_edge_index_is_reported():
    graphs = _graphs()
    graphs[0].edge_index = graphs[0].edge_index.float()
    with pytest.raises(DataError, match=r"edge_index .*torch.float32.*int64"):
        _module(TinyDataset(graphs))


def test_label_outside_the_classes_is_reported():
    graphs = _graphs()
    graphs[3].y = torch.tensor([2])
    with pytest.raises(DataError, match=r"graph 3: y .*label 2.*\[0, 2\)"):
        _module(TinyDataset(graphs))
    # Without a number of classes (regression, or not given) the label range is not checked.
    _module(TinyDataset(graphs), num_classes=None)


def test_subset_reports_the_index_within_the_split():
    graphs = _graphs(6)
    graphs[4].x[0, 1] = float("nan")
    full = TinyDataset(graphs)
    # The NaN graph is the second graph of this split; graphs outside the split are not its problem.
    with pytest.raises(DataError, match=r"graph 1: x"):
        _module(full[torch.tensor([0, 4, 5])])
    _module(full[torch.tensor([0, 1, 5])])


def test_transformed_dataset_is_checked_as_served():
    def poison(data):
        data = data.clone()
        data.x = data.x / 0.0 * 0.0  # NaN everywhere
        return data

    with pytest.raises(DataError, match=r"graph 0: x .*non-finite"):
        _module(TinyDataset(_graphs(), transform=poison))


def test_check_can_be_switched_off():
    graphs = _graphs()
    graphs[0].x[0, 0] = float("nan")
    ok = TinyDataset(_graphs())
    DataModule({"train": TinyDataset(graphs), "val": ok, "test": ok}, check=False)
