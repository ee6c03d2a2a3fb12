"""ConvLayer: conv -> batch norm -> activation -> dropout -> residual, with edge features passed through."""
from __future__ import annotations

import functools

import pytest
import torch
from torch.testing import assert_close

from gnnlab.nn.conv import GATConv, GatedGCNConv, GCNConv, GINConv, GINEConv
from gnnlab.nn.layers import ConvLayer
from gnnlab.ops import Graph

DTYPE = torch.float64
N = 8


class _LinearNeighbourSum(torch.nn.Module):
    """A toy conv, ``out_i = W sum_{j -> i} x_j``, whose output is easy to recompute (layer contract:
    ``(x, graph, edge_attr) -> (out, edge_attr or None)``)."""

    def __init__(self, in_channels: int, out_channels: int, supports_edge_attr: bool = False):
        super().__init__()
        self.lin = torch.nn.Linear(in_channels, out_channels, bias=False)
        self.supports_edge_attr = supports_edge_attr
        self.seen_edge_attr = "not called"
        self.seen_graph = None

    def forward(self, x, graph, edge_attr=None):
        self.seen_edge_attr, self.seen_graph = edge_attr, graph
        edge_index = graph.edge_index
        summed = torch.zeros_like(x).index_add(0, edge_index[1], x[edge_index[0]])
        out = self.lin(summed)
        if edge_attr is not None:
            out = out + torch.zeros_like(out).index_add(0, edge_index[1], edge_attr[:, :1].expand(-1, out.size(1)))
        return out, (edge_attr if self.supports_edge_attr else None)


def _data(seed: int = 0, width: int = 4):
    g = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(N, (2, 20), generator=g)
    x = torch.randn(N, width, generator=g, dtype=DTYPE)
    edge_attr = torch.randn(20, 3, generator=g, dtype=DTYPE)
    return x, edge_index, edge_attr


def _g(edge_index):
    return Graph.from_edge_index(edge_index, N)


def _dense_toy(x, edge_index, weight):
    a = torch.zeros(N, N, dtype=DTYPE)
    a.index_put_((edge_index[1], edge_index[0]), torch.ones(edge_index.size(1), dtype=DTYPE), accumulate=True)
    return a @ x @ weight.T


def _bn(z, bn, training):
    mean, var = (z.mean(0), z.var(0, unbiased=False)) if training else (bn.running_mean, bn.running_var)
    return (z - mean) / torch.sqrt(var + bn.eps) * bn.weight.detach() + bn.bias.detach()


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("batch_norm", [True, False])
@pytest.mark.parametrize("residual, out_ch", [(True, 4), (False, 4), (True, 6)])
def test_matches_reference(training, batch_norm, residual, out_ch):
    x, edge_index, edge_attr = _data()
    torch.manual_seed(0)
    layer = ConvLayer(4, out_ch, _LinearNeighbourSum, batch_norm=batch_norm, residual=residual).to(DTYPE)
    if batch_norm:
        with torch.no_grad():
            layer.norm.weight.uniform_(0.5, 1.5)
            layer.norm.bias.uniform_(-0.5, 0.5)
            layer.norm.running_mean.uniform_(-1, 1)
            layer.norm.running_var.uniform_(0.5, 2)
    layer.train(training)
    out, e_out = layer(x, _g(edge_index), edge_attr)

    z = _dense_toy(x, edge_index, layer.conv.lin.weight.detach())
    if batch_norm:
        z = _bn(z, layer.norm, training)
    expected = torch.relu(z)
    if residual and out_ch == 4:
        expected = expected + x
    assert layer.residual is (residual and out_ch == 4)
    assert out.shape == (N, out_ch)
    assert_close(out, expected)
    assert e_out is edge_attr


def test_edge_attr_reaches_only_convs_that_support_it():
    x, edge_index, edge_attr = _data()
    graph = _g(edge_index)
    without = ConvLayer(4, 4, _LinearNeighbourSum).to(DTYPE)
    _, e_out = without(x, graph, edge_attr)
    assert without.conv.seen_edge_attr is None
    assert e_out is edge_attr  # carried past the conv
    with_edges = ConvLayer(4, 4, functools.partial(_LinearNeighbourSum, supports_edge_attr=True)).to(DTYPE)
    with_edges(x, graph, edge_attr)
    assert with_edges.conv.seen_edge_attr is edge_attr


def test_conv_reads_the_graph_it_is_given():
    x, edge_index, _ = _data(6)
    layer = ConvLayer(4, 4, _LinearNeighbourSum, batch_norm=False, residual=False, act=None).to(DTYPE)
    graph = _g(edge_index)
    assert_close(layer(x, graph)[0], _dense_toy(x, edge_index, layer.conv.lin.weight.detach()))
    assert layer.conv.seen_graph is graph
    # Another graph over the same nodes: the output follows its edges.
    other = edge_index[:, 5:]
    assert_close(layer(x, _g(other))[0], _dense_toy(x, other, layer.conv.lin.weight.detach()))


@pytest.mark.parametrize(
    "conv, needs_edges",
    [
        (functools.partial(GCNConv, bias=False), False),
        (GINConv, False),
        (functools.partial(GINEConv, edge_dim=3), True),
        (functools.partial(GATConv, heads=2), False),
        (functools.partial(GATConv, heads=2, edge_dim=3), True),
    ],
)
def test_gnnlab_convs_and_gradients(conv, needs_edges):
    x, edge_index, edge_attr = _data(1)
    graph = _g(edge_index)
    layer = ConvLayer(4, 4, conv).to(DTYPE)
    assert layer.uses_edge_attr is needs_edges
    # GCN and GIN reject edge features, so passing them here checks that the layer filters them out.
    out, e_out = layer(x, graph, edge_attr)
    assert out.shape == (N, 4) and e_out is edge_attr
    layer.eval()
    out, _ = layer(x, graph, edge_attr)
    out.pow(2).sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert layer.norm.weight.grad.abs().sum() > 0


def test_dropout_only_in_training():
    x, edge_index, edge_attr = _data(2)
    graph = _g(edge_index)
    layer = ConvLayer(4, 4, _LinearNeighbourSum, batch_norm=False, residual=False, dropout=0.5).to(DTYPE)
    layer.eval()
    expected = torch.relu(_dense_toy(x, edge_index, layer.conv.lin.weight.detach()))
    assert_close(layer(x, graph)[0], expected)
    layer.train()
    torch.manual_seed(0)
    dropped, _ = layer(x, graph)
    kept = dropped != 0
    assert not torch.allclose(dropped, expected)
    assert_close(dropped[kept], 2.0 * expected[kept])


def test_activation_choice():
    x, edge_index, _ = _data(3)
    graph = _g(edge_index)
    layer = ConvLayer(4, 4, _LinearNeighbourSum, batch_norm=False, residual=False, act=torch.nn.Tanh).to(DTYPE)
    assert_close(layer(x, graph)[0], torch.tanh(_dense_toy(x, edge_index, layer.conv.lin.weight.detach())))
    layer = ConvLayer(4, 4, _LinearNeighbourSum, batch_norm=False, residual=False, act=None).to(DTYPE)
    assert_close(layer(x, graph)[0], _dense_toy(x, edge_index, layer.conv.lin.weight.detach()))


def test_returns_the_edge_features_a_conv_updates():
    x, edge_index, _ = _data(4)
    graph = _g(edge_index)
    layer = ConvLayer(4, 4, GatedGCNConv, batch_norm=False, residual=False, act=None).to(DTYPE).eval()
    assert layer.uses_edge_attr
    edge_attr = torch.randn(edge_index.size(1), 4, dtype=DTYPE)
    out, e_out = layer(x, graph, edge_attr)
    h, e = layer.conv(x, graph, edge_attr)
    assert_close(out, h)
    assert_close(e_out, e)
    assert e_out.shape == edge_attr.shape and not torch.allclose(e_out, edge_attr)


def test_bad_input_propagates_value_error():
    x, edge_index, _ = _data(5)
    layer = ConvLayer(4, 4, GCNConv).to(DTYPE)
    with pytest.raises(ValueError, match="graph must be a gnnlab.ops.Graph"):
        layer(x, edge_index)
    with pytest.raises(ValueError, match="nodes but the graph has"):
        layer(x, Graph.from_edge_index(edge_index, N + 1))
    with pytest.raises(ValueError, match="does not use edge features"):
        layer.conv(x, _g(edge_index), torch.randn(edge_index.size(1), 3, dtype=DTYPE))
    with pytest.raises(ValueError, match="dropout"):
        ConvLayer(4, 4, GCNConv, dropout=1.0)
