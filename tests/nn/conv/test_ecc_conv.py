"""ECConv against torch_geometric.nn.NNConv with the same weights (the edge-conditioned convolution)."""
from __future__ import annotations

import pytest
import torch
import torch_geometric.nn
from _dense import DTYPE, random_graph
from torch.testing import assert_close

from gnnlab.nn.conv import ECConv
from gnnlab.ops import Graph

N = 11


def _pair(in_ch: int, out_ch: int, edge_dim: int, seed: int = 0):
    torch.manual_seed(seed)
    ours = ECConv(in_ch, out_ch, edge_dim=edge_dim).to(DTYPE)
    with torch.no_grad():
        ours.bias.uniform_(-1.0, 1.0)  # non-zero, so that a dropped bias shows
    filters = torch.nn.Sequential(torch.nn.Linear(edge_dim, 16), torch.nn.ReLU(), torch.nn.Linear(16, in_ch * out_ch))
    theirs = torch_geometric.nn.NNConv(in_ch, out_ch, filters, aggr="add").to(DTYPE)
    theirs.load_state_dict(ours.state_dict(), strict=True)
    return ours, theirs


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize(("in_ch", "out_ch", "edge_dim"), [(4, 6, 1), (3, 2, 3)])
def test_matches_pyg_nnconv_with_gradients(seed, in_ch, out_ch, edge_dim):
    g = torch.Generator().manual_seed(seed)
    edge_index = random_graph(N, 30, generator=g, num_isolated=2, num_self_loops=2)
    x = torch.randn(N, in_ch, generator=g, dtype=DTYPE)
    e = torch.randn(edge_index.size(1), edge_dim, generator=g, dtype=DTYPE)
    ours, theirs = _pair(in_ch, out_ch, edge_dim, seed)
    results = []
    for layer, call in ((ours, lambda x: ours(x, Graph.from_edge_index(edge_index, N), e)[0]),
                        (theirs, lambda x: theirs(x, edge_index, e))):
        xr = x.clone().requires_grad_()
        out = call(xr)
        (out * torch.linspace(-1, 2, out.numel(), dtype=DTYPE).view_as(out)).sum().backward()
        results.append((out.detach(), xr.grad, {n: p.grad for n, p in layer.named_parameters()}))
    (o1, gx1, gp1), (o2, gx2, gp2) = results
    assert_close(o1, o2)
    assert_close(gx1, gx2)
    for name in gp2:
        assert_close(gp1[name], gp2[name], msg=name)


def test_second_order_and_one_dimensional_edge_weights():
    g = torch.Generator().manual_seed(9)
    edge_index = random_graph(N, 20, generator=g)
    graph = Graph.from_edge_index(edge_index, N)
    ours, _ = _pair(2, 3, 1)
    w = torch.randn(edge_index.size(1), generator=g, dtype=DTYPE)
    out, edge_out = ours(torch.randn(N, 2, generator=g, dtype=DTYPE), graph, w)
    assert out.shape == (N, 3) and edge_out is w
    x = torch.randn(N, 2, generator=g, dtype=DTYPE, requires_grad=True)
    wr = w.clone().requires_grad_()
    assert torch.autograd.gradgradcheck(lambda x, w: ours(x, graph, w)[0], (x, wr))


def test_bad_input():
    ours, _ = _pair(2, 3, 1)
    graph = Graph.from_edge_index(torch.tensor([[0, 1], [1, 0]]), 2)
    with pytest.raises(ValueError, match="requires edge_attr"):
        ours(torch.zeros(2, 2, dtype=DTYPE), graph)
    with pytest.raises(ValueError, match=r"edge_attr must have shape \[num_edges=2, 1\]"):
        ours(torch.zeros(2, 2, dtype=DTYPE), graph, torch.zeros(3, 1, dtype=DTYPE))


def test_no_edges_leaves_the_root_term_and_nan_stays_on_its_node():
    ours, _ = _pair(2, 3, 1)
    x = torch.randn(4, 2, dtype=DTYPE)
    empty = Graph.from_edge_index(torch.zeros(2, 0, dtype=torch.long), 4)
    out, _ = ours(x, empty, torch.zeros(0, 1, dtype=DTYPE))
    torch.testing.assert_close(out, ours.lin(x) + ours.bias)
    graph = Graph.from_edge_index(torch.tensor([[0, 1], [1, 2]]), 4)
    x[0, 0] = float("nan")
    out, _ = ours(x, graph, torch.ones(2, 1, dtype=DTYPE))
    assert torch.isnan(out[:2]).all() and torch.isfinite(out[2:]).all()  # node 0 and its target 1
