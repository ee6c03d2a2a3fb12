"""ECC on the Kron pyramid: a batch scores as its graphs one by one, node order does not matter, training runs."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.testing import assert_close
from torch_geometric.data import Batch, Data

from gnnlab.models import ECC
from gnnlab.models.ecc import level_graph
from gnnlab.transforms import KronReduction

SIZES = (7, 4, 11, 6)


def _graph(n: int, g: torch.Generator, perm: torch.Tensor | None = None) -> Data:
    upper = torch.triu(torch.rand(n, n, generator=g) < 0.45, diagonal=1)
    src, dst = upper.nonzero().t()
    edge_index = torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], 1)
    x = torch.randn(n, 3, generator=g, dtype=torch.float64)
    if perm is not None:
        inverse = torch.empty_like(perm)
        inverse[perm] = torch.arange(n)
        x, edge_index = x[perm], inverse[edge_index]
    return KronReduction(2)(Data(x=x, edge_index=edge_index))


def _batch(seed: int, perms=None) -> Batch:
    g = torch.Generator().manual_seed(seed)
    graphs = []
    for i, n in enumerate(SIZES):
        state = g.get_state()
        graphs.append(_graph(n, g, None if perms is None else perms[i]))
        if perms is not None:
            g.set_state(state)
            _graph(n, g)  # keep the stream aligned with the unpermuted batch
    return Batch.from_data_list(graphs)


def _model(seed: int = 0) -> ECC:
    torch.manual_seed(seed)
    model = ECC(3, 2, hidden_channels=8).double()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def test_level_graphs_are_offset_per_graph():
    batch = _batch(0)
    for level in (1, 2):
        edge_index, weight, n = level_graph(batch, level)
        assert n == int(batch[f"kron_keep{level}"].sum()) and weight.numel() == edge_index.size(1)
        parts = [level_graph(g, level) for g in batch.to_data_list()]
        offsets = torch.tensor([0] + [p[2] for p in parts]).cumsum(0)
        expected = torch.cat([p[0] + offsets[i] for i, p in enumerate(parts)], 1)
        assert torch.equal(edge_index, expected)


def test_a_batch_is_its_graphs_one_by_one_and_trains():
    model, batch = _model(), _batch(1)
    out = model(batch)
    assert out.shape == (len(SIZES), 2)
    alone = torch.cat([model(Batch.from_data_list([g])) for g in batch.to_data_list()])
    assert_close(out, alone)
    model.train()
    loss = torch.nn.functional.cross_entropy(model(batch), torch.tensor([0, 1, 1, 0]))
    loss.backward()
    assert all(p.grad is not None and bool(torch.isfinite(p.grad).all()) for p in model.parameters())


def _well_posed(batch: Batch) -> bool:
    """Every level of every graph has a simple top eigenvalue and one entry of largest magnitude in its
    eigenvector: the pyramid does not depend on the node order."""
    from gnnlab.transforms.kron import kron_reduction, normalized_laplacian_dense

    for g in batch.to_data_list():
        lap = normalized_laplacian_dense(g.edge_index, g.num_nodes)
        for _ in range(2):
            if lap.shape[0] > 1:
                w, v = np.linalg.eigh(lap)
                top = np.sort(np.abs(v[:, -1]))
                if w[-1] - w[-2] < 1e-6 or top[-1] - top[-2] < 1e-6:
                    return False
            lap = kron_reduction(lap)[1]
    return True


def test_node_order_does_not_matter():
    g = torch.Generator().manual_seed(7)
    perms = [torch.randperm(n, generator=g) for n in SIZES]
    seed = next(s for s in range(50) if _well_posed(_batch(s)))
    model = _model(2)
    assert_close(model(_batch(seed, perms)), model(_batch(seed)))


def test_missing_pyramid_and_bad_input():
    data = Data(x=torch.randn(4, 3, dtype=torch.float64), edge_index=torch.tensor([[0, 1], [1, 0]]))
    with pytest.raises(ValueError, match="KronReduction"):
        _model()(data)
    with pytest.raises(ValueError, match=r"float \[N, 3\]"):
        _model()(Data(x=torch.zeros(4, 2), edge_index=torch.zeros(2, 0, dtype=torch.long)))
