"""DGCNN (Zhang et al.): SortPooling against a per-graph loop, the model against its equations, the k rule."""
from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close
from torch_geometric.data import Batch, Data

from gnnlab.models import DGCNN, sort_pool
from gnnlab.models.dgcnn import sort_pool_k
from gnnlab.ops import Graph

SIZES = (5, 1, 14, 0, 9)


def _batch(seed: int = 0, sizes=SIZES, width: int = 3) -> Batch:
    g = torch.Generator().manual_seed(seed)
    graphs = []
    for n in sizes:
        edges = torch.randint(0, max(n, 1), (2, 3 * n), generator=g)
        graphs.append(Data(x=torch.randn(n, width, generator=g, dtype=torch.float64),
                           edge_index=torch.cat([edges, edges.flip(0)], 1)))
    return Batch.from_data_list(graphs)


def loop_sort_pool(x, batch, num_graphs, k):
    """Each graph alone: rows sorted by the last channel, descending; the first k, zero rows after."""
    blocks = []
    for b in range(num_graphs):
        rows = x[batch == b]
        rows = rows[torch.argsort(rows[:, -1], descending=True)][:k]
        blocks.append(torch.cat([rows, rows.new_zeros(k - rows.size(0), x.size(1))]).reshape(-1))
    return torch.stack(blocks)


@pytest.mark.parametrize("k", [1, 4, 9, 20])
@pytest.mark.parametrize("seed", range(3))
def test_sort_pool_matches_a_loop_over_graphs(k, seed):
    batch = _batch(seed)
    x = batch.x.clone().requires_grad_()
    out = sort_pool(x, batch.batch, batch.num_graphs, k)
    assert out.shape == (len(SIZES), k * 3)
    assert_close(out, loop_sort_pool(batch.x, batch.batch, batch.num_graphs, k))
    assert (out.view(len(SIZES), k, 3)[3] == 0).all()  # the empty graph
    # Gradient: every kept row gets its own upstream gradient back, the dropped rows nothing.
    upstream = torch.randn_like(out)
    (out * upstream).sum().backward()
    expected = torch.zeros_like(batch.x)
    for b in range(batch.num_graphs):
        nodes = (batch.batch == b).nonzero().view(-1)
        kept = nodes[torch.argsort(batch.x[nodes, -1], descending=True)][:k]
        expected[kept] = upstream[b].view(k, 3)[: kept.numel()]
    assert_close(x.grad, expected)


def test_sort_pool_nan_and_bad_input():
    x = torch.tensor([[1.0, 0.5], [2.0, float("nan")], [3.0, 0.7]])
    out = sort_pool(x, torch.zeros(3, dtype=torch.long), 1, 2).view(2, 2)
    assert torch.isnan(out[0, 1]) and out[0, 0] == 2.0  # NaN sorts first and stays visible
    assert_close(out[1], x[2])
    with pytest.raises(ValueError, match="k must be >= 1"):
        sort_pool(x, torch.zeros(3, dtype=torch.long), 1, 0)
    with pytest.raises(ValueError, match="batch"):
        sort_pool(x, torch.zeros(2, dtype=torch.long), 1, 2)


def _model(k=12, layers=2, hidden=4, seed=0):
    torch.manual_seed(seed)
    return DGCNN(3, 2, k=k, hidden_channels=hidden, num_layers=layers, dense_channels=8).double().eval()


def test_forward_matches_the_equations():
    model, batch = _model(), _batch(1)
    graph = Graph.from_data(batch)
    h, zs = batch.x, []
    for conv in model.convs:  # tanh after every convolution, the last one of width 1
        h = torch.tanh(conv(h, graph)[0])
        zs.append(h)
    assert zs[-1].shape[1] == 1 and model.latent == 2 * 4 + 1
    s = loop_sort_pool(torch.cat(zs, 1), batch.batch, batch.num_graphs, 12).unsqueeze(1)
    s = torch.nn.functional.max_pool1d(torch.relu(model.conv1d_1(s)), 2, 2)
    s = torch.relu(model.conv1d_2(s)).flatten(1)
    expected = model.out(torch.relu(model.dense(s)))
    assert_close(model(batch), expected)


def test_node_order_does_not_matter_and_training_step():
    model, batch = _model(seed=2), _batch(2)
    out = model(batch)
    perm = torch.cat([torch.randperm(n) + off for n, off in zip(SIZES, batch.ptr[:-1].tolist())])
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(perm.numel())
    shuffled = batch.clone()
    shuffled.x, shuffled.edge_index = batch.x[perm], inverse[batch.edge_index]
    assert_close(model(shuffled), out)
    model.train()
    loss = torch.nn.functional.cross_entropy(model(batch), torch.tensor([0, 1, 1, 0, 1]))
    loss.backward()
    assert all(p.grad is not None and bool(torch.isfinite(p.grad).all()) for p in model.parameters())


def test_k_rule_and_errors():
    deciles = [4, 9, 13, 18, 22, 26, 32, 39, 53, 78, 620]
    assert sort_pool_k(0.6, deciles) == 32 and sort_pool_k(0.9, deciles) == 78 and sort_pool_k(35, None) == 35
    assert DGCNN(3, 2, k=0.6, node_count_deciles=deciles).k == 32
    with pytest.raises(ValueError, match="node_count_deciles"):
        DGCNN(3, 2, k=0.6)
    with pytest.raises(ValueError, match="0.1, 0.2"):
        sort_pool_k(0.65, deciles)
    with pytest.raises(ValueError, match="k must be >= 10"):
        DGCNN(3, 2, k=8)
    with pytest.raises(ValueError, match=r"float \[N, 3\]"):
        _model()(Data(x=torch.zeros(4, 2), edge_index=torch.zeros(2, 0, dtype=torch.long)))
