"""Orderings of nodes within graphs, packed offsets, and the way back."""
from __future__ import annotations

import pytest
import torch

from gnnlab.nn.ssm import node_degree, order_within_graphs, sequence_offsets, unpermute


def _oracle(batch, key, descending=False):
    out = []
    for g in batch.unique().tolist():
        nodes = (batch == g).nonzero().flatten().tolist()
        out += sorted(nodes, key=lambda i: (-key[i].item() if descending else key[i].item(), i))
    return torch.tensor(out)


@pytest.mark.parametrize("descending", [False, True])
def test_order_matches_per_graph_sort(descending):
    g = torch.Generator().manual_seed(0)
    batch = torch.sort(torch.randint(0, 6, (60,), generator=g)).values
    key = torch.randint(0, 4, (60,), generator=g).float()  # many ties: stable by node index
    perm = order_within_graphs(batch, key, descending=descending)
    assert torch.equal(perm, _oracle(batch, key, descending))
    assert torch.equal(batch[perm], batch)  # nodes stay grouped by graph


def test_single_graph_and_roundtrip():
    key = torch.tensor([3.0, 1.0, 2.0, 1.0])
    perm = order_within_graphs(None, key)
    assert perm.tolist() == [1, 3, 2, 0]
    x = torch.randn(4, 3)
    assert torch.equal(unpermute(x[perm], perm), x)


def test_offsets_and_degree():
    batch = torch.tensor([0, 0, 2, 2, 2])
    assert sequence_offsets(batch, 5).tolist() == [0, 2, 2, 5]
    assert sequence_offsets(batch, 5, num_graphs=4).tolist() == [0, 2, 2, 5, 5]
    assert sequence_offsets(None, 7).tolist() == [0, 7]
    edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    assert node_degree(edge_index, 4).tolist() == [1.0, 2.0, 1.0, 0.0]


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="NaN"):
        order_within_graphs(None, torch.tensor([0.0, float("nan")]))
    with pytest.raises(ValueError, match="outside"):
        node_degree(torch.tensor([[0, 5], [1, 0]]), 3)
    with pytest.raises(ValueError, match="differ in length"):
        order_within_graphs(torch.zeros(3, dtype=torch.long), torch.zeros(4))
