"""HACTree: affinity clustering against a plain-Python oracle, tree properties, the PE, batching."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.sparse.csgraph import connected_components
from torch_geometric.data import Batch, Data, InMemoryDataset

from gnnlab.transforms import HACTree, affinity_clustering, hac_positional_encoding
from gnnlab.transforms._graph import adjacency
from gnnlab.transforms.hac import edge_similarity

from tests.transforms.graphs import random_edges, to_networkx


def _oracle(edge_index: torch.Tensor, n: int, similarity: str = "jaccard", x=None) -> list[list[int]]:
    """Affinity clustering written with sets and dicts: Borůvka rounds until no inter-cluster edge."""
    nbrs = {v: set() for v in range(n)}
    for u, v in edge_index.t().tolist():
        if u != v:
            nbrs[u].add(v)
            nbrs[v].add(u)

    def weight(u, v):
        if similarity == "jaccard":
            a, b = nbrs[u] | {u}, nbrs[v] | {v}
            return len(a & b) / len(a | b)
        xu, xv = x[u].tolist(), x[v].tolist()
        nu, nv = math.sqrt(sum(t * t for t in xu)), math.sqrt(sum(t * t for t in xv))
        return 0.0 if nu == 0 or nv == 0 else sum(p * q for p, q in zip(xu, xv)) / (nu * nv)

    label = list(range(n))
    levels = []
    while True:
        best = {}  # cluster -> (weight, neighbour cluster)
        for u in range(n):
            for v in nbrs[u]:
                a, b = label[u], label[v]
                if a == b:
                    continue
                w = weight(u, v)
                if a not in best or w > best[a][0] or (w == best[a][0] and b < best[a][1]):
                    best[a] = (w, b)
        if not best:
            return levels
        parent = {c: c for c in set(label)}

        def find(c):
            while parent[c] != c:
                c = parent[c]
            return c

        for a, (_, b) in best.items():
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
        members = {}
        for v in range(n):
            members.setdefault(find(label[v]), []).append(v)
        label = [0] * n
        for group in members.values():
            for v in group:
                label[v] = min(group)
        levels.append(list(label))


GRAPHS = [
    ([6], 0.3, 0, 0),
    ([9, 5], 0.25, 1, 2),
    ([14, 3, 8], 0.2, 2, 1),
    ([25], 0.1, 3, 0),
    ([12, 12], 0.5, 4, 3),
]


@pytest.mark.parametrize("sizes,p,seed,isolated", GRAPHS)
def test_matches_the_oracle_jaccard(sizes, p, seed, isolated):
    edge_index, n = random_edges(sizes, p, seed, isolated)
    assert affinity_clustering(edge_index, n).tolist() == _oracle(edge_index, n)


@pytest.mark.parametrize("sizes,p,seed,isolated", GRAPHS)
def test_matches_the_oracle_cosine(sizes, p, seed, isolated):
    edge_index, n = random_edges(sizes, p, seed, isolated)
    x = torch.randn(n, 3, generator=torch.Generator().manual_seed(seed))
    x[0] = 0.0  # a zero row has similarity 0 with everything
    got = affinity_clustering(edge_index, n, similarity="cosine", x=x)
    assert got.tolist() == _oracle(edge_index, n, "cosine", x.double())


def test_jaccard_weights_match_sets():
    edge_index, n = random_edges([10, 6], 0.3, 5, 1)
    g = to_networkx(edge_index, n)
    u, v, w = edge_similarity(edge_index, n)
    assert len(u) == g.number_of_edges()
    for a, b, weight in zip(u, v, w):
        na, nb = set(g[a]) | {a}, set(g[b]) | {b}
        assert weight == pytest.approx(len(na & nb) / len(na | nb))


@pytest.mark.parametrize("sizes,p,seed,isolated", GRAPHS)
def test_tree_properties(sizes, p, seed, isolated):
    """Clusters nest, every merge joins adjacent clusters, the last level is the connected components,
    and every cluster that has a neighbour merges in every round (so depth <= ceil(log2 size))."""
    edge_index, n = random_edges(sizes, p, seed, isolated)
    levels = affinity_clustering(edge_index, n)
    a = adjacency(edge_index.numpy(), n).tocoo()
    below = np.arange(n)
    for level in levels:
        for rep in np.unique(level):
            members = np.flatnonzero(level == rep)
            assert rep == members.min()
            children = np.unique(below[members])
            assert len(children) >= 2 or not any(  # a cluster that had a neighbouring cluster merged
                below[i] == children[0] and below[j] != below[i] for i, j in zip(a.row, a.col))
            # Children are joined by edges: the quotient graph of the children is connected.
            index = {c: k for k, c in enumerate(children)}
            inside = np.isin(a.row, members) & np.isin(a.col, members)
            quotient = np.zeros((len(children), len(children)))
            quotient[[index[c] for c in below[a.row[inside]]], [index[c] for c in below[a.col[inside]]]] = 1
            assert connected_components(quotient, directed=False)[0] == 1
        below = level
    _, comp = connected_components(a, directed=False)
    last = levels[-1] if len(levels) else np.arange(n)
    for c in np.unique(comp):
        assert len(np.unique(last[comp == c])) == 1
    assert len(np.unique(last)) == len(np.unique(comp))
    assert len(levels) <= math.ceil(math.log2(max(sizes)))


def test_positional_encoding_hand_checked():
    # Path 0-1-2-3-4-5 and an isolated node 6. Round 1 (Jaccard 2/3 at the ends, 1/2 inside, ties to
    # the smaller id): {0,1,2,3}, {4,5}, {6}; round 2: {0..5}, {6}.
    edge_index = torch.tensor([[0, 1, 2, 3, 4], [1, 2, 3, 4, 5]])
    data = HACTree(num_levels=3)(Data(edge_index=edge_index, num_nodes=7))
    assert data.hac_index.tolist() == [[0, 0, 0, 0, 4, 4, 6], [0, 0, 0, 0, 0, 0, 6], [0, 0, 0, 0, 0, 0, 6]]
    expected = torch.tensor([
        # a_1/k_1, a_2/k_2, a_3/k_3, log2 k_1, log2 k_2, log2 k_3
        [0 / 4, 0 / 2, 0, 2, 1, 0],
        [1 / 4, 0 / 2, 0, 2, 1, 0],
        [2 / 4, 0 / 2, 0, 2, 1, 0],
        [3 / 4, 0 / 2, 0, 2, 1, 0],
        [0 / 2, 1 / 2, 0, 1, 1, 0],
        [1 / 2, 1 / 2, 0, 1, 1, 0],
        [0, 0, 0, 0, 0, 0],
    ])
    assert torch.equal(data.hac_pe, expected.float())


def test_levels_are_padded_and_truncated():
    edge_index, n = random_edges([30], 0.05, 7)
    full = affinity_clustering(edge_index, n)
    assert len(full) >= 2
    short = HACTree(num_levels=1)(Data(edge_index=edge_index, num_nodes=n))
    assert short.hac_index.tolist() == full[:1].tolist()
    long = HACTree(num_levels=len(full) + 2)(Data(edge_index=edge_index, num_nodes=n))
    assert long.hac_index[: len(full)].tolist() == full.tolist()
    assert (long.hac_index[len(full):] == long.hac_index[len(full) - 1]).all()
    assert long.hac_pe.shape == (n, 2 * (len(full) + 2))
    # A graph without edges: every level is the nodes themselves.
    empty = HACTree(num_levels=2)(Data(edge_index=torch.empty(2, 0, dtype=torch.long), num_nodes=3))
    assert empty.hac_index.tolist() == [[0, 1, 2], [0, 1, 2]] and (empty.hac_pe == 0).all()


def test_pe_matches_levels_definition_on_random_graph():
    edge_index, n = random_edges([20, 7], 0.15, 9, 2)
    levels = affinity_clustering(edge_index, n, max_levels=6)
    pe = hac_positional_encoding(levels)
    below = np.arange(n)
    for lvl, level in enumerate(levels):
        for v in range(n):
            siblings = sorted({below[u] for u in range(n) if level[u] == level[v]})
            assert pe[v, lvl] == siblings.index(below[v]) / len(siblings)
            assert pe[v, len(levels) + lvl] == math.log2(len(siblings))
        below = level


def test_batching_offsets_the_clusters():
    """hac_index is concatenated along nodes and shifted by each graph's node offset; hac_pe is stacked."""
    graphs = []
    for seed, sizes in enumerate([[5], [8, 3], [6]]):
        edge_index, n = random_edges(sizes, 0.3, seed, 1)
        graphs.append(HACTree(num_levels=4)(Data(edge_index=edge_index, num_nodes=n, x=torch.zeros(n, 1))))
    batch = Batch.from_data_list(graphs)
    offset = 0
    parts = []
    for g in graphs:
        parts.append(g.hac_index + offset)
        offset += g.num_nodes
    assert torch.equal(batch.hac_index, torch.cat(parts, dim=1))
    assert torch.equal(batch.hac_pe, torch.cat([g.hac_pe for g in graphs]))
    # An in-memory dataset stores and serves the per-graph values unchanged.
    data, slices = InMemoryDataset.collate(graphs)
    ds = InMemoryDataset()
    ds.data, ds.slices = data, slices
    for i, g in enumerate(graphs):
        assert torch.equal(ds[i].hac_index, g.hac_index)


def test_cache_key_names_every_parameter():
    a, b = HACTree(4, "jaccard"), HACTree(4, "cosine")
    assert a.cache_key != b.cache_key and "num_levels=4" in a.cache_key
    assert HACTree(5).cache_key != HACTree(4).cache_key


@pytest.mark.parametrize("kwargs,match", [
    ({"num_levels": 0}, "num_levels"),
    ({"num_levels": 2.5}, "num_levels"),
    ({"similarity": "euclid"}, "similarity"),
    ({"attr": ""}, "attr"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        HACTree(**kwargs)


def test_bad_inputs():
    edge_index = torch.tensor([[0, 1], [1, 2]])
    with pytest.raises(ValueError, match="needs node features"):
        affinity_clustering(edge_index, 3, similarity="cosine")
    with pytest.raises(ValueError, match="3 rows"):
        affinity_clustering(edge_index, 3, similarity="cosine", x=torch.ones(2, 2))
    with pytest.raises(ValueError, match="finite"):
        affinity_clustering(edge_index, 3, similarity="cosine", x=torch.tensor([[1.0], [float("nan")], [1.0]]))
    with pytest.raises(ValueError):
        affinity_clustering(torch.tensor([[0, 5], [1, 2]]), 3)  # node 5 of 3
