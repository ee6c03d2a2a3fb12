"""Common-neighbour ops vs Python sets, scipy/networkx heuristics and the plain-torch reference."""
from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import gnnlab.ops
from gnnlab.ops import (
    Graph,
    adamic_adar,
    common_neighbor_aggregate,
    common_neighbor_count,
    common_neighbor_sets,
    has_edge,
    masked_degree,
    resource_allocation,
    target_link_mask,
)

BACKENDS = ["torch"] + (["extension"] if gnnlab.ops.extension_available() else [])
MODES = ["common", "src_only", "dst_only"]


def _graph(g, num_nodes, num_edges, hub_degree=0):
    """Random undirected graph; optionally node 0 is a hub joined to `hub_degree` others (galloping path)."""
    ei = torch.randint(0, num_nodes, (2, num_edges), generator=g)
    if hub_degree:
        others = torch.randperm(num_nodes - 1, generator=g)[:hub_degree] + 1
        ei = torch.cat([ei, torch.stack([torch.zeros_like(others), others])], dim=1)
    return ei


def _neighbour_sets(graph, mask=None):
    sets = [set() for _ in range(graph.num_nodes)]
    ei = graph.edge_index
    live = torch.ones(ei.size(1), dtype=torch.bool) if mask is None else mask.bool()
    for (v, u), keep in zip(ei.t().tolist(), live.tolist()):
        if keep:
            sets[u].add(v)
    return sets


def _oracle(adj, src, dst, mode, mask=None):
    nb = _neighbour_sets(adj, mask)
    out = []
    for i, j in zip(src.tolist(), dst.tolist()):
        a, b = nb[i], nb[j]
        out.append(sorted({"common": a & b, "src_only": a - b, "dst_only": b - a}[mode]))
    return out


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    num_nodes=st.integers(1, 60),
    num_edges=st.integers(0, 200),
    num_pairs=st.integers(0, 40),
    hub=st.booleans(),
    masked=st.booleans(),
    mode=st.sampled_from(MODES),
)
def test_sets_and_counts_match_python_sets(seed, num_nodes, num_edges, num_pairs, hub, masked, mode):
    g = torch.Generator().manual_seed(seed)
    hub_degree = min(num_nodes - 1, 40) if hub and num_nodes > 2 else 0
    adj = Graph.undirected(_graph(g, num_nodes, num_edges, hub_degree), num_nodes)
    src = torch.randint(0, num_nodes, (num_pairs,), generator=g)
    dst = torch.randint(0, num_nodes, (num_pairs,), generator=g)
    if hub_degree and num_pairs:
        src[: num_pairs // 2] = 0  # hub against ordinary nodes: degree ratio above the galloping switch
    mask = (torch.rand(adj.num_edges, generator=g) > 0.3) if masked else None
    expected = _oracle(adj, src, dst, mode, mask)
    for backend in BACKENDS:
        with gnnlab.ops.backend_scope(backend):
            sets = common_neighbor_sets(adj, src, dst, mode, edge_mask=mask)
            counts = common_neighbor_count(adj, src, dst, edge_mask=mask, mode=mode)
        got = [sets.nodes[sets.ptr[p] : sets.ptr[p + 1]].tolist() for p in range(num_pairs)]
        assert got == expected, backend
        assert counts.tolist() == [len(s) for s in expected], backend


def test_int32_adjacency_and_uint8_mask_match_int64():
    if "extension" not in BACKENDS:
        pytest.skip("gnnlab._C not built")
    g = torch.Generator().manual_seed(0)
    adj = Graph.undirected(_graph(g, 80, 600, hub_degree=60), 80)
    src, dst = torch.randint(0, 80, (2, 100), generator=g)
    mask = torch.rand(adj.num_edges, generator=g) > 0.2
    for mode in (0, 1, 2):
        ref = torch.ops.gnnlab.common_neighbor_sets(adj.rowptr, adj.col, src, dst, mask, mode)
        got = torch.ops.gnnlab.common_neighbor_sets(adj.rowptr, adj.col.int(), src, dst, mask.to(torch.uint8), mode)
        for a, b in zip(ref, got):
            assert torch.equal(a, b)


def _scipy_adjacency(adj):
    ei = adj.edge_index.flip(0).numpy()
    return sp.csr_matrix((np.ones(ei.shape[1]), (ei[0], ei[1])), shape=(adj.num_nodes, adj.num_nodes))


@pytest.mark.parametrize("backend", BACKENDS)
def test_heuristics_match_scipy_and_networkx(backend):
    g = torch.Generator().manual_seed(1)
    ei = _graph(g, 120, 700, hub_degree=90)
    ei = ei[:, ei[0] != ei[1]]  # networkx's indices are defined on simple graphs
    adj = Graph.undirected(ei, 120)
    src, dst = torch.randint(0, 120, (2, 300), generator=g)
    keep = src != dst
    src, dst = src[keep], dst[keep]
    with gnnlab.ops.backend_scope(backend):
        cn = common_neighbor_count(adj, src, dst)
        aa = adamic_adar(adj, src, dst)
        ra = resource_allocation(adj, src, dst)
    A = _scipy_adjacency(adj)
    expected_cn = np.asarray(A[src.numpy()].multiply(A[dst.numpy()]).sum(1)).ravel()
    assert cn.numpy().tolist() == expected_cn.astype(np.int64).tolist()
    G = nx.Graph()
    G.add_nodes_from(range(120))
    G.add_edges_from(adj.edge_index.t().tolist())
    pairs = list(zip(src.tolist(), dst.tolist()))
    expected_aa = [s for _, _, s in nx.adamic_adar_index(G, pairs)]
    expected_ra = [s for _, _, s in nx.resource_allocation_index(G, pairs)]
    np.testing.assert_allclose(aa.numpy(), expected_aa, rtol=1e-12)
    np.testing.assert_allclose(ra.numpy(), expected_ra, rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_target_link_mask_equals_rebuilding_without_the_batch(backend):
    g = torch.Generator().manual_seed(2)
    ei = _graph(g, 70, 400)
    adj = Graph.undirected(ei, 70)
    full = adj.edge_index
    batch = full[:, torch.randperm(full.size(1), generator=g)[:40]]  # existing links as targets
    mask = target_link_mask(adj, batch)
    # Rebuild from scratch without the batch's links (both directions).
    n = 70
    drop = set((batch[0] * n + batch[1]).tolist()) | set((batch[1] * n + batch[0]).tolist())
    kept = torch.tensor([k not in drop for k in (full[0] * n + full[1]).tolist()])
    rebuilt = Graph.undirected(full[:, kept], n)
    assert int((~mask).sum()) == full.size(1) - rebuilt.num_edges
    src, dst = torch.cat([batch, torch.randint(0, n, (2, 50), generator=g)], dim=1)
    with gnnlab.ops.backend_scope(backend):
        for mode in MODES:
            a = common_neighbor_sets(adj, src, dst, mode, edge_mask=mask)
            b = common_neighbor_sets(rebuilt, src, dst, mode)
            assert torch.equal(a.ptr, b.ptr) and torch.equal(a.nodes, b.nodes), mode
        torch.testing.assert_close(adamic_adar(adj, src, dst, mask), adamic_adar(rebuilt, src, dst))
        torch.testing.assert_close(resource_allocation(adj, src, dst, mask), resource_allocation(rebuilt, src, dst))


def test_undirected_graph_orders_edges_as_csr():
    ei = torch.tensor([[0, 2, 1, 2, 3, 3], [1, 1, 0, 2, 1, 1]])  # a duplicate, a reverse pair, a self-loop
    graph = Graph.undirected(ei, 5)
    assert torch.equal(graph.perm, torch.arange(graph.num_edges))
    assert graph.edge_index.tolist() == [[1, 0, 2, 3, 1, 2, 1], [0, 1, 1, 1, 2, 2, 3]]  # (target, source) order
    assert graph.rowptr.tolist() == [0, 1, 4, 6, 7, 7] and graph.col.tolist() == [1, 0, 2, 3, 1, 2, 1]
    assert masked_degree(graph).tolist() == [1, 3, 2, 1, 0]
    mask = torch.ones(graph.num_edges, dtype=torch.bool)
    mask[1] = False  # the edge 0 -> 1
    assert masked_degree(graph, mask).tolist() == [1, 2, 2, 1, 0]
    assert has_edge(graph, torch.tensor([[0, 1, 0, 4], [1, 0, 2, 4]])).tolist() == [True, True, False, False]
    with pytest.raises(TypeError, match="Graph"):
        common_neighbor_count(ei, torch.tensor([0]), torch.tensor([1]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_edge_masks_follow_edge_order_when_it_differs_from_csr_order(backend):
    g = torch.Generator().manual_seed(5)
    csr = Graph.undirected(_graph(g, 30, 120), 30)
    # The same edges listed by source: rows stay ascending, edge order is not CSR order.
    ei = csr.edge_index[:, torch.argsort(csr.edge_index[0] * 30 + csr.edge_index[1])]
    other = Graph.from_edge_index(ei, 30)
    assert not torch.equal(other.perm, torch.arange(other.num_edges))
    targets = ei[:, :10]
    src, dst = torch.cat([targets, torch.randint(0, 30, (2, 20), generator=g)], dim=1)
    mask = target_link_mask(other, targets)
    hidden = sorted(map(tuple, ei[:, ~mask].t().tolist()))  # the same edges, both directions
    assert hidden == sorted(map(tuple, csr.edge_index[:, ~target_link_mask(csr, targets)].t().tolist()))
    with gnnlab.ops.backend_scope(backend):
        for mode in MODES:
            a = common_neighbor_sets(other, src, dst, mode, edge_mask=mask)
            b = common_neighbor_sets(csr, src, dst, mode, edge_mask=target_link_mask(csr, targets))
            assert torch.equal(a.ptr, b.ptr) and torch.equal(a.nodes, b.nodes), mode
        assert torch.equal(masked_degree(other, mask), masked_degree(csr, target_link_mask(csr, targets)))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", MODES)
def test_aggregate_matches_dense_and_gradchecks(backend, mode):
    g = torch.Generator().manual_seed(3)
    adj = Graph.undirected(_graph(g, 40, 250, hub_degree=30), 40)
    src, dst = torch.randint(0, 40, (2, 60), generator=g)
    A = torch.zeros(40, 40, dtype=torch.float64)
    ei = adj.edge_index
    A[ei[1], ei[0]] = 1.0
    select = {"common": A[src] * A[dst], "src_only": A[src] * (1 - A[dst]), "dst_only": A[dst] * (1 - A[src])}[mode]
    h = torch.randn(40, 6, generator=g, dtype=torch.float64, requires_grad=True)
    with gnnlab.ops.backend_scope(backend):
        sets = common_neighbor_sets(adj, src, dst, mode)
        torch.testing.assert_close(common_neighbor_aggregate(h, adj, src, dst, mode), select @ h)
        w = torch.rand(sets.nodes.numel(), generator=g, dtype=torch.float64, requires_grad=True)
        dense_w = torch.zeros(60, 40, dtype=torch.float64)
        dense_w[sets.pair(), sets.nodes] = w.detach()
        torch.testing.assert_close(sets.aggregate(h, w), dense_w @ h)
        assert torch.autograd.gradcheck(lambda h, w: sets.aggregate(h, w), (h, w))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("num_pairs", [20, 60])  # fewer and more pairs (rows) than nodes
def test_pair_set_aggregate_double_backward(backend, num_pairs):
    g = torch.Generator().manual_seed(4)
    adj = Graph.undirected(_graph(g, 30, 150, hub_degree=20), 30)
    src, dst = torch.randint(0, 30, (2, num_pairs), generator=g)
    h = torch.randn(30, 3, generator=g, dtype=torch.float64, requires_grad=True)
    with gnnlab.ops.backend_scope(backend):
        sets = common_neighbor_sets(adj, src, dst, "src_only")
        w = torch.rand(sets.nodes.numel(), generator=g, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradgradcheck(lambda h, w: sets.aggregate(h, w), (h, w))


@pytest.mark.skipif(not gnnlab.ops.extension_available(), reason="gnnlab._C not built")
def test_opcheck():
    g = torch.Generator().manual_seed(4)
    adj = Graph.undirected(_graph(g, 30, 120), 30)
    src, dst = torch.randint(0, 30, (2, 25), generator=g)
    mask = torch.rand(adj.num_edges, generator=g) > 0.5
    weight = torch.rand(30, generator=g, dtype=torch.float64)
    torch.library.opcheck(torch.ops.gnnlab.common_neighbor_count, (adj.rowptr, adj.col, src, dst, weight, mask, 0))
    torch.library.opcheck(torch.ops.gnnlab.common_neighbor_count, (adj.rowptr, adj.col, src, dst, None, None, 1))
    torch.library.opcheck(
        torch.ops.gnnlab.common_neighbor_sets,
        (adj.rowptr, adj.col, src, dst, mask, 0),
        test_utils=("test_schema", "test_faketensor"),
    )


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda adj: common_neighbor_count(adj, torch.tensor([0, 10]), torch.tensor([1, 2])), "out of range"),
        (lambda adj: common_neighbor_count(adj, torch.tensor([-1]), torch.tensor([1])), "out of range"),
        (lambda adj: common_neighbor_count(adj, torch.tensor([0, 1]), torch.tensor([1])), "one entry per query pair"),
        (lambda adj: common_neighbor_sets(adj, torch.tensor([0]), torch.tensor([1]), edge_mask=torch.ones(3, dtype=torch.bool)), "edge_mask"),
        (lambda adj: common_neighbor_sets(adj, torch.tensor([0]), torch.tensor([1]), mode="both"), "mode must be one of"),
        (lambda adj: common_neighbor_count(adj, torch.tensor([0.0]), torch.tensor([1.0])), "integer"),
        (lambda adj: common_neighbor_sets(adj, torch.tensor([0]), torch.tensor([1])).aggregate(torch.randn(3, 2)), "num_nodes"),
        (lambda adj: Graph.undirected(torch.tensor([[0, 12]]).t(), 10), "out of range|num_nodes"),
        (lambda adj: common_neighbor_count(Graph.from_edge_index(torch.tensor([[2, 0], [1, 1]]), 3),
                                           torch.tensor([0]), torch.tensor([1])), "ascending.*Graph.undirected"),
        (lambda adj: target_link_mask(adj, torch.tensor([[0], [10]])), "pairs.*out of range"),
        (lambda adj: masked_degree(adj, torch.ones(3, dtype=torch.bool)), "edge_mask"),
    ],
)
@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_input_raises_value_error(backend, call, match):
    adj = Graph.undirected(torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]]), 10)
    with gnnlab.ops.backend_scope(backend), pytest.raises(ValueError, match=match):
        call(adj)


def test_empty_batch_and_isolated_nodes():
    adj = Graph.undirected(torch.tensor([[0, 1], [1, 2]]), 6)
    for backend in BACKENDS:
        with gnnlab.ops.backend_scope(backend):
            empty = torch.zeros(0, dtype=torch.long)
            assert common_neighbor_count(adj, empty, empty).numel() == 0
            sets = common_neighbor_sets(adj, torch.tensor([4, 0]), torch.tensor([5, 2]))
            assert sets.sizes().tolist() == [0, 1] and sets.nodes.tolist() == [1]
            out = sets.aggregate(torch.ones(6, 3))
            assert out.tolist() == [[0.0] * 3, [1.0] * 3]
            assert math.isclose(float(resource_allocation(adj, torch.tensor([0]), torch.tensor([2]))), 0.5)
