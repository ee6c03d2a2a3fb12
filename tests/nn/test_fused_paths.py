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
    torch.manual_seed(0)
    conv = conv_cls(8, 16, heads=4) if conv_cls is GATConv else conv_cls(8, 16)
    results = []
    for backend in BACKENDS:
        xr = x.clone().requires_grad_()
        conv.zero_grad()
        with gnnlab.ops.backend_scope(backend):
            out = conv(xr, edge_index)
        out.square().sum().backward()
        results.append((out.detach(), xr.grad, [p.grad.clone() for p in conv.parameters()]))
    torch.testing.assert_close(results[0][0], results[1][0])
    torch.testing.assert_close(results[0][1], results[1][1])
    for a, b in zip(results[0][2], results[1][2]):
        torch.testing.assert_close(a, b)


def test_graph_is_sorted_once_per_edge_index(monkeypatch):
    from gnnlab.ops import graph as graph_mod

    calls = []
    original = graph_mod.CSRGraph.from_edge_index.__func__
    monkeypatch.setattr(graph_mod.CSRGraph, "from_edge_index",
                        classmethod(lambda cls, *a, **k: calls.append(1) or original(cls, *a, **k)))
    x, edge_index = _graph(1)
    convs = [GINConv(8, 8) for _ in range(3)]
    h = x
    for conv in convs:
        h = conv(h, edge_index)
    assert len(calls) == 1
    edge_index.add_(0)  # an in-place edit bumps the version: the cache must not be trusted
    convs[0](x, edge_index)
    assert len(calls) == 2


@pytest.mark.skipif(not gnnlab.ops.extension_available(), reason="gnnlab._C not built")
def test_gcn_compiles_without_graph_breaks():
    x, edge_index = _graph(2)
    graph = gnnlab.ops.CSRGraph.from_edge_index(edge_index, x.size(0))
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
def test_shared_graph_gives_the_same_output(index):
    torch.manual_seed(index)
    conv, with_edges = _convs()[index]
    conv.eval()
    x, edge_index = _with_self_loops()
    edge_attr = torch.randn(edge_index.size(1), 8) if with_edges else None
    args = (x, edge_index, edge_attr) if with_edges else (x, edge_index)
    expected = conv(*args)
    graph = gnnlab.ops.CSRGraph.from_edge_index(edge_index.clone(), x.size(0))
    got = conv(*args, graph=graph)
    for a, b in zip(expected if isinstance(expected, tuple) else [expected], got if isinstance(got, tuple) else [got]):
        torch.testing.assert_close(a, b)
    wrong = gnnlab.ops.CSRGraph.from_edge_index(edge_index[:, 1:], x.size(0))
    with pytest.raises(ValueError, match="build it from the same edge_index"):
        conv(*args, graph=wrong)
    with pytest.raises(TypeError, match="CSRGraph"):
        conv(*args, graph=edge_index)


def test_model_sorts_once_per_forward_for_every_layer_kind(monkeypatch):
    from functools import partial

    from torch_geometric.data import Data

    from gnnlab.models import build_gnn
    from gnnlab.nn.layers import ConvLayer
    from gnnlab.ops import graph as graph_mod

    calls = []
    original = graph_mod.CSRGraph.from_edge_index.__func__
    monkeypatch.setattr(graph_mod.CSRGraph, "from_edge_index",
                        classmethod(lambda cls, *a, **k: calls.append(1) or original(cls, *a, **k)))
    x, edge_index = _with_self_loops()
    for conv in (partial(GATConv, heads=2), GCNConv, GINConv):
        model = build_gnn(
            layer=partial(ConvLayer, conv=conv), hidden_channels=8, num_layers=3, out_channels=2,
            node_encoder=lambda out_channels: torch.nn.Linear(8, out_channels),
        )
        calls.clear()
        model(Data(x=x, edge_index=edge_index.clone()))
        # One sort of the batch, plus one for the self-loop-free copy GAT/GCN share across layers.
        assert len(calls) == (1 if conv is GINConv else 2), conv


def test_without_self_loops_numbers_kept_edges_in_original_order(op_backend):
    x, edge_index = _with_self_loops()
    graph = gnnlab.ops.CSRGraph.from_edge_index(edge_index, x.size(0)).without_self_loops()
    keep = edge_index[0] != edge_index[1]
    w = torch.rand(int(keep.sum()))
    got = gnnlab.ops.aggregate(x, graph, w, "sum")
    kept = edge_index[:, keep]
    expected = torch.zeros_like(x).index_add_(0, kept[1], w.unsqueeze(-1) * x[kept[0]])
    torch.testing.assert_close(got, expected)
