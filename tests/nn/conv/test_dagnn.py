"""DAGNNConv (adaptive propagation) against a dense normalised-adjacency reference."""
from __future__ import annotations

import pytest
import torch
from _dense import DTYPE, adjacency, random_graph
from torch.testing import assert_close

from gnnlab.nn.conv import DAGNNConv
from gnnlab.ops import Graph


def dense_dagnn(x, a, w, b, K):
    """``sum_k sigmoid(H_k w + b) * H_k`` with ``H_k = Â^k x``, ``Â`` GCN's normalisation (diagonal set to one)."""
    a = a.clone().fill_diagonal_(1.0)
    dinv = a.sum(1).pow(-0.5)
    a = dinv[:, None] * a * dinv[None, :]
    h, out = x, 0
    for k in range(K + 1):
        if k:
            h = a @ h
        out = out + torch.sigmoid(h @ w.T + b) * h
    return out


def _layer(channels, K, seed):
    layer = DAGNNConv(channels, channels, K).to(DTYPE)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=DTYPE))
    return layer


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("K", [0, 1, 3, 10])
def test_matches_dense_reference(seed, K):
    g = torch.Generator().manual_seed(seed)
    edge_index = random_graph(11, 30, generator=g, num_isolated=2, num_self_loops=2)
    x = torch.randn(11, 4, generator=g, dtype=DTYPE)
    layer = _layer(4, K, seed)
    out, edge_out = layer(x, Graph.from_edge_index(edge_index, 11))
    expected = dense_dagnn(x, adjacency(edge_index, 11), layer.proj.weight.detach(), layer.proj.bias.detach(), K)
    assert edge_out is None
    assert out.shape == (11, 4)
    assert_close(out, expected)


def test_hops_are_powers_of_the_normalised_adjacency():
    g = torch.Generator().manual_seed(5)
    edge_index = random_graph(8, 20, generator=g, unique=True, num_isolated=1)
    x = torch.randn(8, 3, generator=g, dtype=DTYPE)
    hops = _layer(3, 4, 0).hops(x, Graph.from_edge_index(edge_index, 8))
    a = adjacency(edge_index, 8).fill_diagonal_(1.0)
    dinv = a.sum(1).pow(-0.5)
    a = dinv[:, None] * a * dinv[None, :]
    assert hops.shape == (8, 5, 3)
    for k in range(5):
        assert_close(hops[:, k], torch.linalg.matrix_power(a, k) @ x)


def test_gradients_of_first_and_second_order():
    g = torch.Generator().manual_seed(1)
    edge_index = random_graph(6, 12, generator=g, num_isolated=1)
    graph = Graph.from_edge_index(edge_index, 6)
    layer = _layer(3, 3, 1)
    x = torch.randn(6, 3, generator=g, dtype=DTYPE, requires_grad=True)
    params = (x, layer.proj.weight, layer.proj.bias)
    assert torch.autograd.gradcheck(lambda x: layer(x, graph)[0], (x,))
    assert torch.autograd.gradgradcheck(lambda x: layer(x, graph)[0], (x,))
    # Gradient of the retention projection, against the dense reference's.
    out = layer(x, graph)[0].square().sum()
    grads = torch.autograd.grad(out, params)
    w = layer.proj.weight.detach().clone().requires_grad_()
    b = layer.proj.bias.detach().clone().requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    ref = dense_dagnn(x_ref, adjacency(edge_index, 6), w, b, 3).square().sum()
    for got, want in zip(grads, torch.autograd.grad(ref, (x_ref, w, b))):
        assert_close(got, want)


def test_float32_kept_and_empty_graph():
    layer = DAGNNConv(3, 3, K=2)
    x = torch.randn(4, 3)
    out, _ = layer(x, Graph.from_edge_index(torch.empty(2, 0, dtype=torch.long), 4))
    assert out.dtype == torch.float32
    # Without edges every hop is x (each node's only neighbour is its own unit loop).
    assert_close(out, 3 * torch.sigmoid(layer.proj(x)) * x)
    empty, _ = layer(torch.randn(0, 3), Graph.from_edge_index(torch.empty(2, 0, dtype=torch.long), 0))
    assert empty.shape == (0, 3)


def test_bad_arguments():
    with pytest.raises(ValueError, match="K must be >= 0"):
        DAGNNConv(3, 3, K=-1)
    with pytest.raises(ValueError, match="keeps the width"):
        DAGNNConv(3, 4)
    layer = DAGNNConv(3, 3, K=2)
    graph = Graph.from_edge_index(torch.tensor([[0, 1], [1, 0]]), 2)
    with pytest.raises(ValueError, match="edge"):
        layer(torch.randn(2, 3), graph, torch.randn(2, 1))
    with pytest.raises(ValueError, match="in_channels"):
        layer(torch.randn(2, 4), graph)


def test_model_is_mlp_then_propagation():
    """models.DAGNN in eval mode: lin2(relu(lin1(x))) propagated by its DAGNNConv (dense reference)."""
    from torch_geometric.data import Data

    from gnnlab.models import DAGNN

    g = torch.Generator().manual_seed(2)
    edge_index = random_graph(10, 24, generator=g, unique=True, num_isolated=1)
    x = torch.randn(10, 6, generator=g, dtype=DTYPE)
    model = DAGNN(6, 5, 3, K=4, dropout=0.8).to(DTYPE).eval()
    out = model(Data(x=x, edge_index=edge_index))
    z = model.lin2(torch.relu(model.lin1(x))).detach()
    w, b = model.prop.proj.weight.detach(), model.prop.proj.bias.detach()
    assert_close(out, dense_dagnn(z, adjacency(edge_index, 10), w, b, 4))
    with pytest.raises(ValueError, match="in_channels=None"):
        DAGNN(None, 5, 3)
