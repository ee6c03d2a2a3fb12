"""DataModule: seeded shuffling of the training loader, batch sizes, feature/token sizes, errors."""
from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Data, InMemoryDataset

from gnnlab.data import DataModule, UnknownSplitError, generate_sbm
from gnnlab.errors import DataError


class ListDataset(InMemoryDataset):
    """An in-memory dataset built from a list of graphs, without files."""

    def __init__(self, graphs, transform=None):
        super().__init__(None, transform=transform)
        self.data, self.slices = self.collate(graphs)


def _graphs(count: int, start: int = 0, float_x: bool = False, max_token: int = 4) -> list[Data]:
    out = []
    for gid in range(start, start + count):
        n = 3
        x = torch.randn(n, 5) if float_x else torch.full((n,), gid % (max_token + 1))
        out.append(Data(
            x=x,
            edge_index=torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]),
            edge_attr=torch.tensor([0, 0, 1, 1]),
            gid=torch.tensor([gid]),
        ))
    return out


def _splits(float_x: bool = False, **kwargs) -> dict[str, ListDataset]:
    return {
        "train": ListDataset(_graphs(30, 0, float_x, **kwargs)),
        "val": ListDataset(_graphs(20, 100, float_x, **kwargs)),
        "test": ListDataset(_graphs(20, 200, float_x, **kwargs)),
    }


def _order(loader) -> list[int]:
    return torch.cat([batch.gid for batch in loader]).tolist()


def test_train_loader_is_shuffled_reproducibly():
    splits = _splits()
    first = _order(DataModule(splits, batch_size=8, seed=1).loader("train"))
    assert sorted(first) == list(range(30))
    assert first != list(range(30))
    assert first == _order(DataModule(splits, batch_size=8, seed=1).loader("train"))
    assert first != _order(DataModule(splits, batch_size=8, seed=2).loader("train"))
    loader = DataModule(splits, batch_size=8, seed=1).train_loader()
    epochs = [_order(loader) for _ in range(2)]
    assert epochs[0] == first and epochs[1] != first  # a new order each epoch, reproducibly


def test_val_and_test_are_in_order():
    module = DataModule(_splits(), batch_size=8, seed=1)
    assert _order(module.loader("val")) == list(range(100, 120))
    assert _order(module.loader("test")) == list(range(200, 220))


def test_batch_sizes():
    module = DataModule(_splits(), batch_size=8, eval_batch_size=16)
    assert [b.num_graphs for b in module.loader("train")] == [8, 8, 8, 6]
    assert [b.num_graphs for b in module.loader("val")] == [16, 4]
    default = DataModule(_splits(), batch_size=8)
    assert [b.num_graphs for b in default.loader("test")] == [8, 8, 4]


def test_feature_and_token_sizes():
    tokens = DataModule(_splits(max_token=4)).facts
    assert tokens["in_channels"] is None
    assert tokens["num_node_tokens"] == 5
    assert tokens["num_edge_tokens"] == 2
    floats = DataModule(_splits(float_x=True)).facts
    assert floats["in_channels"] == 5
    assert floats["num_node_tokens"] is None

    # A token that only occurs in the test split still fits the embedding table.
    splits = _splits(max_token=2)
    splits["test"] = ListDataset(_graphs(3, 200, max_token=9) + _graphs(1, 209, max_token=9))
    assert DataModule(splits).facts["num_node_tokens"] == 10
    # A subset takes the slow path (iterating graphs) and must count the same way.
    splits = _splits(max_token=4)
    splits["train"] = splits["train"][torch.arange(10)]
    assert DataModule(splits).facts["num_node_tokens"] == 5


def test_with_sbm_graphs():
    splits = {s: ListDataset(generate_sbm("CLUSTER", 10, seed=0, split=s)) for s in ("train", "val", "test")}
    module = DataModule(splits, batch_size=4)
    assert module.facts["num_node_tokens"] == 7 and module.facts["num_edge_tokens"] == 1
    batch = next(iter(module.loader("train")))
    assert batch.num_graphs == 4 and batch.x.dim() == 1


def test_dataset_access_and_errors():
    splits = _splits()
    module = DataModule(splits)
    assert module.dataset("val") is splits["val"]
    with pytest.raises(ValueError, match="'train', 'val', 'test'") as info:
        module.loader("validation")
    assert isinstance(info.value, KeyError) and isinstance(info.value, UnknownSplitError)
    with pytest.raises(KeyError, match="validation"):
        module.dataset("validation")
    with pytest.raises(ValueError, match="'test'"):
        DataModule({"train": splits["train"], "val": splits["val"]})
    with pytest.raises(ValueError, match="batch_size"):
        DataModule(splits, batch_size=0)


def test_successive_train_loaders_continue_the_shuffle_stream():
    """Each epoch's fresh loader gets a new order; the sequence repeats for the same seed and
    is restored by the generator state (what checkpoints save)."""
    splits = _splits()
    dm = DataModule(splits, batch_size=8, seed=3)
    orders = [_order(dm.loader("train")) for _ in range(3)]
    assert orders[0] != orders[1] != orders[2]
    again = DataModule(splits, batch_size=8, seed=3)
    assert [_order(again.loader("train")) for _ in range(3)] == orders
    replay = DataModule(splits, batch_size=8, seed=3)
    _order(replay.loader("train"))
    state = replay.generator.get_state()
    fresh = DataModule(splits, batch_size=8, seed=99)
    fresh.generator.set_state(state)
    assert _order(fresh.loader("train")) == orders[1]


def test_facts_of_labels_vocabularies_and_degrees():
    from gnnlab.transforms import degree_histogram, degree_statistics

    g = torch.Generator().manual_seed(0)

    def graphs(count):
        return [Data(x=torch.randint(5, (n,), generator=g), y=torch.randint(4, (1,), generator=g),
                     edge_index=torch.randint(n, (2, 3 * n), generator=g), num_nodes=n)
                for n in torch.randint(2, 9, (count,), generator=g).tolist()]

    splits = {s: ListDataset(graphs(c)) for s, c in (("train", 30), ("val", 10), ("test", 10))}
    facts = DataModule(splits).facts
    labels = torch.cat([splits[s]._data.y for s in ("train", "val", "test")])
    assert facts["num_outputs"] == int(labels.max()) + 1
    assert facts["num_nodes"] is None  # several graphs per split
    # The collated fast path and the graph-by-graph histogram agree.
    expected = degree_statistics(degree_histogram(list(splits["train"])))
    assert (facts["avg_degree"], facts["avg_log_degree"]) == pytest.approx(expected)
    assert DataModule(splits, num_classes=9).facts["num_outputs"] == 9
    # A declared vocabulary sizes the tables; tokens outside it are an error.
    splits["train"].vocabulary = {"x": 12}
    assert DataModule(splits).facts["num_node_tokens"] == 12
    splits["train"].vocabulary = {"x": 3}
    with pytest.raises(DataError, match=r"x: tokens up to \[5\] do not fit the dataset's declared vocabulary 3"):
        DataModule(splits)
