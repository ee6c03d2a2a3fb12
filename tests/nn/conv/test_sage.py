"""SAGEConv against torch_geometric.nn.SAGEConv with the same weights, on both op backends."""
from __future__ import annotations

import pytest
import torch
import torch_geometric.nn
from _dense import DTYPE, random_graph
from torch.testing import assert_close

import gnnlab.nn.conv.sage as sage_module
from gnnlab.nn.conv import SAGEConv
from gnnlab.ops import Graph

N = 12


def _setup(seed: int, in_ch: int = 5, num_edges: int = 30):
    g = torch.Generator().manual_seed(seed)
    # Two isolated nodes, two self loops (one doubled) and likely duplicate edges.
    edge_index = random_graph(N, num_edges, generator=g, num_isolated=2, num_self_loops=2)
    x = torch.randn(N, in_ch, generator=g, dtype=DTYPE)
    return x, edge_index


def _graph(edge_index, num_nodes: int = N) -> Graph:
    return Graph.from_edge_index(edge_index, num_nodes)


def run(layer, x, edge_index, edge_attr=None):
    """The node output of ``layer`` on the graph of ``edge_index`` (the first element of the pair)."""
    return layer(x, _graph(edge_index, x.size(0)), edge_attr)[0]


def _pair(in_ch: int, out_ch: int, seed: int = 0, **options):
    """Our layer with random weights and bias, and PyG's layer loaded from our state dict."""
    torch.manual_seed(seed)
    ours = SAGEConv(in_ch, out_ch, **options).to(DTYPE)
    if ours.lin_l.bias is not None:
        with torch.no_grad():
            ours.lin_l.bias.uniform_(-1.0, 1.0)  # non-zero, so that a dropped bias shows
    theirs = torch_geometric.nn.SAGEConv(in_ch, out_ch, **options).to(DTYPE)
    theirs.load_state_dict(ours.state_dict(), strict=True)
    return ours, theirs


def _run(layer, x, edge_index, pyg: bool = False):
    """Output, input gradient and parameter gradients; PyG's layer takes ``edge_index``, ours the Graph."""
    x = x.clone().requires_grad_()
    layer.zero_grad()
    out = layer(x, edge_index) if pyg else run(layer, x, edge_index)
    # A weighted sum, so every output entry gets its own gradient.
    weights = torch.linspace(-1.0, 2.0, out.numel(), dtype=out.dtype).view_as(out)
    (out * weights).sum().backward()
    grads = {name: p.grad.clone() for name, p in layer.named_parameters()}
    return out.detach(), x.grad, grads


OPTIONS = [
    dict(),
    dict(normalize=True),
    dict(root_weight=False),
    dict(bias=False),
    dict(normalize=True, root_weight=False, bias=False),
]


@pytest.mark.parametrize("aggr", ["mean", "max", "min", "sum"])
@pytest.mark.parametrize("channels", [(5, 3), (5, 7)], ids=["narrowing", "widening"])
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(o) or "default")
def test_matches_pyg(op_backend, aggr, channels, options):
    in_ch, out_ch = channels
    x, edge_index = _setup(sum(channels) + len(options), in_ch)
    ours, theirs = _pair(in_ch, out_ch, aggr=aggr, **options)
    out, grad_x, grads = _run(ours, x, edge_index)
    ref_out, ref_grad_x, ref_grads = _run(theirs, x, edge_index, pyg=True)
    assert out.shape == (N, out_ch)
    assert_close(out, ref_out)
    assert_close(grad_x, ref_grad_x)
    assert grads.keys() == ref_grads.keys()
    for name in grads:
        assert_close(grads[name], ref_grads[name], msg=name)


def test_isolated_node_gets_root_and_bias(op_backend):
    x, _ = _setup(0)
    edge_index = torch.tensor([[1, 2], [2, 1]])
    for aggr in ("mean", "max", "sum"):
        layer, _ = _pair(5, 3, aggr=aggr)
        out = run(layer, x, edge_index)
        expected = x[0] @ layer.lin_r.weight.detach().T + layer.lin_l.bias.detach()
        assert_close(out[0], expected)


@pytest.mark.parametrize(
    "aggr, channels, transform_first",
    [("mean", (5, 3), True), ("sum", (5, 3), True), ("mean", (5, 7), False), ("max", (5, 3), False)],
)
def test_linear_map_moves_before_aggregation_when_narrowing(monkeypatch, aggr, channels, transform_first):
    widths = []
    real = sage_module.aggregate

    def spy(x, graph, edge_weight=None, reduce="sum"):
        widths.append((x.size(1), reduce))
        return real(x, graph, edge_weight, reduce)

    monkeypatch.setattr(sage_module, "aggregate", spy)
    x, edge_index = _setup(1, channels[0])
    run(SAGEConv(*channels, aggr=aggr).to(DTYPE), x, edge_index)
    assert widths == [(channels[1] if transform_first else channels[0], aggr)]


def test_reads_the_graph_it_is_given(op_backend):
    x, edge_index = _setup(2)
    layer, _ = _pair(5, 4, aggr="max")
    graph = _graph(edge_index)
    # A Graph reused across calls gives what a freshly built one gives ...
    first = layer(x, graph)[0]
    assert_close(layer(x, graph)[0], first)
    assert_close(first, run(layer, x, edge_index))
    # ... and another graph gives another result: the layer keeps no graph of its own.
    assert not torch.allclose(layer(x, _graph(edge_index[:, :-3]))[0], layer(x, graph)[0])


def test_mismatched_graph_raises():
    x, edge_index = _setup(2)
    layer = SAGEConv(5, 4).to(DTYPE)
    with pytest.raises(ValueError, match=f"x has {N} nodes but the graph has {N + 1}/{N + 1}"):
        layer(x, _graph(edge_index, N + 1))
    # The old call, with edge_index in place of the Graph, names the graph argument.
    with pytest.raises(ValueError, match="graph must be a gnnlab.ops.Graph, got Tensor"):
        layer(x, edge_index)


@pytest.mark.parametrize(
    "make_input, match",
    [
        (lambda x, ei: (x, _graph(torch.tensor([[0, N], [1, 2]]))), "out of range"),
        (lambda x, ei: (x, _graph(torch.tensor([[0, 1], [-3, 2]]))), r"entry -3 .* out of range"),
        (lambda x, ei: (torch.cat([x, x], 1), _graph(ei)), "in_channels=5"),
        (lambda x, ei: (x[None], _graph(ei)), "2-D"),
        (lambda x, ei: (x, _graph(ei.t())), r"\[2, num_edges\]"),
        (lambda x, ei: (x, ei), "graph must be a gnnlab.ops.Graph, got Tensor"),
    ],
)
def test_bad_inputs_raise(make_input, match):
    x, edge_index = _setup(3)
    layer = SAGEConv(5, 4).to(DTYPE)
    with pytest.raises(ValueError, match=match):
        layer(*make_input(x, edge_index))


def test_edge_attr_is_rejected():
    x, edge_index = _setup(3)
    with pytest.raises(ValueError, match="does not use edge features"):
        run(SAGEConv(5, 4).to(DTYPE), x, edge_index, torch.randn(edge_index.size(1), 2, dtype=DTYPE))


def test_unknown_aggregation_raises():
    with pytest.raises(ValueError, match="aggr must be one of"):
        SAGEConv(5, 4, aggr="lstm")


def test_interface():
    assert SAGEConv.supports_edge_attr is False
    assert repr(SAGEConv(5, 4, aggr="max")) == "SAGEConv(5, 4, aggr=max)"
    assert SAGEConv(5, 4, aggr="add").aggr == "sum"
    assert SAGEConv(5, 4, root_weight=False).lin_r is None
