"""PNAConv against torch_geometric.nn.PNAConv with the same weights, on both op backends."""
from __future__ import annotations

import functools
import math

import pytest
import torch
import torch_geometric.nn
from _dense import DTYPE, random_graph
from torch.testing import assert_close
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader

import gnnlab.nn.conv.pna as pna_module
from gnnlab.nn.conv import PNAConv
from gnnlab.nn.conv.pna import PNA_AGGREGATORS, PNA_SCALERS
from gnnlab.transforms.degree import degree_histogram, degree_statistics
from gnnlab.nn.layers import ConvLayer
from gnnlab.ops import Graph

N = 14
IN = 4
OUT = 6
EDGE_DIM = 3
# Degree histogram of some "training set": 1 node of degree 0, 3 of degree 1, ...
DEG = torch.tensor([1, 3, 5, 2, 0, 1])
# The averages of DEG, as the data module hands them to the layer.
STATS = dict(zip(("avg_degree", "avg_log_degree"), degree_statistics(DEG)))
ALL_AGGREGATORS = list(PNA_AGGREGATORS)
ALL_SCALERS = list(PNA_SCALERS)


def _setup(seed: int, num_edges: int = 40, in_ch: int = IN):
    g = torch.Generator().manual_seed(seed)
    # Random edges with duplicates and self loops (one doubled) among 10 of the 14 nodes; the other
    # four get: only an outgoing edge / only a duplicated incoming edge / a single incoming edge /
    # nothing. So degree 0, degree 1 and a zero variance occur in every graph.
    edge_index = random_graph(N, num_edges, generator=g, num_isolated=4, num_self_loops=2)
    touched = torch.zeros(N, dtype=torch.bool)
    touched[edge_index.flatten()] = True
    isolated = (~touched).nonzero().flatten().tolist()
    active = touched.nonzero().flatten().tolist()
    extra = torch.tensor(
        [[isolated[0], active[0], active[0], active[1]], [active[2], isolated[1], isolated[1], isolated[2]]]
    )
    edge_index = torch.cat([edge_index, extra], dim=1)
    edge_index = edge_index[:, torch.randperm(edge_index.size(1), generator=g)]
    x = torch.randn(N, in_ch, generator=g, dtype=DTYPE)
    edge_attr = torch.randn(edge_index.size(1), EDGE_DIM, generator=g, dtype=DTYPE)
    return x, edge_index, edge_attr


def _pyg_state(ours: PNAConv) -> dict:
    """Our state dict under PyG's names (PyG keeps the degree averages in ``aggr_module``)."""
    state = {}
    for key, value in ours.state_dict().items():
        state[f"aggr_module.{key}" if key.startswith("avg_deg_") else key] = value
    return state


def _pair(in_ch=IN, out_ch=OUT, seed=0, aggregators=ALL_AGGREGATORS, scalers=ALL_SCALERS, **options):
    """Our layer with random weights, and PyG's layer loaded from our state dict."""
    torch.manual_seed(seed)
    ours = PNAConv(in_ch, out_ch, aggregators, scalers, **STATS, **options).to(DTYPE)
    with torch.no_grad():
        for name, p in ours.named_parameters():
            if name.endswith("bias"):
                p.uniform_(-1.0, 1.0)  # non-zero biases, so that a dropped one shows
    theirs = torch_geometric.nn.PNAConv(in_ch, out_ch, list(aggregators), list(scalers), DEG, **options).to(DTYPE)
    theirs.load_state_dict(_pyg_state(ours), strict=True)
    return ours, theirs


def _call(layer, x, edge_index, edge_attr=None):
    """Our layer on a Graph built from ``edge_index`` (checking the pair it returns); PyG's on ``edge_index``."""
    if isinstance(layer, PNAConv):
        out, edge_out = layer(x, Graph.from_edge_index(edge_index, x.size(0)), edge_attr)
        assert edge_out is edge_attr  # read, not updated: handed back unchanged (None without edge_dim)
        return out
    return layer(x, edge_index) if edge_attr is None else layer(x, edge_index, edge_attr)


def _run(layer, x, edge_index, edge_attr=None):
    x = x.clone().requires_grad_()
    if edge_attr is not None:
        edge_attr = edge_attr.clone().requires_grad_()
    layer.zero_grad()
    out = _call(layer, x, edge_index, edge_attr)
    weights = torch.linspace(-1.0, 2.0, out.numel(), dtype=out.dtype).view_as(out)
    (out * weights).sum().backward()
    # A parameter the output does not depend on (the first pre-layer bias when only std/var are
    # aggregated: the variance is shift invariant) has no gradient in our layer and ~0 in PyG's.
    grads = {
        name.removeprefix("aggr_module."): torch.zeros_like(p) if p.grad is None else p.grad.clone()
        for name, p in layer.named_parameters()
    }
    return out.detach(), x.grad, None if edge_attr is None else edge_attr.grad, grads


def _compare(ours, theirs, x, edge_index, edge_attr=None):
    out, grad_x, grad_e, grads = _run(ours, x, edge_index, edge_attr)
    ref_out, ref_grad_x, ref_grad_e, ref_grads = _run(theirs, x, edge_index, edge_attr)
    assert out.shape == (x.size(0), ours.out_channels)
    assert_close(out, ref_out)
    assert_close(grad_x, ref_grad_x)
    if edge_attr is not None:
        assert_close(grad_e, ref_grad_e)
    assert grads.keys() == ref_grads.keys()
    for name in grads:
        assert_close(grads[name], ref_grads[name], msg=name)


def _label(value):
    return "+".join(value) if isinstance(value, list) else str(value)


SUBSETS_A = [[name] for name in PNA_AGGREGATORS] + [["mean", "min", "max", "std"], ALL_AGGREGATORS]
SUBSETS_S = [[name] for name in PNA_SCALERS] + [ALL_SCALERS]


@pytest.mark.parametrize("scalers", SUBSETS_S, ids=_label)
@pytest.mark.parametrize("aggregators", SUBSETS_A, ids=_label)
def test_fused_path_matches_pyg(op_backend, aggregators, scalers):
    x, edge_index, _ = _setup(len(aggregators) + 7 * len(scalers))
    ours, theirs = _pair(aggregators=aggregators, scalers=scalers)
    _compare(ours, theirs, x, edge_index)


@pytest.mark.parametrize("aggregators", [[name] for name in PNA_AGGREGATORS] + [ALL_AGGREGATORS], ids=_label)
@pytest.mark.parametrize(
    "options",
    [dict(edge_dim=EDGE_DIM), dict(pre_layers=2), dict(pre_layers=3, edge_dim=EDGE_DIM)],
    ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()),
)
def test_materialised_path_matches_pyg(op_backend, aggregators, options):
    x, edge_index, edge_attr = _setup(len(aggregators) + 3 * len(options))
    ours, theirs = _pair(aggregators=aggregators, **options)
    _compare(ours, theirs, x, edge_index, edge_attr if "edge_dim" in options else None)


@pytest.mark.parametrize(
    "options",
    [
        dict(towers=2),
        dict(towers=2, divide_input=True),
        dict(towers=3, post_layers=2),
        dict(towers=2, divide_input=True, edge_dim=EDGE_DIM),
        dict(towers=2, pre_layers=2, post_layers=3, edge_dim=EDGE_DIM),
        dict(towers=3, divide_input=True, pre_layers=2),
        dict(post_layers=2, act="tanh"),
        dict(pre_layers=2, act="leaky_relu", act_kwargs={"negative_slope": 0.3}),
        dict(train_norm=True),
        dict(train_norm=True, edge_dim=EDGE_DIM, towers=2),
    ],
    ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()),
)
def test_options_match_pyg(op_backend, options):
    in_ch = 6 if options.get("divide_input") else IN
    x, edge_index, edge_attr = _setup(len(options), in_ch=in_ch)
    ours, theirs = _pair(in_ch=in_ch, **options)
    _compare(ours, theirs, x, edge_index, edge_attr if "edge_dim" in options else None)


@pytest.mark.parametrize("options", [dict(), dict(towers=2, edge_dim=EDGE_DIM)], ids=["fused", "materialised"])
def test_float32_matches_pyg(op_backend, options):
    x, edge_index, edge_attr = _setup(5)
    ours, theirs = _pair(**options)
    ours, theirs = ours.float(), theirs.float()
    ea = edge_attr.float() if "edge_dim" in options else None
    assert_close(_call(ours, x.float(), edge_index, ea), _call(theirs, x.float(), edge_index, ea), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "options, fused",
    [
        (dict(), True),
        (dict(towers=2, divide_input=True), True),
        (dict(pre_layers=2), False),
        (dict(edge_dim=EDGE_DIM), False),
    ],
)
def test_fused_path_forms_no_per_edge_messages(monkeypatch, options, fused):
    calls = []
    real = pna_module.reduce_messages
    monkeypatch.setattr(pna_module, "reduce_messages", lambda *a, **k: calls.append(1) or real(*a, **k))
    x, edge_index, edge_attr = _setup(1, in_ch=6)
    layer = PNAConv(6, OUT, ALL_AGGREGATORS, ALL_SCALERS, **STATS, **options).to(DTYPE)
    layer(x, Graph.from_edge_index(edge_index, N), edge_attr if "edge_dim" in options else None)
    assert bool(calls) is not fused


def test_isolated_nodes_aggregate_to_zero(op_backend):
    x, edge_index, _ = _setup(2)
    layer = PNAConv(IN, OUT, ALL_AGGREGATORS, ALL_SCALERS, **STATS).to(DTYPE)
    no_in = torch.bincount(edge_index[1], minlength=N) == 0
    post = layer.post_nns[0][0]
    # With every aggregate zero, the layer is lin(post([x_i, 0, ..., 0])).
    expected = layer.lin(x[no_in] @ post.weight[:, :IN].T + post.bias)
    out, _ = layer(x, Graph.from_edge_index(edge_index, N))
    assert_close(out[no_in], expected)


def test_default_scalers_need_only_the_log_average():
    PNAConv(IN, OUT, avg_log_degree=degree_statistics(DEG)[1])


def test_degree_histogram_rejects_empty_and_bad_items():
    with pytest.raises(ValueError, match="at least one node"):
        degree_statistics(torch.zeros(3, dtype=torch.long))
def test_degree_statistics_match_pyg():
    avg_lin, avg_log = degree_statistics(DEG)
    aggr = torch_geometric.nn.PNAConv(IN, OUT, ["mean"], ["identity"], DEG).aggr_module
    assert avg_lin == pytest.approx(aggr.init_avg_deg_lin)
    assert avg_log == pytest.approx(aggr.init_avg_deg_log)
    nodes = DEG.sum().item()
    assert avg_log == pytest.approx(sum(math.log(d + 1) * c for d, c in enumerate(DEG.tolist())) / nodes)


def test_degree_histogram_forms():
    g = torch.Generator().manual_seed(4)
    graphs = []
    for n in (5, 7, 4):
        edge_index = torch.randint(n - 1, (2, 3 * n), generator=g)  # the last node has no edges
        graphs.append(Data(edge_index=edge_index, num_nodes=n))
    expected = torch_geometric.nn.PNAConv.get_degree_histogram(DataLoader(graphs, batch_size=2))
    assert torch.equal(degree_histogram(graphs), expected)
    assert torch.equal(degree_histogram(DataLoader(graphs, batch_size=2)), expected)
    assert torch.equal(degree_histogram([(d.edge_index, d.num_nodes) for d in graphs]), expected)
    single = graphs[0]
    assert torch.equal(degree_histogram(single), degree_histogram([single]))
    assert torch.equal(degree_histogram((single.edge_index, 5)), degree_histogram([single]))
    # A bare edge_index counts max index + 1 nodes: the trailing isolated node is missed.
    bare = degree_histogram(single.edge_index)
    assert bare.sum() == 4 and degree_histogram(single).sum() == 5
    with pytest.raises(ValueError, match="no graphs"):
        degree_histogram([])
    with pytest.raises(ValueError, match="each graph must be"):
        degree_histogram([3])


def test_shared_graph_gives_same_output(op_backend):
    # One Graph per batch, shared by every layer and call, gives what a fresh graph of the same edges gives.
    x, edge_index, edge_attr = _setup(6)
    graph = Graph.from_edge_index(edge_index, N)
    for options, ea in ((dict(), None), (dict(edge_dim=EDGE_DIM), edge_attr)):
        layer, _ = _pair(**options)
        first, _ = layer(x, graph, ea)
        assert_close(layer(x, graph, ea)[0], first)
        assert_close(layer(x, Graph.from_edge_index(edge_index.clone(), N), ea)[0], first)


@pytest.mark.parametrize("options", [dict(), dict(edge_dim=EDGE_DIM), dict(pre_layers=2)], ids=str)
def test_reads_the_graph_it_is_given(op_backend, options):
    x, edge_index, edge_attr = _setup(9)
    ea = edge_attr if "edge_dim" in options else None
    ours, theirs = _pair(**options)
    # Edges in another order (edge_attr rows following graph.edge_index): the same result.
    perm = torch.randperm(edge_index.size(1), generator=torch.Generator().manual_seed(1))
    out, _ = ours(x, Graph.from_edge_index(edge_index, N), ea)
    shuffled = Graph.from_edge_index(edge_index[:, perm], N)
    assert_close(ours(x, shuffled, None if ea is None else ea[perm])[0], out)
    # A graph whose edge_index is only derived from its CSR arrays (moved copy): the same result.
    assert_close(ours(x, Graph.from_edge_index(edge_index, N).to("cpu"), ea)[0], out)
    # Other edges: the result of those edges, not of any edge_index seen before.
    reversed_edges = edge_index.flip(0)
    reversed_out, _ = ours(x, Graph.from_edge_index(reversed_edges, N), ea)
    assert not torch.allclose(reversed_out, out)
    assert_close(reversed_out, theirs(x, reversed_edges) if ea is None else theirs(x, reversed_edges, ea))


def test_mismatched_graph_raises():
    x, edge_index, edge_attr = _setup(6)
    layer, _ = _pair()
    with pytest.raises(ValueError, match=f"x has {N} nodes but the graph has {N + 1}"):
        layer(x, Graph.from_edge_index(edge_index, N + 1))
    with_edges, _ = _pair(edge_dim=EDGE_DIM)
    with pytest.raises(ValueError, match="edge_attr must have shape"):
        with_edges(x, Graph.from_edge_index(edge_index[:, :-3], N), edge_attr)
    # The old call with an edge_index tensor in place of the graph.
    for conv, ea in ((layer, None), (with_edges, edge_attr)):
        with pytest.raises(ValueError, match="graph must be a gnnlab.ops.Graph, got Tensor"):
            conv(x, edge_index, ea)


def _graph(edge_index):
    return Graph.from_edge_index(edge_index, N)


@pytest.mark.parametrize(
    "make_input, match",
    [
        # Malformed edges are rejected where the graph is built, before the layer runs.
        (lambda x, ei, ea: (x, _graph(torch.tensor([[0, N], [1, 2]])), None), "out of range"),
        (lambda x, ei, ea: (x, _graph(torch.tensor([[0, 1], [-3, 2]])), None), "entry -3 .*out of range"),
        (lambda x, ei, ea: (x, _graph(ei.t()), None), r"\[2, num_edges\]"),
        (lambda x, ei, ea: (torch.cat([x, x], 1), _graph(ei), None), f"in_channels={IN}"),
        (lambda x, ei, ea: (x[None], _graph(ei), None), "2-D"),
        (lambda x, ei, ea: (x[:-1], _graph(ei), None), f"x has {N - 1} nodes"),
        (lambda x, ei, ea: (x, ei, None), "graph must be a gnnlab.ops.Graph"),
        (lambda x, ei, ea: (x, _graph(ei), ea), "does not use edge features"),
    ],
)
def test_bad_inputs_raise(make_input, match):
    x, edge_index, edge_attr = _setup(7)
    layer, _ = _pair()
    with pytest.raises(ValueError, match=match):
        layer(*make_input(x, edge_index, edge_attr))


@pytest.mark.parametrize(
    "edge_attr, match",
    [
        (lambda ea: None, "requires edge_attr"),
        (lambda ea: ea[:-1], "edge_attr must have shape"),
        (lambda ea: ea[:, :2], "edge_attr must have shape"),
    ],
)
def test_bad_edge_attr_raises(edge_attr, match):
    x, edge_index, ea = _setup(7)
    layer, _ = _pair(edge_dim=EDGE_DIM)
    with pytest.raises(ValueError, match=match):
        layer(x, Graph.from_edge_index(edge_index, N), edge_attr(ea))


@pytest.mark.parametrize(
    "options, match",
    [
        (dict(aggregators=["mean", "median"]), "unknown aggregator 'median'"),
        (dict(scalers=["identity", "log"]), "unknown scaler 'log'"),
        (dict(aggregators=[]), "at least one"),
        (dict(avg_log_degree=None), "avg_log_degree is required"),
        (dict(avg_degree=None), "need avg_degree"),
        (dict(avg_log_degree=0.0, scalers=["identity"]), "must be positive"),
        (dict(avg_degree=0.0), "avg_degree must be positive"),
        (dict(towers=4), "not divisible by towers=4"),
        (dict(towers=2, divide_input=True, in_ch=5), "in_channels=5 must be divisible"),
        (dict(pre_layers=0), "pre_layers must be a positive integer"),
        (dict(edge_dim=0), "edge_dim must be a positive integer"),
    ],
)
def test_bad_options_raise(options, match):
    kwargs = dict(aggregators=ALL_AGGREGATORS, scalers=ALL_SCALERS, **STATS)
    kwargs.update(options)
    in_ch = kwargs.pop("in_ch", IN)
    with pytest.raises(ValueError, match=match):
        PNAConv(in_ch, OUT, **kwargs)


def test_in_conv_layer_edge_features_follow_edge_dim():
    x, edge_index, edge_attr = _setup(8)
    avg_log = degree_statistics(DEG)[1]
    plain = ConvLayer(IN, OUT, functools.partial(PNAConv, avg_log_degree=avg_log)).to(DTYPE)
    assert not plain.uses_edge_attr
    graph = Graph.from_edge_index(edge_index, N)
    out, e = plain(x, graph, edge_attr)  # edge features are not handed on
    assert out.shape == (N, OUT) and e is edge_attr
    with_edges = ConvLayer(IN, OUT, functools.partial(PNAConv, avg_log_degree=avg_log, edge_dim=EDGE_DIM)).to(DTYPE)
    assert with_edges.uses_edge_attr
    out, _ = with_edges(x, graph, edge_attr)
    assert out.shape == (N, OUT)


def test_interface():
    assert PNAConv.supports_edge_attr is False
    assert PNAConv(IN, OUT, **STATS, edge_dim=EDGE_DIM).supports_edge_attr is True
    assert repr(PNAConv(IN, OUT, **STATS, towers=2)) == "PNAConv(4, 6, towers=2, edge_dim=None)"
    layer = PNAConv(IN, OUT, **STATS, train_norm=True)
    with torch.no_grad():
        layer.avg_deg_log.fill_(7.0)
    layer.reset_parameters()
    assert float(layer.avg_deg_log.detach()) == pytest.approx(degree_statistics(DEG)[1])
