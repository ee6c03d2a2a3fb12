"""DGCNNConv against the dense form of its equation, D̃⁻¹ (A + I) X W + b."""
from __future__ import annotations

import pytest
import torch
from _dense import DTYPE, adjacency, random_graph
from torch.testing import assert_close

from gnnlab.nn.conv import DGCNNConv
from gnnlab.ops import Graph

N = 11


def _layer(in_ch: int, out_ch: int, seed: int, bias: bool = True) -> DGCNNConv:
    torch.manual_seed(seed)
    layer = DGCNNConv(in_ch, out_ch, bias=bias).to(DTYPE)
    if bias:
        with torch.no_grad():
            layer.lin.bias.uniform_(-1.0, 1.0)
    return layer


def dense(x, edge_index, weight, bias):
    """(A + I) row-normalised, A counting duplicate edges and given self loops, I added on top."""
    a = adjacency(edge_index, x.size(0)) + torch.eye(x.size(0), dtype=DTYPE)
    out = (a / a.sum(1, keepdim=True)) @ x @ weight.T
    return out if bias is None else out + bias


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize(("in_ch", "out_ch"), [(4, 6), (6, 1), (3, 3)])
@pytest.mark.parametrize("bias", [True, False])
def test_matches_the_dense_equation(seed, in_ch, out_ch, bias):
    g = torch.Generator().manual_seed(seed)
    # Isolated nodes (mean over the self loop alone), given self loops (one doubled) and duplicates.
    edge_index = random_graph(N, 30, generator=g, num_isolated=2, num_self_loops=2)
    x = torch.randn(N, in_ch, generator=g, dtype=DTYPE)
    layer = _layer(in_ch, out_ch, seed, bias)
    out, edge_out = layer(x, Graph.from_edge_index(edge_index, N))
    assert edge_out is None
    expected = dense(x, edge_index, layer.lin.weight.detach(), None if layer.lin.bias is None else layer.lin.bias.detach())
    assert_close(out, expected)


def test_gradients_and_second_order():
    g = torch.Generator().manual_seed(7)
    edge_index = random_graph(N, 25, generator=g)
    graph = Graph.from_edge_index(edge_index, N)
    layer = _layer(3, 2, 0)
    x = torch.randn(N, 3, generator=g, dtype=DTYPE, requires_grad=True)
    params = tuple(layer.parameters())
    fn = lambda x, *p: torch.func.functional_call(layer, dict(zip(("lin.weight", "lin.bias"), p)), (x, graph))[0]
    assert torch.autograd.gradcheck(fn, (x, *params))
    assert torch.autograd.gradgradcheck(fn, (x, *params))


def test_prefix_targets_give_the_first_rows():
    g = torch.Generator().manual_seed(3)
    edge_index = random_graph(N, 30, generator=g)
    x = torch.randn(N, 4, generator=g, dtype=DTYPE)
    layer = _layer(4, 5, 1)
    full = layer(x, Graph.from_edge_index(edge_index, N))[0]
    keep = edge_index[1] < 4
    prefix = Graph.from_edge_index(edge_index[:, keep], N, num_dst=4)
    assert_close(layer(x, prefix)[0], full[:4])


def test_empty_graph_and_bad_input():
    layer = _layer(4, 2, 0)
    out, _ = layer(torch.zeros(0, 4, dtype=DTYPE), Graph.from_edge_index(torch.zeros(2, 0, dtype=torch.long), 0))
    assert out.shape == (0, 2)
    graph = Graph.from_edge_index(torch.tensor([[0, 1], [1, 0]]), 2)
    with pytest.raises(ValueError, match="4"):
        layer(torch.zeros(2, 3, dtype=DTYPE), graph)
    with pytest.raises(ValueError, match="edge"):
        layer(torch.zeros(2, 4, dtype=DTYPE), graph, torch.zeros(2, 1, dtype=DTYPE))
