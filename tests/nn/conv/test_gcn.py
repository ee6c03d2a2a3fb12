"""GCNConv against a dense normalised-adjacency reference."""
from __future__ import annotations

import pytest
import torch
from _dense import DTYPE, adjacency, gcn, permute_graph, random_graph
from torch.testing import assert_close

from gnnlab.nn.conv import GCNConv
from gnnlab.ops import Graph

N = 9


def _setup(seed: int, num_nodes: int = 9, num_edges: int = 20, in_ch: int = 5, out_ch: int = 7):
    g = torch.Generator().manual_seed(seed)
    edge_index = random_graph(num_nodes, num_edges, generator=g, num_isolated=2, num_self_loops=2)
    x = torch.randn(num_nodes, in_ch, generator=g, dtype=DTYPE)
    return x, edge_index


def _graph(edge_index, num_nodes: int = N) -> Graph:
    return Graph.from_edge_index(edge_index, num_nodes)


def run(layer, x, edge_index, edge_attr=None):
    """The node output of ``layer`` on the graph of ``edge_index`` (the first element of the pair)."""
    return layer(x, _graph(edge_index, x.size(0)), edge_attr)[0]


def _randomize(layer: torch.nn.Module, seed: int) -> None:
    # Non-zero biases so that a dropped bias term would be noticed.
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(
    "normalize, add_self_loops, bias",
    [(True, True, True), (True, False, True), (False, False, True), (False, True, False), (True, True, False)],
)
def test_matches_dense_reference(seed, normalize, add_self_loops, bias):
    x, edge_index = _setup(seed)
    torch.manual_seed(seed)
    layer = GCNConv(5, 7, bias=bias, normalize=normalize, add_self_loops=add_self_loops).to(DTYPE)
    _randomize(layer, seed)
    out = run(layer, x, edge_index)
    bias_t = layer.bias.detach() if bias else None
    expected = gcn(x, adjacency(edge_index, 9), layer.lin.weight.detach(), bias_t, normalize, add_self_loops)
    assert out.shape == (9, 7)
    assert_close(out, expected)


def test_duplicates_count_and_self_loops_are_replaced():
    # Two copies of 0 -> 1 and a self loop on 1: node 1 has degree 3 after its loop is reset to one.
    edge_index = torch.tensor([[0, 0, 1], [1, 1, 1]])
    x = torch.tensor([[1.0], [10.0]], dtype=DTYPE)
    layer = GCNConv(1, 1, bias=False).to(DTYPE)
    with torch.no_grad():
        layer.lin.weight.fill_(1.0)
    out = run(layer, x, edge_index)
    # deg(0) = 1 (own loop), deg(1) = 3; out_1 = 2 * x_0 / sqrt(1 * 3) + x_1 / 3.
    expected = torch.tensor([[1.0], [2.0 / 3**0.5 + 10.0 / 3.0]], dtype=DTYPE)
    assert_close(out, expected)


def test_normalisation_is_computed_once_per_graph_and_follows_the_graph():
    x, edge_index = _setup(0)
    graph = _graph(edge_index)
    first, second = GCNConv(5, 7).to(DTYPE), GCNConv(5, 7).to(DTYPE)
    first(x, graph)
    stored = dict(graph._derived)
    assert ("gcn_norm", True, DTYPE) in stored  # the normalised weights, memoised on this graph
    assert "without_self_loops" not in stored  # self loops are masked, no second graph is built
    second(x, graph)
    assert all(graph._derived[k] is v for k, v in stored.items())  # reused, not recomputed
    # The layer reads the graph it is given: another graph gives another result, no layer keeps an old graph.
    assert_close(first(x, graph)[0], run(first, x, edge_index))
    assert not torch.allclose(first(x, _graph(edge_index[:, :3]))[0], first(x, graph)[0])


def test_gradients_reach_all_parameters():
    x, edge_index = _setup(1)
    x.requires_grad_(True)
    layer = GCNConv(5, 7).to(DTYPE)
    run(layer, x, edge_index).pow(2).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, p in layer.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_permutation_equivariance():
    x, edge_index = _setup(2)
    layer = GCNConv(5, 7).to(DTYPE)
    _randomize(layer, 2)
    perm = torch.randperm(9, generator=torch.Generator().manual_seed(5))
    xp, eip = permute_graph(perm, x, edge_index)
    assert_close(run(layer, xp, eip), run(layer, x, edge_index)[perm])


@pytest.mark.parametrize(
    "make_input, match",
    [
        (lambda x, ei: (x, _graph(torch.tensor([[0, 9], [1, 2]]))), "out of range"),
        (lambda x, ei: (x, _graph(torch.tensor([[0, -1], [1, 2]]))), r"entry -1 .* out of range"),
        (lambda x, ei: (x[:, :4], _graph(ei)), "in_channels=5"),
        (lambda x, ei: (x[0], _graph(ei)), "2-D"),
        (lambda x, ei: (x, _graph(ei[:1])), r"\[2, num_edges\]"),
        (lambda x, ei: (x, _graph(torch.zeros(3, 4, dtype=torch.long))), r"\[2, num_edges\]"),
        (lambda x, ei: (x, _graph(ei.to(DTYPE))), "dtype"),
        (lambda x, ei: (x, ei), "graph must be a gnnlab.ops.Graph, got Tensor"),
        (lambda x, ei: (x, _graph(ei, N + 1)), f"x has {N} nodes but the graph has {N + 1}/{N + 1}"),
    ],
)
def test_bad_inputs_raise(make_input, match):
    x, edge_index = _setup(3)
    layer = GCNConv(5, 7).to(DTYPE)
    with pytest.raises(ValueError, match=match):
        layer(*make_input(x, edge_index))


def test_edge_attr_is_rejected():
    x, edge_index = _setup(3)
    with pytest.raises(ValueError, match="does not use edge features"):
        run(GCNConv(5, 7).to(DTYPE), x, edge_index, torch.randn(edge_index.size(1), 5, dtype=DTYPE))


def test_interface():
    layer = GCNConv(5, 7)
    assert GCNConv.supports_edge_attr is False
    assert repr(layer) == "GCNConv(5, 7)"
    assert GCNConv(5, 7, bias=False).bias is None
