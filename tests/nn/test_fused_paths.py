"""Convs aggregate through gnnlab.ops: the extension and the plain-torch path agree; GCN compiles."""
from __future__ import annotations

import pytest
import torch

import gnnlab.ops
from gnnlab.nn.conv import GATConv, GCNConv, GINConv

BACKENDS = ["torch"] + (["extension"] if gnnlab.ops.extension_available() else [])


def _graph(seed=0, n=40, e=200):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 8, generator=g), torch.randint(0, n, (2, e), generator=g)


@pytest.mark.parametrize("conv_cls", [GCNConv, GINConv, GATConv])
def test_backends_agree(conv_cls):
    if len(BACKENDS) < 2:
        pytest.skip("gnnlab._C not built")
    x, edge_index = _graph()
    graph = gnnlab.ops.Graph.from_edge_index(edge_index, x.size(0))
    torch.manual_seed(0)
    conv = conv_cls(8, 16, heads=4) if conv_cls is GATConv else conv_cls(8, 16)
    results = []
    for backend in BACKENDS:
        xr = x.clone().requires_grad_()
        conv.zero_grad()
        with gnnlab.ops.backend_scope(backend):
            out, _ = conv(xr, graph)
        out.square().sum().backward()
        results.append((out.detach(), xr.grad, [p.grad.clone() for p in conv.parameters()]))
    torch.testing.assert_close(results[0][0], results[1][0])
    torch.testing.assert_close(results[0][1], results[1][1])
    for a, b in zip(results[0][2], results[1][2]):
        torch.testing.assert_close(a, b)


def test_graph_is_sorted_once_and_shared_by_the_layers(monkeypatch):
    from gnnlab.ops import graph as graph_mod

    calls = []
    original = graph_mod.Graph.from_edge_index.__func__
    monkeypatch.setattr(graph_mod.Graph, "from_edge_index",
                        classmethod(lambda cls, *a, **k: calls.append(1) or original(cls, *a, **k)))
    x, edge_index = _with_self_loops(1)
    graph = graph_mod.Graph.from_edge_index(edge_index, x.size(0))
    assert len(calls) == 1
    h = x
    for conv in [GINConv(8, 8) for _ in range(3)]:
        h, _ = conv(h, graph)
    assert len(calls) == 1  # the convs read the graph they are given, and sort nothing
    for conv in [GCNConv(8, 8), GATConv(8, 8, heads=2), GCNConv(8, 8), GATConv(8, 8, heads=2)]:
        h, _ = conv(h, graph)
    assert len(calls) == 1  # self loops are masked on the graph, never copied out


@pytest.mark.skipif(not gnnlab.ops.extension_available(), reason="gnnlab._C not built")
def test_gcn_compiles_without_graph_breaks():
    x, edge_index = _graph(2)
    graph = gnnlab.ops.Graph.from_edge_index(edge_index, x.size(0))
    lin = torch.nn.Linear(8, 8)

    def gcn_step(x, rowptr, col, rowptr_t, col_t, perm_t):
        h = lin(x)
        out, _ = gnnlab.ops.aggregate_csr(rowptr, col, rowptr_t, col_t, perm_t, h, None, "mean")
        return torch.relu(out + h)

    args = (x, graph.rowptr, graph.col, graph.rowptr_t, graph.col_t, graph.perm_t)
    explanation = torch._dynamo.explain(gcn_step)(*args)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    compiled = torch.compile(gcn_step, fullgraph=True)
    torch.testing.assert_close(compiled(*args), gcn_step(*args))
    torch._dynamo.reset()


def _with_self_loops(seed=3, n=30, e=150):
    x, edge_index = _graph(seed, n, e)
    loops = torch.arange(0, n, 3).repeat(2, 1)
    return x, torch.cat([edge_index, loops], dim=1)[:, torch.randperm(e + loops.size(1))]


def _convs():
    from gnnlab.nn.conv import GatedGCNConv, GINEConv

    return [
        (GCNConv(8, 8), False),
        (GINConv(8, 8), False),
        (GATConv(8, 8, heads=2), False),
        (GATConv(8, 8, heads=2, edge_dim=8), True),
        (GINEConv(8, 8, edge_dim=8), True),
        (GatedGCNConv(8, 8), True),
    ]


@pytest.mark.parametrize("index", range(6))
def test_conv_uses_the_graph_it_is_given(index):
    torch.manual_seed(index)
    conv, with_edges = _convs()[index]
    conv.eval()
    x, edge_index = _with_self_loops()
    n = x.size(0)
    edge_attr = torch.randn(edge_index.size(1), 8) if with_edges else None
    expected = conv(x, gnnlab.ops.Graph.from_edge_index(edge_index, n), edge_attr)
    # A graph already used (and its derived state memoised) by other layers gives the same output.
    shared = gnnlab.ops.Graph.from_edge_index(edge_index.clone(), n)
    for other, other_edges in _convs():
        other(x, shared, torch.randn(edge_index.size(1), 8) if other_edges else None)
    got = conv(x, shared, edge_attr)
    assert isinstance(got, tuple) and len(got) == 2
    for a, b in zip(expected, got):
        torch.testing.assert_close(a, b)
    assert (got[1] is None) is (not with_edges)
    # Without one (non-loop) edge: the output follows the graph passed, not some other structure.
    drop = int((edge_index[0] != edge_index[1]).nonzero()[0])
    keep = torch.arange(edge_index.size(1)) != drop
    fewer = gnnlab.ops.Graph.from_edge_index(edge_index[:, keep], n)
    fewer_attr = edge_attr[keep] if with_edges else None
    out, _ = conv(x, fewer, fewer_attr)
    torch.testing.assert_close(out, conv(x, gnnlab.ops.Graph.from_edge_index(edge_index[:, keep].clone(), n),
                                         fewer_attr)[0])
    target = int(edge_index[1, drop])
    assert not torch.allclose(out[target], expected[0][target])
    # A graph that does not fit the inputs is rejected.
    if with_edges:
        with pytest.raises(ValueError, match="edge_attr must have shape"):
            conv(x, fewer, edge_attr)
    with pytest.raises(ValueError, match="nodes but the graph has"):
        conv(x, gnnlab.ops.Graph.from_edge_index(edge_index, n + 1), edge_attr)
    with pytest.raises(ValueError, match="graph must be a gnnlab.ops.Graph"):
        conv(x, edge_index, edge_attr)


def test_model_sorts_once_per_forward_for_every_layer_kind(monkeypatch):
    from functools import partial

    from torch_geometric.data import Data

    from gnnlab.models import build_gnn
    from gnnlab.nn.layers import ConvLayer
    from gnnlab.ops import graph as graph_mod

    calls = []
    original = graph_mod.Graph.from_edge_index.__func__
    monkeypatch.setattr(graph_mod.Graph, "from_edge_index",
                        classmethod(lambda cls, *a, **k: calls.append(1) or original(cls, *a, **k)))
    x, edge_index = _with_self_loops()
    for conv in (partial(GATConv, heads=2), GCNConv, GINConv):
        model = build_gnn(
            layer=partial(ConvLayer, conv=conv), hidden_channels=8, num_layers=3, out_channels=2,
            node_encoder=lambda out_channels: torch.nn.Linear(8, out_channels),
        )
        calls.clear()
        model(Data(x=x, edge_index=edge_index.clone()))
        # One sort of the batch, shared by every layer (GAT and GCN mask self loops in place).
        assert len(calls) == 1, conv


def test_without_self_loops_numbers_kept_edges_in_original_order(op_backend):
    x, edge_index = _with_self_loops()
    graph = gnnlab.ops.Graph.from_edge_index(edge_index, x.size(0)).without_self_loops()
    keep = edge_index[0] != edge_index[1]
    w = torch.rand(int(keep.sum()))
    got = gnnlab.ops.aggregate(x, graph, w, "sum")
    kept = edge_index[:, keep]
    expected = torch.zeros_like(x).index_add_(0, kept[1], w.unsqueeze(-1) * x[kept[0]])
    torch.testing.assert_close(got, expected)
