"""MolecularFingerprint (Errica et al.'s structure-agnostic baseline) against its equation."""
from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close
from torch_geometric.data import Batch, Data

from gnnlab.models import MolecularFingerprint


def _batch(seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    graphs = [Data(x=torch.randn(n, 3, generator=g), edge_index=torch.randint(0, n, (2, 2 * n), generator=g))
              for n in (4, 1, 7)]
    return Batch.from_data_list(graphs)


@pytest.mark.parametrize("output_act", [True, False])
def test_matches_the_equation(output_act):
    torch.manual_seed(0)
    model = MolecularFingerprint(3, 8, 2, output_act=output_act)
    batch = _batch()
    sums = torch.stack([batch.x[batch.batch == k].sum(0) for k in range(batch.num_graphs)])
    expected = model.out(torch.relu(model.hidden(sums)))
    assert_close(model(batch), torch.relu(expected) if output_act else expected)
    assert (model(batch) >= 0).all() if output_act else (model(batch) < 0).any()


def test_reads_no_edges_and_no_node_order():
    torch.manual_seed(1)
    model = MolecularFingerprint(3, 8, 2, output_act=False)
    batch = _batch(1)
    out = model(batch)
    rewired = batch.clone()
    rewired.edge_index = rewired.edge_index.flip(0)[:, :3]
    perm = torch.cat([torch.randperm(4), 4 + torch.randperm(1), 5 + torch.randperm(7)])
    shuffled = batch.clone()
    shuffled.x = batch.x[perm]
    assert_close(model(rewired), out)
    assert_close(model(shuffled), out)
    out.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_bad_input():
    model = MolecularFingerprint(3, 8, 2)
    with pytest.raises(ValueError, match=r"\[N, 3\]"):
        model(Data(x=torch.randn(5, 4)))
