"""GatedGCNConv against a dense reference of the Benchmarking-GNNs equations."""
from __future__ import annotations

import pytest
import torch
from _dense import DTYPE, gated_gcn, linear, permute_graph, random_graph
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from gnnlab.nn.conv import GatedGCNConv
from gnnlab.ops import Graph


def _run(layer: GatedGCNConv, x, edge_index, edge_attr):
    # The layer contract: conv(x, graph, edge_attr) -> (x_out, edge_out); GatedGCN updates both.
    return layer(x, Graph.from_edge_index(edge_index, x.size(0)), edge_attr)


def _graph(seed: int, num_nodes: int, num_edges: int, in_ch: int, num_isolated: int = 1):
    g = torch.Generator().manual_seed(seed)
    edge_index = random_graph(num_nodes, num_edges, generator=g, unique=True, num_isolated=num_isolated)
    x = torch.randn(num_nodes, in_ch, generator=g, dtype=DTYPE)
    edge_attr = torch.randn(edge_index.size(1), in_ch, generator=g, dtype=DTYPE)
    return x, edge_index, edge_attr


def _perturb_batch_norms(layer: GatedGCNConv, seed: int) -> None:
    # Away from the identity initialisation, so that swapped or skipped norms are noticed.
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for bn in (layer.bn_node, layer.bn_edge):
            if bn is None:
                continue
            bn.weight.copy_(torch.rand(bn.num_features, generator=g, dtype=DTYPE) + 0.5)
            bn.bias.copy_(torch.randn(bn.num_features, generator=g, dtype=DTYPE) * 0.3)
            bn.running_mean.copy_(torch.randn(bn.num_features, generator=g, dtype=DTYPE))
            bn.running_var.copy_(torch.rand(bn.num_features, generator=g, dtype=DTYPE) + 0.5)


@settings(max_examples=25, deadline=None)
@given(
    num_nodes=st.integers(2, 12),
    density=st.floats(0.1, 1.0),
    num_isolated=st.integers(0, 2),
    widths=st.sampled_from([(4, 4), (3, 5), (5, 5)]),
    batch_norm=st.booleans(),
    residual=st.booleans(),
    training=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_matches_dense_reference(num_nodes, density, num_isolated, widths, batch_norm, residual, training, seed):
    in_ch, out_ch = widths
    active = max(num_nodes - num_isolated, 1)
    # Batch norm in training mode needs at least two rows of each kind.
    num_edges = max(2, int(density * active * active))
    x, edge_index, edge_attr = _graph(seed, num_nodes, num_edges, in_ch, num_isolated)
    assume(edge_index.size(1) >= 2 or not (batch_norm and training))
    torch.manual_seed(seed)
    layer = GatedGCNConv(in_ch, out_ch, batch_norm=batch_norm, residual=residual).to(DTYPE)
    _perturb_batch_norms(layer, seed)
    layer.train(training)
    h, e = _run(layer, x, edge_index, edge_attr)
    expected_h, expected_e = gated_gcn(
        x,
        edge_index,
        edge_attr,
        layer,
        training=training,
        batch_norm=batch_norm,
        residual=residual and in_ch == out_ch,
    )
    assert h.shape == (num_nodes, out_ch) and e.shape == (edge_index.size(1), out_ch)
    assert_close(h, expected_h)
    assert_close(e, expected_e)


def test_target_and_source_roles():
    # One edge 0 -> 1 and no norm/activation/residual: check D acts on the target and E on the source.
    edge_index = torch.tensor([[0], [1]])
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=DTYPE)
    edge_attr = torch.tensor([[0.5, -0.5]], dtype=DTYPE)
    layer = GatedGCNConv(2, 2, batch_norm=False, residual=False, act=None).to(DTYPE)
    h, e = _run(layer, x, edge_index, edge_attr)
    e_hat = linear(edge_attr, layer.C) + linear(x[1:], layer.D) + linear(x[:1], layer.E)
    assert_close(e, e_hat)
    gate = torch.sigmoid(e_hat)
    assert_close(h[1], (linear(x[1:], layer.A) + gate / (gate + 1e-6) * linear(x[:1], layer.B))[0])
    # Node 0 has no incoming edge.
    assert_close(h[0], linear(x[:1], layer.A)[0])


def test_isolated_nodes_get_a_h():
    x, edge_index, edge_attr = _graph(3, 8, 20, 4, num_isolated=3)
    layer = GatedGCNConv(4, 4, batch_norm=False, residual=False, act=None).to(DTYPE)
    h, _ = _run(layer, x, edge_index, edge_attr)
    no_in_edges = torch.ones(8, dtype=torch.bool)
    no_in_edges[edge_index[1]] = False
    assert no_in_edges.sum() >= 3
    assert_close(h[no_in_edges], linear(x[no_in_edges], layer.A))


def test_residual_disabled_when_widths_differ():
    assert GatedGCNConv(4, 4).residual is True
    assert GatedGCNConv(4, 4, residual=False).residual is False
    assert GatedGCNConv(4, 6).residual is False
    layer = GatedGCNConv(4, 4, batch_norm=False)
    assert layer.bn_node is None and layer.bn_edge is None


def test_dropout_only_in_training():
    x, edge_index, edge_attr = _graph(4, 10, 30, 4)
    layer = GatedGCNConv(4, 4, dropout=0.5).to(DTYPE)
    _perturb_batch_norms(layer, 4)
    layer.eval()
    h, e = _run(layer, x, edge_index, edge_attr)
    ref_h, ref_e = gated_gcn(x, edge_index, edge_attr, layer, training=False, batch_norm=True, residual=True)
    assert_close(h, ref_h)
    assert_close(e, ref_e)
    layer.train()
    torch.manual_seed(0)
    h_drop, e_drop = _run(layer, x, edge_index, edge_attr)
    ref_h, ref_e = gated_gcn(x, edge_index, edge_attr, layer, training=True, batch_norm=True, residual=False)
    # Dropout acts before the residual: each entry is the input plus either 0 or twice the update.
    for out, inp, update in ((h_drop, x, ref_h), (e_drop, edge_attr, ref_e)):
        delta = out - inp
        kept = (delta - 2.0 * update).abs() < 1e-9
        dropped = delta.abs() < 1e-12
        assert (kept | dropped).all()
        assert (dropped & (update > 1e-3)).any() and (kept & (update > 1e-3)).any()


def test_gradients_reach_all_parameters():
    x, edge_index, edge_attr = _graph(5, 10, 30, 4)
    x.requires_grad_(True)
    edge_attr.requires_grad_(True)
    layer = GatedGCNConv(4, 4).to(DTYPE)
    _perturb_batch_norms(layer, 5)
    # Eval mode: batch statistics would cancel the biases of A, C, D and E exactly.
    layer.eval()
    h, e = _run(layer, x, edge_index, edge_attr)
    (h.pow(2).sum() + e.pow(2).sum()).backward()
    assert x.grad.abs().sum() > 0 and edge_attr.grad.abs().sum() > 0
    for name, p in layer.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_gradients_in_training_mode():
    x, edge_index, edge_attr = _graph(6, 10, 30, 4)
    layer = GatedGCNConv(4, 4).to(DTYPE).train()
    h, e = _run(layer, x, edge_index, edge_attr)
    (h.pow(2).sum() + e.pow(2).sum()).backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert layer.B.weight.grad.abs().sum() > 0 and layer.C.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("training", [True, False])
def test_permutation_equivariance(training):
    x, edge_index, edge_attr = _graph(7, 11, 40, 4)
    layer = GatedGCNConv(4, 4).to(DTYPE).train(training)
    _perturb_batch_norms(layer, 7)
    perm = torch.randperm(11, generator=torch.Generator().manual_seed(1))
    xp, eip = permute_graph(perm, x, edge_index)
    h, e = _run(layer, x, edge_index, edge_attr)
    hp, ep = _run(layer, xp, eip, edge_attr)
    assert_close(hp, h[perm])
    # Edges keep their order, so edge outputs are unchanged.
    assert_close(ep, e)


def _g(edge_index, num_nodes=10):
    return Graph.from_edge_index(edge_index, num_nodes)


@pytest.mark.parametrize(
    "make_input, match",
    [
        (lambda x, ei, ea: (x, _g(ei)), "requires edge_attr"),
        (lambda x, ei, ea: (x, _g(ei), ea[:, :3]), r"edge_attr must have shape \[num_edges=\d+, 4\]"),
        (lambda x, ei, ea: (x, _g(ei), ea[1:]), "edge_attr must have shape"),
        # edge_attr rows must match the edges of the graph it is given.
        (lambda x, ei, ea: (x, _g(ei[:, 1:]), ea), "edge_attr must have shape"),
        # A malformed edge_index is refused when the graph is built, before any layer sees it.
        (lambda x, ei, ea: (x, _g(torch.tensor([[0, 1], [2, 10]])), ea[:2]), "out of range"),
        (lambda x, ei, ea: (x, _g(torch.tensor([[-1, 1], [2, 3]])), ea[:2]), "entry -1"),
        (lambda x, ei, ea: (x, _g(ei[:1]), ea), r"\[2, num_edges\]"),
        (lambda x, ei, ea: (x[:, :2], _g(ei), ea), "in_channels=4"),
        (lambda x, ei, ea: (x[None], _g(ei), ea), "2-D"),
        # The old call, with an edge_index where the graph goes, names the graph argument.
        (lambda x, ei, ea: (x, ei, ea), "graph must be a gnnlab.ops.Graph"),
        (lambda x, ei, ea: (x, _g(ei, 11), ea), "x has 10 nodes but the graph has 11"),
    ],
)
def test_bad_inputs_raise(make_input, match):
    x, edge_index, edge_attr = _graph(8, 10, 30, 4)
    layer = GatedGCNConv(4, 4).to(DTYPE)
    with pytest.raises(ValueError, match=match):
        layer(*make_input(x, edge_index, edge_attr))


def test_reads_the_graph_it_is_given():
    # The same layer on two graphs over the same nodes follows each graph (no cached structure).
    x, edge_index, edge_attr = _graph(9, 10, 30, 4)
    _, other, other_attr = _graph(10, 10, 30, 4)
    layer = GatedGCNConv(4, 4, batch_norm=False).to(DTYPE)
    h, e = layer(x, Graph.from_edge_index(edge_index, 10), edge_attr)
    h2, e2 = layer(x, Graph.from_edge_index(other, 10), other_attr)
    for (got_h, got_e), (ei, ea) in (((h, e), (edge_index, edge_attr)), ((h2, e2), (other, other_attr))):
        ref_h, ref_e = gated_gcn(x, ei, ea, layer, training=True, batch_norm=False, residual=True)
        assert_close(got_h, ref_h)
        assert_close(got_e, ref_e)
    assert not torch.allclose(h, h2)


def test_interface():
    assert GatedGCNConv.supports_edge_attr is True
    assert repr(GatedGCNConv(4, 6)) == "GatedGCNConv(4, 6)"
    with pytest.raises(ValueError, match="dropout"):
        GatedGCNConv(4, 4, dropout=1.5)


def test_compiled_forward_and_backward_equal_eager():
    """The fused gating op under torch.compile (fake kernels, registered autograd): same outputs and gradients."""
    torch.manual_seed(0)
    edge_index = torch.randint(0, 30, (2, 120))
    graph = Graph.from_edge_index(edge_index, 30)
    conv = GatedGCNConv(16, 16)
    x, e = torch.randn(30, 16, requires_grad=True), torch.randn(120, 16, requires_grad=True)

    def grads(module):
        h, out_e = module(x, graph, e)
        return torch.autograd.grad(h.sum() + out_e.square().sum(), [x, e, *conv.parameters()])

    eager = grads(conv)
    compiled = grads(torch.compile(conv, fullgraph=True, backend="aot_eager"))
    for a, b in zip(eager, compiled):
        torch.testing.assert_close(b, a)
