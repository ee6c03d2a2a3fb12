"""GATConv against a dense masked-softmax reference."""
from __future__ import annotations

import functools

import pytest
import torch
from _dense import DTYPE, adjacency, dense_edge_features, gat, permute_graph, random_graph
from torch.testing import assert_close

from gnnlab.nn.conv import GATConv
from gnnlab.ops import Graph

N = 10


def _run(layer: GATConv, x, edge_index, edge_attr=None):
    # The layer contract: conv(x, graph, edge_attr) -> (x_out, edge_out); GAT only reads edge features.
    out, edge_out = layer(x, Graph.from_edge_index(edge_index, x.size(0)), edge_attr)
    assert edge_out is edge_attr
    return out


def _randomize(layer: torch.nn.Module, seed: int) -> None:
    # Larger-than-default attention vectors make the softmax clearly non-uniform.
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype))


def _reference(layer: GATConv, x, edge_index, edge_attr=None, *, add_self_loops: bool, negative_slope=0.2):
    conv = layer.conv
    heads, c = layer.heads, layer.head_channels
    mask = adjacency(edge_index, N)
    feats = None
    if edge_attr is not None:
        feats = dense_edge_features(edge_index, edge_attr, N)
    if add_self_loops:
        # Existing loops are replaced by one loop whose feature is the mean over the other in-edges.
        mask.fill_diagonal_(0.0)
        if feats is not None:
            idx = torch.arange(N)
            feats[idx, idx] = 0.0
            count = mask.sum(1, keepdim=True)
            feats[idx, idx] = feats.sum(1) / count.clamp(min=1.0)
        mask.fill_diagonal_(1.0)
    return gat(
        x,
        mask,
        conv.lin.weight.detach(),
        conv.att_src.detach().view(heads, c),
        conv.att_dst.detach().view(heads, c),
        heads,
        layer.concat,
        negative_slope,
        None if conv.bias is None else conv.bias.detach(),
        edge_feats=feats,
        edge_weight=None if feats is None else conv.lin_edge.weight.detach(),
        att_edge=None if feats is None else conv.att_edge.detach().view(heads, c),
    )


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("add_self_loops", [True, False])
@pytest.mark.parametrize(
    "heads, out_ch, concat, bias", [(3, 12, True, True), (1, 5, True, True), (2, 4, False, True), (4, 8, True, False)]
)
def test_matches_dense_reference_with_duplicates(seed, add_self_loops, heads, out_ch, concat, bias):
    g = torch.Generator().manual_seed(seed)
    edge_index = random_graph(N, 30, generator=g, num_isolated=2, num_self_loops=2)
    x = torch.randn(N, 6, generator=g, dtype=DTYPE)
    layer = GATConv(6, out_ch, heads=heads, concat=concat, add_self_loops=add_self_loops, bias=bias).to(DTYPE)
    _randomize(layer, seed)
    out = _run(layer, x, edge_index)
    assert out.shape == (N, out_ch)
    assert_close(out, _reference(layer, x, edge_index, add_self_loops=add_self_loops))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("add_self_loops", [True, False])
@pytest.mark.parametrize("concat", [True, False])
def test_matches_dense_reference_with_edge_features(seed, add_self_loops, concat):
    g = torch.Generator().manual_seed(seed)
    edge_index = random_graph(N, 35, generator=g, unique=True, num_isolated=2)
    assert (edge_index[0] == edge_index[1]).any(), "the graph should contain a self loop"
    x = torch.randn(N, 6, generator=g, dtype=DTYPE)
    edge_attr = torch.randn(edge_index.size(1), 3, generator=g, dtype=DTYPE)
    layer = GATConv(6, 8, heads=2, concat=concat, edge_dim=3, add_self_loops=add_self_loops).to(DTYPE)
    _randomize(layer, seed)
    out = _run(layer, x, edge_index, edge_attr)
    assert_close(out, _reference(layer, x, edge_index, edge_attr, add_self_loops=add_self_loops))


def test_negative_slope_is_used():
    g = torch.Generator().manual_seed(0)
    edge_index = random_graph(N, 30, generator=g)
    x = torch.randn(N, 6, generator=g, dtype=DTYPE)
    layer = GATConv(6, 4, heads=2, negative_slope=0.05).to(DTYPE)
    _randomize(layer, 0)
    expected = _reference(layer, x, edge_index, add_self_loops=True, negative_slope=0.05)
    assert_close(_run(layer, x, edge_index), expected)
    assert not torch.allclose(expected, _reference(layer, x, edge_index, add_self_loops=True))


def test_isolated_node_without_loops_gets_bias():
    edge_index = torch.tensor([[0], [1]])
    x = torch.randn(3, 2, dtype=DTYPE)
    layer = GATConv(2, 4, heads=2, add_self_loops=False).to(DTYPE)
    _randomize(layer, 1)
    out = _run(layer, x, edge_index)
    assert_close(out[0], layer.conv.bias.detach())
    assert_close(out[2], layer.conv.bias.detach())


def test_attention_dropout_only_in_training():
    g = torch.Generator().manual_seed(4)
    edge_index = random_graph(N, 30, generator=g)
    x = torch.randn(N, 6, generator=g, dtype=DTYPE)
    layer = GATConv(6, 8, heads=2, dropout=0.5).to(DTYPE)
    _randomize(layer, 4)
    layer.eval()
    assert_close(_run(layer, x, edge_index), _reference(layer, x, edge_index, add_self_loops=True))
    layer.train()
    torch.manual_seed(0)
    assert not torch.allclose(_run(layer, x, edge_index), _reference(layer, x, edge_index, add_self_loops=True))


def test_head_divisibility():
    with pytest.raises(ValueError, match="not divisible by heads=3"):
        GATConv(6, 8, heads=3)
    # Averaged heads each have the full width, so any head count is fine.
    layer = GATConv(6, 8, heads=3, concat=False)
    assert layer.head_channels == 8
    assert GATConv(6, 8, heads=4).head_channels == 2
    with pytest.raises(ValueError, match="heads"):
        GATConv(6, 8, heads=0)


def test_supports_edge_attr_follows_edge_dim():
    assert GATConv(6, 8, heads=2).supports_edge_attr is False
    assert GATConv(6, 8, heads=2, edge_dim=3).supports_edge_attr is True
    assert GATConv.supports_edge_attr is False


def test_gradients_reach_all_parameters():
    g = torch.Generator().manual_seed(5)
    edge_index = random_graph(N, 35, generator=g, unique=True)
    x = torch.randn(N, 6, generator=g, dtype=DTYPE)
    edge_attr = torch.randn(edge_index.size(1), 3, generator=g, dtype=DTYPE)
    layer = GATConv(6, 8, heads=2, edge_dim=3).to(DTYPE)
    _randomize(layer, 5)
    _run(layer, x, edge_index, edge_attr).pow(2).sum().backward()
    names = [n for n, _ in layer.named_parameters()]
    assert any("att_edge" in n for n in names) and any("lin_edge" in n for n in names)
    for name, p in layer.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("edge_dim", [None, 3])
def test_permutation_equivariance(edge_dim):
    g = torch.Generator().manual_seed(6)
    edge_index = random_graph(N, 30, generator=g, unique=edge_dim is not None)
    x = torch.randn(N, 6, generator=g, dtype=DTYPE)
    edge_attr = None if edge_dim is None else torch.randn(edge_index.size(1), 3, generator=g, dtype=DTYPE)
    layer = GATConv(6, 8, heads=2, edge_dim=edge_dim).to(DTYPE)
    _randomize(layer, 6)
    perm = torch.randperm(N, generator=g)
    xp, eip = permute_graph(perm, x, edge_index)
    assert_close(_run(layer, xp, eip, edge_attr), _run(layer, x, edge_index, edge_attr)[perm])


_edge = functools.partial(torch.randn, dtype=DTYPE)


def _g(edge_index, num_nodes=N):
    return Graph.from_edge_index(edge_index, num_nodes)


@pytest.mark.parametrize(
    "edge_dim, make_input, match",
    [
        # A malformed edge_index is refused when the graph is built, before any layer sees it.
        (None, lambda x, ei: (x, _g(torch.tensor([[0, N], [1, 2]]))), "out of range"),
        (None, lambda x, ei: (x, _g(torch.tensor([[0, 1], [1, -2]]))), "entry -2"),
        (None, lambda x, ei: (x, _g(ei.reshape(1, -1))), r"\[2, num_edges\]"),
        (None, lambda x, ei: (x[:, :5], _g(ei)), "in_channels=6"),
        (None, lambda x, ei: (x[0], _g(ei)), "2-D"),
        # The old call, with an edge_index where the graph goes, names the graph argument.
        (None, lambda x, ei: (x, ei), "graph must be a gnnlab.ops.Graph"),
        (3, lambda x, ei: (x, ei, _edge(ei.size(1), 3)), "graph must be a gnnlab.ops.Graph"),
        (None, lambda x, ei: (x, _g(ei, N + 1)), f"x has {N} nodes but the graph has {N + 1}"),
        (None, lambda x, ei: (x, _g(ei), _edge(ei.size(1), 3)), "built without edge_dim"),
        (3, lambda x, ei: (x, _g(ei)), "requires edge_attr"),
        (3, lambda x, ei: (x, _g(ei), _edge(ei.size(1), 2)), "edge_attr must have shape"),
        # edge_attr rows must match the edges of the graph it is given.
        (3, lambda x, ei: (x, _g(ei[:, 1:]), _edge(ei.size(1), 3)), "edge_attr must have shape"),
    ],
)
def test_bad_inputs_raise(edge_dim, make_input, match):
    g = torch.Generator().manual_seed(7)
    edge_index = random_graph(N, 20, generator=g)
    x = torch.randn(N, 6, generator=g, dtype=DTYPE)
    layer = GATConv(6, 8, heads=2, edge_dim=edge_dim).to(DTYPE)
    with pytest.raises(ValueError, match=match):
        layer(*make_input(x, edge_index))


@pytest.mark.parametrize("edge_dim", [None, 3])
def test_returns_the_layer_contract_pair(edge_dim):
    g = torch.Generator().manual_seed(8)
    edge_index = random_graph(N, 30, generator=g, unique=True)
    x = torch.randn(N, 6, generator=g, dtype=DTYPE)
    edge_attr = None if edge_dim is None else torch.randn(edge_index.size(1), 3, generator=g, dtype=DTYPE)
    layer = GATConv(6, 8, heads=2, edge_dim=edge_dim).to(DTYPE)
    result = layer(x, Graph.from_edge_index(edge_index, N), edge_attr)
    assert isinstance(result, tuple) and len(result) == 2
    out, edge_out = result
    assert out.shape == (N, 8)
    # Edge features are only read: handed back as given (None without edge_dim).
    assert edge_out is edge_attr


def test_reads_the_graph_it_is_given():
    # The same layer on two graphs over the same nodes follows each graph (no cached structure),
    # and builds no other graph: existing self loops are masked, not removed.
    g = torch.Generator().manual_seed(9)
    x = torch.randn(N, 6, generator=g, dtype=DTYPE)
    layer = GATConv(6, 8, heads=2).to(DTYPE)
    _randomize(layer, 9)
    first, second = random_graph(N, 30, generator=g), random_graph(N, 30, generator=g)
    graph = Graph.from_edge_index(first, N)
    out_first, _ = layer(x, graph)
    assert "without_self_loops" not in graph._derived
    out_second, _ = layer(x, Graph.from_edge_index(second, N))
    assert_close(out_first, _reference(layer, x, first, add_self_loops=True))
    assert_close(out_second, _reference(layer, x, second, add_self_loops=True))
    assert not torch.allclose(out_first, out_second)
    assert_close(layer(x, graph)[0], out_first)


def test_repr():
    assert repr(GATConv(6, 8, heads=2)) == "GATConv(6, 8, heads=2)"
