"""GINConv against a dense sum-aggregation reference."""
from __future__ import annotations

import pytest
import torch
from _dense import DTYPE, adjacency, apply_batch_norm, gin_aggregate, linear, permute_graph, random_graph
from torch.testing import assert_close

from gnnlab.nn.conv import GINConv
from gnnlab.ops import Graph

N = 10


def _setup(seed: int, num_nodes: int = 10, num_edges: int = 25, in_ch: int = 4):
    g = torch.Generator().manual_seed(seed)
    edge_index = random_graph(num_nodes, num_edges, generator=g, num_isolated=2, num_self_loops=2)
    x = torch.randn(num_nodes, in_ch, generator=g, dtype=DTYPE)
    return x, edge_index


def _graph(edge_index, num_nodes: int = N) -> Graph:
    return Graph.from_edge_index(edge_index, num_nodes)


def run(layer, x, edge_index, edge_attr=None):
    """The node output of ``layer`` on the graph of ``edge_index`` (the first element of the pair)."""
    return layer(x, _graph(edge_index, x.size(0)), edge_attr)[0]


def _default_mlp_reference(z, mlp, training):
    hidden = apply_batch_norm(linear(z, mlp[0]), mlp[1], training)
    return linear(torch.relu(hidden), mlp[3])


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("eps", [0.0, 0.35])
@pytest.mark.parametrize("training", [True, False])
def test_default_mlp_matches_dense_reference(seed, eps, training):
    x, edge_index = _setup(seed)
    torch.manual_seed(seed)
    layer = GINConv(4, 6, eps=eps).to(DTYPE)
    bn = layer.mlp[1]
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
        bn.running_mean.uniform_(-1.0, 1.0)
        bn.running_var.uniform_(0.5, 2.0)
    layer.train(training)
    out = run(layer, x, edge_index)
    z = gin_aggregate(x, adjacency(edge_index, 10), eps)
    assert out.shape == (10, 6)
    assert_close(out, _default_mlp_reference(z, layer.mlp, training))


@pytest.mark.parametrize("seed", range(3))
def test_custom_mlp_and_trained_eps(seed):
    x, edge_index = _setup(seed)
    torch.manual_seed(seed)
    mlp = torch.nn.Linear(4, 3)
    layer = GINConv(4, 3, eps=-0.25, train_eps=True, mlp=mlp).to(DTYPE)
    assert layer.mlp is mlp
    with torch.no_grad():
        layer.eps.fill_(0.7)
    out = run(layer, x, edge_index)
    expected = linear(gin_aggregate(x, adjacency(edge_index, 10), 0.7), mlp)
    assert_close(out, expected)
    # reset_parameters restores the initial eps.
    layer.reset_parameters()
    assert float(layer.eps.detach()) == pytest.approx(-0.25)


def test_default_mlp_shape():
    mlp = GINConv(4, 6).mlp
    kinds = [type(m) for m in mlp]
    assert kinds == [torch.nn.Linear, torch.nn.BatchNorm1d, torch.nn.ReLU, torch.nn.Linear]
    assert (mlp[0].in_features, mlp[0].out_features, mlp[1].num_features) == (4, 6, 6)
    assert (mlp[3].in_features, mlp[3].out_features) == (6, 6)


def test_gradients_reach_all_parameters():
    x, edge_index = _setup(1)
    layer = GINConv(4, 6, train_eps=True).to(DTYPE)
    # Eval mode: with batch statistics the first bias has an exactly zero gradient (BN removes it).
    layer.eval()
    run(layer, x, edge_index).pow(2).sum().backward()
    names = {name for name, _ in layer.named_parameters()}
    assert any(name.endswith("eps") for name in names)
    for name, p in layer.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_permutation_equivariance():
    x, edge_index = _setup(2)
    layer = GINConv(4, 6, eps=0.1).to(DTYPE)
    perm = torch.randperm(10, generator=torch.Generator().manual_seed(7))
    xp, eip = permute_graph(perm, x, edge_index)
    # Batch statistics do not depend on node order, so training mode is covered too.
    for training in (True, False):
        layer.train(training)
        assert_close(run(layer, xp, eip), run(layer, x, edge_index)[perm])


@pytest.mark.parametrize(
    "make_input, match",
    [
        (lambda x, ei: (x, _graph(torch.tensor([[0, 10], [1, 2]]))), "out of range"),
        (lambda x, ei: (x, _graph(torch.tensor([[0, 1], [-3, 2]]))), r"entry -3 .* out of range"),
        (lambda x, ei: (torch.cat([x, x], 1), _graph(ei)), "in_channels=4"),
        (lambda x, ei: (x[None], _graph(ei)), "2-D"),
        (lambda x, ei: (x, _graph(ei.t())), r"\[2, num_edges\]"),
        (lambda x, ei: (x, ei), "graph must be a gnnlab.ops.Graph, got Tensor"),
        (lambda x, ei: (x, _graph(ei, N + 1)), "x has 10 nodes but the graph has 11/11"),
    ],
)
def test_bad_inputs_raise(make_input, match):
    x, edge_index = _setup(3)
    layer = GINConv(4, 6).to(DTYPE)
    with pytest.raises(ValueError, match=match):
        layer(*make_input(x, edge_index))


def test_edge_attr_is_rejected():
    x, edge_index = _setup(3)
    with pytest.raises(ValueError, match="does not use edge features"):
        run(GINConv(4, 6).to(DTYPE), x, edge_index, torch.randn(edge_index.size(1), 4, dtype=DTYPE))


def test_reads_the_graph_it_is_given():
    x, edge_index = _setup(1)
    layer = GINConv(4, 6).to(DTYPE).eval()
    graph = _graph(edge_index)
    # The same Graph, reused, gives what a freshly built one gives; another graph gives another result.
    assert_close(layer(x, graph)[0], run(layer, x, edge_index))
    assert not torch.allclose(layer(x, _graph(edge_index[:, :3]))[0], layer(x, graph)[0])


def test_interface():
    assert GINConv.supports_edge_attr is False
    assert repr(GINConv(4, 6, eps=0.5)) == "GINConv(4, 6, eps=0.5)"
