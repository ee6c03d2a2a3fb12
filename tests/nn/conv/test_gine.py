"""GINEConv against a dense reference with dense edge features."""
from __future__ import annotations

import pytest
import torch
from _dense import DTYPE, adjacency, dense_edge_features, gine_aggregate, linear, permute_graph, random_graph
from torch.testing import assert_close

from gnnlab.nn.conv import GINEConv
from gnnlab.ops import Graph

N = 9


def _setup(seed: int, edge_width: int, in_ch: int = 4, num_edges: int = 24):
    g = torch.Generator().manual_seed(seed)
    # Unique edges (self loops included) so that every edge has its own dense feature slot.
    edge_index = random_graph(N, num_edges, generator=g, unique=True, num_isolated=2)
    x = torch.randn(N, in_ch, generator=g, dtype=DTYPE)
    edge_attr = torch.randn(edge_index.size(1), edge_width, generator=g, dtype=DTYPE)
    return x, edge_index, edge_attr


def _graph(edge_index, num_nodes: int = N) -> Graph:
    return Graph.from_edge_index(edge_index, num_nodes)


def run(layer, x, edge_index, edge_attr=None):
    """The node output of ``layer`` on the graph of ``edge_index`` (the first element of the pair)."""
    return layer(x, _graph(edge_index, x.size(0)), edge_attr)[0]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("edge_dim", [None, 4, 3])
@pytest.mark.parametrize("eps", [0.0, -0.4])
def test_matches_dense_reference(seed, edge_dim, eps):
    width = 4 if edge_dim is None else edge_dim
    x, edge_index, edge_attr = _setup(seed, width)
    assert (edge_index[0] == edge_index[1]).any(), "the graph should contain a self loop"
    torch.manual_seed(seed)
    mlp = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 5))
    layer = GINEConv(4, 5, eps=eps, mlp=mlp, edge_dim=edge_dim).to(DTYPE)
    out = run(layer, x, edge_index, edge_attr)

    if width != 4:
        edge_attr = linear(edge_attr, layer.edge_lin)
    z = gine_aggregate(x, adjacency(edge_index, N), dense_edge_features(edge_index, edge_attr, N), eps)
    expected = linear(torch.tanh(linear(z, mlp[0])), mlp[2])
    assert out.shape == (N, 5)
    assert_close(out, expected)


def test_projection_only_when_widths_differ():
    assert GINEConv(4, 5).edge_lin is None
    assert GINEConv(4, 5, edge_dim=4).edge_lin is None
    lin = GINEConv(4, 5, edge_dim=7).edge_lin
    assert (lin.in_features, lin.out_features) == (7, 4)


def test_default_mlp_with_and_without_batch_norm():
    """The default update is Linear -> BN -> ReLU -> Linear; mlp_batch_norm=False (GraphGPS) drops the BN."""
    x, edge_index, edge_attr = _setup(7, 4)
    torch.manual_seed(0)
    plain = GINEConv(4, 5, mlp_batch_norm=False).to(DTYPE)
    assert [type(m).__name__ for m in plain.mlp] == ["Linear", "ReLU", "Linear"]
    assert [type(m).__name__ for m in GINEConv(4, 5).mlp] == ["Linear", "BatchNorm1d", "ReLU", "Linear"]
    z = gine_aggregate(x, adjacency(edge_index, N), dense_edge_features(edge_index, edge_attr, N), 0.0)
    expected = linear(torch.relu(linear(z, plain.mlp[0])), plain.mlp[2])
    assert_close(run(plain, x, edge_index, edge_attr), expected)


def test_duplicate_edges_add_up():
    # Two copies of 0 -> 1 with different features: both messages are summed.
    edge_index = torch.tensor([[0, 0], [1, 1]])
    x = torch.tensor([[1.0, -2.0], [0.5, 0.5]], dtype=DTYPE)
    edge_attr = torch.tensor([[1.0, 1.0], [-3.0, 4.0]], dtype=DTYPE)
    layer = GINEConv(2, 2, eps=0.5, mlp=torch.nn.Identity()).to(DTYPE)
    out = run(layer, x, edge_index, edge_attr)
    expected = torch.tensor([[1.5, -3.0], [0.75 + 2.0 + 0.0, 0.75 + 0.0 + 2.0]], dtype=DTYPE)
    assert_close(out, expected)


def test_gradients_reach_all_parameters():
    x, edge_index, edge_attr = _setup(1, 3)
    layer = GINEConv(4, 5, train_eps=True, edge_dim=3).to(DTYPE)
    layer.eval()
    run(layer, x, edge_index, edge_attr).pow(2).sum().backward()
    names = [name for name, _ in layer.named_parameters()]
    assert any("edge_lin" in n for n in names) and any(n.endswith("eps") for n in names)
    for name, p in layer.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_permutation_equivariance():
    x, edge_index, edge_attr = _setup(2, 3)
    layer = GINEConv(4, 5, edge_dim=3).to(DTYPE).eval()
    perm = torch.randperm(N, generator=torch.Generator().manual_seed(3))
    xp, eip = permute_graph(perm, x, edge_index)
    assert_close(run(layer, xp, eip, edge_attr), run(layer, x, edge_index, edge_attr)[perm])


def test_missing_edge_attr_raises():
    x, edge_index, _ = _setup(0, 4)
    with pytest.raises(ValueError, match="requires edge_attr"):
        run(GINEConv(4, 5).to(DTYPE), x, edge_index)


@pytest.mark.parametrize(
    "make_input, match",
    [
        (lambda x, ei, ea: (x, _graph(ei), ea[:, :2]), r"edge_attr must have shape \[num_edges=\d+, 3\]"),
        (lambda x, ei, ea: (x, _graph(ei), ea[:-1]), r"edge_attr must have shape"),
        # edge_attr rows are counted against the graph's edges.
        (lambda x, ei, ea: (x, _graph(ei[:, :-1]), ea), r"edge_attr must have shape \[num_edges=\d+, 3\]"),
        (lambda x, ei, ea: (x, _graph(torch.tensor([[0, 1], [N, 0]])), ea[:2]), "out of range"),
        (lambda x, ei, ea: (x, _graph(torch.tensor([[0, -1], [1, 0]])), ea[:2]), r"entry -1 .* out of range"),
        (lambda x, ei, ea: (x[:, :3], _graph(ei), ea), "in_channels=4"),
        (lambda x, ei, ea: (x.flatten(), _graph(ei), ea), "2-D"),
        (lambda x, ei, ea: (x, _graph(ei[None]), ea), r"\[2, num_edges\]"),
        (lambda x, ei, ea: (x, ei, ea), "graph must be a gnnlab.ops.Graph, got Tensor"),
        (lambda x, ei, ea: (x, _graph(ei, N + 1), ea), f"x has {N} nodes but the graph has {N + 1}/{N + 1}"),
    ],
)
def test_bad_inputs_raise(make_input, match):
    x, edge_index, edge_attr = _setup(3, 3)
    layer = GINEConv(4, 5, edge_dim=3).to(DTYPE)
    with pytest.raises(ValueError, match=match):
        layer(*make_input(x, edge_index, edge_attr))


@pytest.mark.parametrize("edge_dim", [None, 3])
def test_returns_the_given_edge_attr(edge_dim):
    """GINE reads edge features but does not update them: the pair's second element is edge_attr itself."""
    x, edge_index, edge_attr = _setup(4, 4 if edge_dim is None else edge_dim)
    layer = GINEConv(4, 5, edge_dim=edge_dim).to(DTYPE).eval()
    result = layer(x, _graph(edge_index), edge_attr)
    assert isinstance(result, tuple) and len(result) == 2
    out, edge_out = result
    assert out.shape == (N, 5)
    assert edge_out is edge_attr  # unchanged, not the projected features


def test_edge_attr_follows_graph_edge_order():
    """edge_attr rows belong to the edges of graph.edge_index: shuffling both together changes nothing."""
    x, edge_index, edge_attr = _setup(5, 3)
    layer = GINEConv(4, 5, edge_dim=3).to(DTYPE).eval()
    order = torch.randperm(edge_index.size(1), generator=torch.Generator().manual_seed(1))
    expected = run(layer, x, edge_index, edge_attr)
    assert_close(run(layer, x, edge_index[:, order], edge_attr[order]), expected)
    # Features not shuffled with their edges give another result.
    assert not torch.allclose(run(layer, x, edge_index[:, order], edge_attr), expected)


def test_reads_the_graph_it_is_given():
    x, edge_index, edge_attr = _setup(6, 4)
    layer = GINEConv(4, 5).to(DTYPE).eval()
    graph = _graph(edge_index)
    assert_close(layer(x, graph, edge_attr)[0], run(layer, x, edge_index, edge_attr))
    assert not torch.allclose(layer(x, _graph(edge_index[:, :3]), edge_attr[:3])[0], layer(x, graph, edge_attr)[0])


def test_interface():
    assert GINEConv.supports_edge_attr is True
    assert repr(GINEConv(4, 5, edge_dim=3)) == "GINEConv(4, 5, edge_dim=3)"
