"""Link predictors and encoders against brute-force references on random graphs.

The references use Python sets for the neighbourhoods and dense matrices for propagation; hiding
edges with ``edge_mask`` must equal rebuilding the graph without them (target-link removal).
"""
from __future__ import annotations

import math

import networkx as nx
import pytest
import torch

from gnnlab.models.link import GCNEncoder, LinkPredictionModel, PropagationEncoder
from gnnlab.nn.link import DotPredictor, HadamardMLPPredictor, HeuristicPredictor, NCNCPredictor, NCNPredictor
from gnnlab.ops import Graph, target_link_mask


def _graph(n=40, m=160, seed=0):
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n, (2, m), generator=g)
    ei = ei[:, ei[0] != ei[1]]
    nbrs = {u: set() for u in range(n)}
    for a, b in ei.t().tolist():
        nbrs[a].add(b)
        nbrs[b].add(a)
    return ei, nbrs, g


def _without(ei, pairs):
    drop = {(a, b) for a, b in pairs.t().tolist()} | {(b, a) for a, b in pairs.t().tolist()}
    keep = [k for k, (a, b) in enumerate(ei.t().tolist()) if (a, b) not in drop]
    return ei[:, keep]


@pytest.mark.parametrize("kind", ["cn", "aa", "ra"])
def test_heuristics_match_networkx(kind, op_backend):
    n = 50
    ei, _, g = _graph(n, 200, seed=1)
    graph = Graph.undirected(ei, n)
    G = nx.Graph()
    G.add_nodes_from(range(n))
    G.add_edges_from(ei.t().tolist())
    pairs = torch.randint(0, n, (2, 60), generator=g)
    pairs = pairs[:, pairs[0] != pairs[1]]
    ours = HeuristicPredictor(kind)(None, graph, pairs)
    ebunch = pairs.t().tolist()
    if kind == "cn":
        ref = [len(list(nx.common_neighbors(G, a, b))) for a, b in ebunch]
    elif kind == "aa":
        ref = [s for _, _, s in nx.adamic_adar_index(G, ebunch)]
    else:
        ref = [s for _, _, s in nx.resource_allocation_index(G, ebunch)]
    torch.testing.assert_close(ours.double(), torch.tensor(ref, dtype=torch.float64), rtol=1e-5, atol=1e-6)


def test_heuristic_rejects_unknown_kind_and_bad_pairs():
    with pytest.raises(ValueError, match="kind"):
        HeuristicPredictor("jaccard")
    graph = Graph.undirected(torch.tensor([[0, 1], [1, 2]]), 3)
    with pytest.raises(ValueError, match="outside"):
        HeuristicPredictor("cn")(None, graph, torch.tensor([[0], [3]]))
    with pytest.raises(ValueError, match=r"\[2, B\]"):
        HeuristicPredictor("cn")(None, graph, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="integer"):
        HeuristicPredictor("cn")(None, graph, torch.tensor([[0.0], [1.0]]))


def test_dot_and_hadamard_decoders():
    n = 20
    ei, _, g = _graph(n, 60)
    graph = Graph.undirected(ei, n)
    h = torch.randn(n, 8, generator=g)
    pairs = torch.randint(0, n, (2, 30), generator=g)
    torch.testing.assert_close(DotPredictor()(h, graph, pairs), (h[pairs[0]] * h[pairs[1]]).sum(-1))
    mlp = HadamardMLPPredictor(8, 16, num_layers=3, layer_norm=True).eval()
    torch.testing.assert_close(mlp(h, graph, pairs), mlp.mlp(h[pairs[0]] * h[pairs[1]]).squeeze(-1))
    with pytest.raises(ValueError, match="h must have shape"):
        DotPredictor()(h[:5], graph, pairs)
    with pytest.raises(ValueError, match="num_layers"):
        HadamardMLPPredictor(8, 16, num_layers=0)


def _ncn_reference(pred, h, nbrs, pairs, complete: bool):
    """NCN / NCNC written out per pair with Python sets (the paper's equations, code's calibration)."""
    h_sum = pred._summed_features(h)
    zero = torch.zeros(h.size(1), dtype=h.dtype)

    def ncn(i, j):
        s = sum((h_sum[k] for k in nbrs[i] & nbrs[j]), zero)
        return pred._combine(s[None], h, torch.tensor([[i], [j]]))[0]

    out = []
    for i, j in pairs.t().tolist():
        s = sum((h_sum[k] for k in nbrs[i] & nbrs[j]), zero)
        if complete:
            for k in nbrs[i] - nbrs[j]:
                s = s + pred.calibrate(ncn(j, k).detach()) * h_sum[k]
            for k in nbrs[j] - nbrs[i]:
                s = s + pred.calibrate(ncn(i, k).detach()) * h_sum[k]
        out.append(pred._combine(s[None], h, torch.tensor([[i], [j]]))[0])
    return torch.stack(out)


@pytest.mark.parametrize("complete", [False, True], ids=["ncn", "ncnc"])
@pytest.mark.parametrize("use_xlin", [False, True])
def test_ncn_and_ncnc_match_set_reference(complete, use_xlin, op_backend):
    n, f = 40, 12
    ei, nbrs, g = _graph(n, 150, seed=2)
    graph = Graph.undirected(ei, n)
    torch.manual_seed(0)
    cls = NCNCPredictor if complete else NCNPredictor
    kwargs = dict(scale=4.3, offset=2.8, pt=0.75, alpha=0.9, split_size=7) if complete else {}
    pred = cls(f, 24, dropout=0.3, edge_dropout=0.5, use_xlin=use_xlin, tail_act=use_xlin,
               two_layer_head=not use_xlin, **kwargs).double().eval()
    h = torch.randn(n, f, dtype=torch.float64, generator=g, requires_grad=True)
    pairs = torch.randint(0, n, (2, 25), generator=g)
    out = pred(h, graph, pairs)
    ref = _ncn_reference(pred, h, nbrs, pairs, complete)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    # Gradients to h (the completion weights are constants, as in the reference code).
    (ga,) = torch.autograd.grad(out.square().sum(), h)
    (gb,) = torch.autograd.grad(ref.square().sum(), h)
    torch.testing.assert_close(ga, gb, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("cls", [NCNPredictor, NCNCPredictor])
def test_target_link_mask_equals_rebuilt_graph(cls, op_backend):
    n, f = 40, 8
    ei, _, g = _graph(n, 160, seed=3)
    graph = Graph.undirected(ei, n)
    torch.manual_seed(0)
    pred = cls(f, 16).double().eval()
    h = torch.randn(n, f, dtype=torch.float64, generator=g)
    targets = ei[:, :20]
    queries = torch.cat([targets, torch.randint(0, n, (2, 10), generator=g)], dim=1)
    masked = pred(h, graph, queries, target_link_mask(graph, targets))
    rebuilt = pred(h, Graph.undirected(_without(ei, targets), n), queries)
    torch.testing.assert_close(masked, rebuilt)


def test_edge_dropout_only_in_training():
    n = 30
    ei, _, g = _graph(n, 120)
    graph = Graph.undirected(ei, n)
    pred = NCNPredictor(8, 16, edge_dropout=0.5)
    h = torch.randn(n, 8, generator=g)
    pairs = ei[:, :40]
    pred.eval()
    torch.testing.assert_close(pred(h, graph, pairs), pred(h, graph, pairs))
    # Dropping every entry leaves no common neighbours: the score of the empty set.
    pred.edge_dropout = 0.999999
    pred.train()
    for m in pred.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    no_cn = pred._combine(torch.zeros(40, 8), h, pairs)
    torch.testing.assert_close(pred(h, graph, pairs), no_cn)
    with pytest.raises(ValueError, match="edge_dropout"):
        NCNPredictor(8, 16, edge_dropout=1.0)
    with pytest.raises(ValueError, match="pt"):
        NCNCPredictor(8, 16, pt=0.0)


def _dense_adj(ei, n):
    a = torch.zeros(n, n, dtype=torch.float64)
    a[ei[0], ei[1]] = 1.0
    a[ei[1], ei[0]] = 1.0
    return a


@pytest.mark.parametrize("aggr", ["gcn", "sum", "mean"])
def test_propagation_encoder_matches_dense(aggr, op_backend):
    n, f = 30, 10
    ei, _, g = _graph(n, 90, seed=4)
    graph = Graph.undirected(ei, n)
    enc = PropagationEncoder(f, 16, num_layers=2, aggr=aggr, residual=True, jk=True).double().eval()
    x = torch.randn(n, f, dtype=torch.float64, generator=g)
    a = _dense_adj(ei, n)
    deg = a.sum(1)
    if aggr == "gcn":
        d = (deg + 1).rsqrt()
        p = d[:, None] * (a + torch.eye(n, dtype=torch.float64)) * d[None, :]
    elif aggr == "sum":
        p = a
    else:
        p = a / deg.clamp(min=1)[:, None]
    h0 = enc.lin(x)
    h1 = p @ h0 + h0
    h2 = p @ h1 + h1
    ref = enc.jk_weight[0] * h1 + enc.jk_weight[1] * h2
    torch.testing.assert_close(enc(x, graph), ref)
    # Hiding entries == propagating over the graph without them (degrees included).
    targets = ei[:, :15]
    torch.testing.assert_close(enc(x, graph, target_link_mask(graph, targets)),
                               enc(x, Graph.undirected(_without(ei, targets), n)))


def test_propagation_encoder_sparse_input_path_is_the_dense_function():
    n, f = 60, 200
    ei, _, g = _graph(n, 200)
    graph = Graph.undirected(ei, n)
    x = (torch.rand(n, f, generator=g) < 0.03).float()
    enc = PropagationEncoder(f, 16, input_dropout=0.5).eval()
    sparse = enc(x, graph)
    assert enc._sparse_input[2] is not None, "a 3 %-dense input should take the sparse path"
    enc.SPARSE_INPUT_DENSITY = 0.0
    enc._sparse_input = None
    torch.testing.assert_close(sparse, enc(x, graph))
    # Training: the dropped input is still an unbiased scaling of the nonzeros only.
    enc.SPARSE_INPUT_DENSITY = 0.1
    enc._sparse_input = None
    enc.train()
    torch.manual_seed(0)
    out = enc.lin.weight.new_zeros(n, 16)
    for _ in range(400):
        out += enc._input_map(x).detach() / 400
    torch.testing.assert_close(out, enc.lin(x).detach(), rtol=0.0, atol=0.15)
    grad = torch.autograd.grad(enc._input_map(x).sum(), enc.lin.weight)[0]
    assert grad.abs().sum() > 0


def test_featureless_encoder_and_errors():
    n = 12
    graph = Graph.undirected(torch.tensor([[0, 1, 2], [1, 2, 3]]), n)
    enc = PropagationEncoder(None, 8, num_nodes=n, aggr="sum")
    assert enc(None, graph).shape == (n, 8)
    with pytest.raises(ValueError, match="num_nodes"):
        PropagationEncoder(None, 8)
    with pytest.raises(ValueError, match="aggr"):
        PropagationEncoder(4, 8, aggr="max")
    with pytest.raises(ValueError, match="x must have shape"):
        PropagationEncoder(4, 8)(torch.randn(n + 1, 4), graph)
    with pytest.raises(ValueError, match="embedding has"):
        PropagationEncoder(None, 8, num_nodes=n + 1)(None, graph)


def test_gcn_encoder_mask_equals_rebuilt_graph(op_backend):
    n, f = 30, 6
    ei, _, g = _graph(n, 100, seed=5)
    graph = Graph.undirected(ei, n)
    enc = GCNEncoder(f, 16, 8, num_layers=2).double().eval()
    x = torch.randn(n, f, dtype=torch.float64, generator=g)
    targets = ei[:, :12]
    torch.testing.assert_close(enc(x, graph, target_link_mask(graph, targets)),
                               enc(x, Graph.undirected(_without(ei, targets), n)))
    # Without a mask: the two GCN layers on the full graph (PyG's normalisation, checked in test_gcn).
    a = _dense_adj(ei, n) + torch.eye(n, dtype=torch.float64)
    d = a.sum(1).rsqrt()
    p = d[:, None] * a * d[None, :]
    h = (p @ enc.convs[0].lin(x) + enc.convs[0].bias).relu()
    torch.testing.assert_close(enc(x, graph), p @ enc.convs[1].lin(h) + enc.convs[1].bias)


def test_model_groups_and_forward():
    n = 20
    ei, _, g = _graph(n, 60)
    graph = Graph.undirected(ei, n)
    model = LinkPredictionModel(NCNPredictor(16, 16), PropagationEncoder(5, 16), encoder_lr=0.01, predictor_lr=0.002)
    groups = model.optimizer_groups()
    assert [gr["lr"] for gr in groups] == [0.01, 0.002]
    assert sum(p.numel() for gr in groups for p in gr["params"]) == sum(p.numel() for p in model.parameters())
    x = torch.randn(n, 5, generator=g)
    assert model(x, graph, ei[:, :7]).shape == (7,)
    heuristic = LinkPredictionModel(HeuristicPredictor("ra"))
    assert heuristic.optimizer_groups() == [] and heuristic.encode(x, graph) is None
    assert math.isfinite(float(heuristic(x, graph, ei[:, :7]).sum()))


def test_gcn_encoder_options_follow_ncn_layout():
    """NCN's learned encoder: conv -> LN -> dropout -> ReLU (also after the last layer when asked), residuals."""
    n = 25
    ei, _, g = _graph(n, 80, seed=6)
    graph = Graph.undirected(ei, n)
    x = torch.randn(n, 16, generator=g, dtype=torch.float64)
    enc = GCNEncoder(16, 16, 16, num_layers=2, layer_norm=True, residual=True, activate_last=True).double().eval()
    h1 = enc.norms[0](enc.convs[0](x, graph)[0]).relu() + x
    h2 = enc.norms[1](enc.convs[1](h1, graph)[0]).relu() + h1
    torch.testing.assert_close(enc(x, graph), h2)
    plain = GCNEncoder(16, 8, 8, num_layers=2, layer_norm=True, residual=True).double().eval()
    assert len(plain.norms) == 1  # the last layer stays linear; the first changes the width: no residual there
    h1 = plain.norms[0](plain.convs[0](x, graph)[0]).relu()
    torch.testing.assert_close(plain(x, graph), plain.convs[1](h1, graph)[0] + h1)
    with pytest.raises(ValueError, match="edge_dropout"):
        GCNEncoder(4, 4, 4, edge_dropout=1.5)
