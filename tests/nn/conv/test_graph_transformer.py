"""GraphTransformerAttention and GraphTransformerLayer against a per-edge loop over the paper's equations."""
from __future__ import annotations

import inspect
import math

import pytest
import torch
from _dense import DTYPE, permute_graph, random_graph
from torch.testing import assert_close

from gnnlab.nn.conv import GraphTransformerAttention
from gnnlab.nn.layers import GraphTransformerLayer
from gnnlab.ops import Graph

N = 9


def _graph(seed: int, in_ch: int, num_edges: int = 30, num_isolated: int = 2, unique: bool = False):
    g = torch.Generator().manual_seed(seed)
    edge_index = random_graph(N, num_edges, generator=g, unique=unique, num_isolated=num_isolated)
    x = torch.randn(N, in_ch, generator=g, dtype=DTYPE)
    edge_attr = torch.randn(edge_index.size(1), in_ch, generator=g, dtype=DTYPE)
    return x, edge_index, edge_attr


def _randomize(module: torch.nn.Module, seed: int) -> None:
    # Weights large enough that some scores leave [-5, 5] and the clamp matters.
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.copy_(torch.rand(p.shape, generator=g, dtype=p.dtype) + 0.5)
            else:
                p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.7)
        for name, buf in module.named_buffers():
            if name.endswith("running_mean"):
                buf.copy_(torch.randn(buf.shape, generator=g, dtype=buf.dtype))
            elif name.endswith("running_var"):
                buf.copy_(torch.rand(buf.shape, generator=g, dtype=buf.dtype) + 0.5)


def _lin(x, lin):
    """``x W^T + b`` from a layer's parameters, not detached, so that gradients reach them."""
    return x @ lin.weight.T if lin.bias is None else x @ lin.weight.T + lin.bias


def _attention_reference(att: GraphTransformerAttention, x, edge_index, edge_attr):
    """The paper's attention with edge features, one edge ``j -> i`` at a time.

    Returns ``(h_hat, e_hat, scores)``; ``scores`` ``[E, H]`` are the summed pre-softmax scores.
    """
    n, heads = x.size(0), att.num_heads
    d = att.out_channels // heads
    q, k, v = (_lin(x, lin).view(n, heads, d) for lin in (att.Q, att.K, att.V))
    numerator = [x.new_zeros(heads, d) for _ in range(n)]
    denominator = [x.new_zeros(heads) for _ in range(n)]
    e_hat, scores = [], []
    for e in range(edge_index.size(1)):
        j, i = int(edge_index[0, e]), int(edge_index[1, e])
        w_hat = q[i] * k[j] / math.sqrt(d)  # (H, d)
        if att.E is not None:
            w_hat = w_hat * _lin(edge_attr[e], att.E).view(heads, d)
        e_hat.append(w_hat.reshape(-1))
        scores.append(w_hat.sum(-1))
        s = torch.exp(torch.clamp(w_hat.sum(-1), -5.0, 5.0))  # (H,)
        numerator[i] = numerator[i] + s[:, None] * v[j]
        denominator[i] = denominator[i] + s
    h_hat = torch.stack([num / (den[:, None] + 1e-6) for num, den in zip(numerator, denominator)])
    e_out = torch.stack(e_hat) if att.E is not None else None
    return h_hat.reshape(n, -1), e_out, torch.stack(scores)


def _norm_reference(z, norms, training: bool):
    if norms.layer_norm is not None:
        ln = norms.layer_norm
        mean, var = z.mean(-1, keepdim=True), z.var(-1, unbiased=False, keepdim=True)
        z = (z - mean) / torch.sqrt(var + ln.eps) * ln.weight + ln.bias
    if norms.batch_norm is not None:
        bn = norms.batch_norm
        mean, var = (z.mean(0), z.var(0, unbiased=False)) if training else (bn.running_mean, bn.running_var)
        z = (z - mean) / torch.sqrt(var + bn.eps) * bn.weight + bn.bias
    return z


def _layer_reference(layer: GraphTransformerLayer, x, edge_index, edge_attr, *, residual: bool, training: bool):
    """The paper's layer: attention, O, residual, norm, FFN (2x, ReLU), residual, norm; for nodes and edges."""
    h_hat, e_hat, _ = _attention_reference(layer.attention, x, edge_index, edge_attr)
    first_residual = residual and layer.in_channels == layer.out_channels

    def branch(inp, attended, out_proj, norm1, ffn, norm2):
        out = _lin(attended, out_proj)
        if first_residual:
            out = inp + out
        out = _norm_reference(out, norm1, training)
        update = _lin(torch.relu(_lin(out, ffn.lin1)), ffn.lin2)
        out = out + update if residual else update
        return _norm_reference(out, norm2, training)

    h = branch(x, h_hat, layer.O_h, layer.norm1_h, layer.ffn_h, layer.norm2_h)
    if layer.O_e is None:
        return h, edge_attr
    return h, branch(edge_attr, e_hat, layer.O_e, layer.norm1_e, layer.ffn_e, layer.norm2_e)


def _grads(module, inputs):
    return [t.grad.clone() for t in inputs] + [p.grad.clone() for p in module.parameters()]


def _compare_forward_and_backward(module, run, reference, inputs):
    """Outputs of ``run()`` and ``reference()`` agree, and so do the gradients of a random loss."""
    outs = [o for o in run() if o is not None]
    expected = [o for o in reference() if o is not None]
    assert len(outs) == len(expected)
    for out, exp in zip(outs, expected):
        assert_close(out, exp)
    g = torch.Generator().manual_seed(0)
    probes = [torch.randn(o.shape, generator=g, dtype=o.dtype) for o in outs]

    def backward(values):
        module.zero_grad()
        for t in inputs:
            t.grad = None
        sum((v * p).sum() for v, p in zip(values, probes)).backward()
        return _grads(module, inputs)

    got = backward(outs)
    want = backward([o for o in reference() if o is not None])
    for a, b in zip(got, want):
        assert_close(a, b)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize(
    "in_ch, out_ch, heads, bias", [(6, 8, 2, False), (8, 8, 1, True), (4, 12, 3, True), (8, 8, 8, False)]
)
def test_attention_matches_reference(op_backend, seed, in_ch, out_ch, heads, bias):
    x, edge_index, edge_attr = _graph(seed, in_ch)
    graph = Graph.from_edge_index(edge_index, N)
    x.requires_grad_(True)
    edge_attr.requires_grad_(True)
    att = GraphTransformerAttention(in_ch, out_ch, heads, bias=bias).to(DTYPE)
    _randomize(att, seed)
    _, _, scores = _attention_reference(att, x, edge_index, edge_attr)
    assert (scores.abs() > 5).any() and (scores.abs() < 5).any(), "both sides of the clamp should be exercised"
    _compare_forward_and_backward(
        att,
        lambda: att(x, graph, edge_attr),
        lambda: _attention_reference(att, x, edge_index, edge_attr)[:2],
        [x, edge_attr],
    )
    h_hat, e_hat = att(x, graph, edge_attr)
    assert h_hat.shape == (N, out_ch) and e_hat.shape == (edge_index.size(1), out_ch)


@pytest.mark.parametrize("seed", range(2))
def test_attention_without_edges_matches_reference(op_backend, seed):
    x, edge_index, edge_attr = _graph(seed, 6)
    graph = Graph.from_edge_index(edge_index, N)
    x.requires_grad_(True)
    att = GraphTransformerAttention(6, 8, 2, use_edges=False).to(DTYPE)
    _randomize(att, seed)
    assert att.E is None and att.supports_edge_attr is False
    h_hat, e_hat = att(x, graph)
    assert e_hat is None
    _compare_forward_and_backward(
        att, lambda: att(x, graph), lambda: _attention_reference(att, x, edge_index, None)[:2], [x]
    )
    # Without edge channels it takes no edge features (the layer contract), rather than ignoring them.
    with pytest.raises(ValueError, match="does not use edge features"):
        att(x, graph, edge_attr)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("batch_norm, layer_norm", [(True, False), (False, True), (True, True), (False, False)])
@pytest.mark.parametrize("residual, in_ch", [(True, 8), (False, 8), (True, 4)])
@pytest.mark.parametrize("use_edges", [True, False])
def test_layer_matches_reference(training, batch_norm, layer_norm, residual, in_ch, use_edges):
    x, edge_index, edge_attr = _graph(3, in_ch)
    graph = Graph.from_edge_index(edge_index, N)
    x.requires_grad_(True)
    edge_attr.requires_grad_(True)
    layer = GraphTransformerLayer(
        in_ch, 8, num_heads=2, batch_norm=batch_norm, layer_norm=layer_norm, residual=residual, use_edges=use_edges
    ).to(DTYPE)
    _randomize(layer, 3)
    layer.train(training)
    inputs = [x, edge_attr] if use_edges else [x]

    def reference():
        return _layer_reference(layer, x, edge_index, edge_attr, residual=residual, training=training)

    if not use_edges:
        h, e = layer(x, graph, edge_attr)
        assert e is edge_attr
        _compare_forward_and_backward(
            layer, lambda: (layer(x, graph, edge_attr)[0],), lambda: (reference()[0],), inputs
        )
    else:
        _compare_forward_and_backward(layer, lambda: layer(x, graph, edge_attr), reference, inputs)


def test_clamp_equalises_large_scores():
    # Scores 100 and 10 both exceed the clamp, so the two neighbours of node 0 get equal weights.
    att = GraphTransformerAttention(1, 1, num_heads=1).to(DTYPE)
    with torch.no_grad():
        for lin in (att.Q, att.K, att.V, att.E):
            lin.weight.fill_(1.0)
    x = torch.tensor([[10.0], [10.0], [1.0]], dtype=DTYPE)
    edge_index = torch.tensor([[1, 2], [0, 0]])
    h_hat, e_hat = att(x, Graph.from_edge_index(edge_index, 3), torch.ones(2, 1, dtype=DTYPE))
    assert_close(e_hat, torch.tensor([[100.0], [10.0]], dtype=DTYPE))
    s = math.exp(5.0)
    assert_close(h_hat[0], torch.tensor([(10.0 + 1.0) * s / (2 * s + 1e-6)], dtype=DTYPE))


def test_isolated_nodes_get_zero_attention_output():
    x, edge_index, edge_attr = _graph(4, 6, num_isolated=3)
    no_in_edges = torch.ones(N, dtype=torch.bool)
    no_in_edges[edge_index[1]] = False
    assert no_in_edges.sum() >= 3
    att = GraphTransformerAttention(6, 8, 2).to(DTYPE)
    _randomize(att, 4)
    x.requires_grad_(True)
    h_hat, _ = att(x, Graph.from_edge_index(edge_index, N), edge_attr)
    assert torch.isfinite(h_hat).all()
    assert h_hat[no_in_edges].abs().max() == 0
    h_hat.sum().backward()
    assert torch.isfinite(x.grad).all()
    # A graph without any edge: every attention output is zero, and the layer still runs.
    empty = Graph.from_edge_index(torch.empty(2, 0, dtype=torch.long), N)
    h_hat, e_hat = att(x, empty, torch.empty(0, 6, dtype=DTYPE))
    assert h_hat.abs().max() == 0 and e_hat.shape == (0, 8)
    layer = GraphTransformerLayer(6, 8, num_heads=2, batch_norm=False).to(DTYPE)
    h, e = layer(x, empty, torch.empty(0, 6, dtype=DTYPE))
    assert torch.isfinite(h).all() and e.shape == (0, 8)


@pytest.mark.parametrize("training", [True, False])
def test_permutation_equivariance(training):
    x, edge_index, edge_attr = _graph(5, 8)
    layer = GraphTransformerLayer(8, 8, num_heads=2).to(DTYPE).train(training)
    _randomize(layer, 5)
    g = torch.Generator().manual_seed(5)
    h, e = layer(x, Graph.from_edge_index(edge_index, N), edge_attr)
    # Relabel the nodes: node outputs follow, edge outputs (same edge order) are unchanged.
    perm = torch.randperm(N, generator=g)
    xp, eip = permute_graph(perm, x, edge_index)
    hp, ep = layer(xp, Graph.from_edge_index(eip, N), edge_attr)
    assert_close(hp, h[perm])
    assert_close(ep, e)
    # Reorder the edges: edge outputs follow, node outputs are unchanged.
    edge_perm = torch.randperm(edge_index.size(1), generator=g)
    hq, eq = layer(x, Graph.from_edge_index(edge_index[:, edge_perm], N), edge_attr[edge_perm])
    assert_close(hq, h)
    assert_close(eq, e[edge_perm])


@pytest.mark.parametrize("module", ["attention", "layer"])
def test_reads_the_graph_it_is_given(module):
    # The layer contract: forward(x, graph, edge_attr); the module aggregates over exactly the graph
    # it is handed (one graph can be shared by many layers), and an edge_index is no substitute.
    x, edge_index, edge_attr = _graph(6, 8)
    net = GraphTransformerAttention(8, 8, 4) if module == "attention" else GraphTransformerLayer(8, 8, num_heads=4)
    net = net.to(DTYPE).eval()
    _randomize(net, 6)
    assert list(inspect.signature(net.forward).parameters) == ["x", "graph", "edge_attr"]
    att = net if module == "attention" else net.attention
    assert list(inspect.signature(att.forward).parameters) == ["x", "graph", "edge_attr"]

    def reference(ei, ea):
        if module == "attention":
            return _attention_reference(net, x, ei, ea)[:2]
        return _layer_reference(net, x, ei, ea, residual=True, training=False)

    graph = Graph.from_edge_index(edge_index, N)
    expected = reference(edge_index, edge_attr)
    for _ in range(2):  # the same graph object, reused
        for out, exp in zip(net(x, graph, edge_attr), expected):
            assert_close(out, exp)
    # A different graph (one edge fewer) gives that graph's result.
    fewer = Graph.from_edge_index(edge_index[:, 1:], N)
    for out, exp in zip(net(x, fewer, edge_attr[1:]), reference(edge_index[:, 1:], edge_attr[1:])):
        assert_close(out, exp)
    # The batch vector of a graph does not change the attention (it is over incoming edges only).
    batch = torch.zeros(N, dtype=torch.long)
    batch[N // 2 :] = 1
    keep = batch[edge_index[0]] == batch[edge_index[1]]
    batched = Graph.from_edge_index(edge_index[:, keep], N, batch=batch)
    for out, exp in zip(net(x, batched, edge_attr[keep]), reference(edge_index[:, keep], edge_attr[keep])):
        assert_close(out, exp)
    # Rows of edge_attr must match the graph's edges; an edge_index tensor is not a graph.
    with pytest.raises(ValueError, match="edge_attr must have shape"):
        net(x, fewer, edge_attr)
    with pytest.raises(ValueError, match="graph must be a gnnlab.ops.Graph"):
        net(x, edge_index, edge_attr)
    with pytest.raises(ValueError, match="graph"):
        net(x, graph=edge_index, edge_attr=edge_attr)


def test_dropout_only_in_training():
    x, edge_index, edge_attr = _graph(7, 8)
    layer = GraphTransformerLayer(8, 8, num_heads=2, dropout=0.5, batch_norm=False).to(DTYPE)
    _randomize(layer, 7)
    layer.eval()
    graph = Graph.from_edge_index(edge_index, N)
    expected = _layer_reference(layer, x, edge_index, edge_attr, residual=True, training=False)
    for out, exp in zip(layer(x, graph, edge_attr), expected):
        assert_close(out, exp)
    layer.train()
    torch.manual_seed(0)
    for out, exp in zip(layer(x, graph, edge_attr), expected):
        assert not torch.allclose(out, exp)


def test_interface():
    layer = GraphTransformerLayer(8, 8, num_heads=2)
    assert layer.supports_edge_attr is True and GraphTransformerLayer(8, 8, use_edges=False).supports_edge_attr is False
    assert layer.residual and layer.attention_residual
    assert not GraphTransformerLayer(4, 8, num_heads=2).attention_residual
    assert layer.attention.Q.bias is None and GraphTransformerLayer(8, 8, 2, bias=True).attention.Q.bias is not None
    assert GraphTransformerLayer(8, 8, batch_norm=False).norm1_h.batch_norm is None
    assert GraphTransformerLayer(8, 8, use_edges=False).O_e is None
    assert repr(layer) == "GraphTransformerLayer(8, 8, num_heads=2, use_edges=True)"
    assert repr(GraphTransformerAttention(6, 8, 2)) == "GraphTransformerAttention(6, 8, num_heads=2)"
    assert GraphTransformerAttention.supports_edge_attr is True


def _g(edge_index, num_nodes=N):
    return Graph.from_edge_index(edge_index, num_nodes)


@pytest.mark.parametrize(
    "make_input, match",
    [
        (lambda x, ei, ea: (x, _g(ei)), "requires edge_attr"),
        (lambda x, ei, ea: (x, _g(ei), ea[:, :3]), r"edge_attr must have shape \[num_edges=\d+, 8\]"),
        (lambda x, ei, ea: (x, _g(ei), ea[1:]), "edge_attr must have shape"),
        # Malformed edges are caught where the graph is built, before any layer sees them.
        (lambda x, ei, ea: (x, _g(torch.tensor([[0, 1], [2, N]])), ea[:2]), "out of range"),
        (lambda x, ei, ea: (x, _g(torch.tensor([[-1, 1], [2, 3]])), ea[:2]), r"-1 .*out of range"),
        (lambda x, ei, ea: (x, _g(ei[:1]), ea), r"\[2, num_edges\]"),
        (lambda x, ei, ea: (x[:, :5], _g(ei), ea), "in_channels=8"),
        (lambda x, ei, ea: (x[None], _g(ei), ea), "2-D"),
        (lambda x, ei, ea: (x, _g(ei, N + 1), ea), f"x has {N} nodes but the graph has {N + 1}"),
        (lambda x, ei, ea: (x, ei, ea), "graph must be a gnnlab.ops.Graph"),
    ],
)
@pytest.mark.parametrize("module", ["attention", "layer"])
def test_bad_inputs_raise(make_input, match, module):
    x, edge_index, edge_attr = _graph(8, 8)
    if module == "attention":
        net = GraphTransformerAttention(8, 8, 2).to(DTYPE)
    else:
        net = GraphTransformerLayer(8, 8, num_heads=2).to(DTYPE)
    with pytest.raises(ValueError, match=match):
        net(*make_input(x, edge_index, edge_attr))


def test_bad_construction_raises():
    with pytest.raises(ValueError, match="not divisible by num_heads=3"):
        GraphTransformerAttention(8, 8, 3)
    with pytest.raises(ValueError, match="not divisible by num_heads=3"):
        GraphTransformerLayer(8, 8, num_heads=3)
    with pytest.raises(ValueError, match="num_heads"):
        GraphTransformerAttention(8, 8, 0)
    with pytest.raises(ValueError, match="dropout"):
        GraphTransformerLayer(8, 8, num_heads=2, dropout=1.0)
