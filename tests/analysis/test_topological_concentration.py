"""Topological Concentration (TC), its approximation (ATC), per-node Hits@K and the TC report,
against brute-force Python-set / BFS / loop computations."""
from __future__ import annotations

import csv
import math

import networkx as nx
import numpy as np
import pytest
import torch
from scipy.stats import pearsonr, spearmanr

from gnnlab.analysis import (
    TCReport,
    approximate_topological_concentration,
    per_node_hits,
    tc_report,
    topological_concentration,
)

# ----------------------------------------------------------------------------------- brute force


def _neighbours(num_nodes, edges):
    adj = [set() for _ in range(num_nodes)]
    for u, v in edges:
        if u != v:
            adj[u].add(v)
            adj[v].add(u)
    return adj


def _layers(adj, i, k, hops):
    """[H^1_i, ..., H^k_i]: walk layers (no visited set) or BFS distance shells."""
    out = []
    if hops == "walk":
        current = {i}
        for _ in range(k):
            current = set().union(*(adj[u] for u in current)) if current else set()
            out.append(current)
    else:
        seen, frontier = {i}, {i}
        for _ in range(k):
            frontier = {w for u in frontier for w in adj[u] if w not in seen}
            seen |= frontier
            out.append(frontier)
    return out


def _brute_tc(num_nodes, edges, k=1, beta=None, hops="walk", normalization="union"):
    adj = _neighbours(num_nodes, edges)
    if beta is None:
        beta = num_nodes / sum(len(a) for a in adj)
    layers = [_layers(adj, i, k, hops) for i in range(num_nodes)]
    tc = []
    for i in range(num_nodes):
        if not adj[i]:
            tc.append(math.nan)
            continue
        scores = []
        for j in adj[i]:
            num = den = 0.0
            for k1 in range(k):
                for k2 in range(k):
                    w = beta ** (k1 + k2)
                    a, b = layers[i][k1], layers[j][k2]
                    num += w * len(a & b)
                    if normalization == "union":
                        den += w * len(a | b)
                    else:
                        den += w * (len(a) - (1 if k1 == k2 == 0 else 0))
            scores.append(num / den if den > 0 else 0.0)
        tc.append(sum(scores) / len(scores))
    return np.array(tc)


def _random_graph(seed, n=60, p=0.08, isolated=5):
    """A G(n, p) graph plus `isolated` extra nodes, as a messy edge_index (duplicates, reversed
    copies, self-loops) and its clean edge list."""
    g = nx.gnp_random_graph(n, p, seed=seed)
    edges = list(g.edges())
    rng = np.random.default_rng(seed)
    messy = edges + [(v, u) for u, v in edges[::3]] + edges[::5] + [(int(x), int(x)) for x in rng.integers(0, n, 4)]
    rng.shuffle(messy)
    return torch.tensor(messy, dtype=torch.long).t().contiguous(), edges, n + isolated


def _assert_tc_equal(got, want):
    got = got.numpy()
    assert got.shape == want.shape
    assert np.array_equal(np.isnan(got), np.isnan(want))
    finite = ~np.isnan(want)
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------------------ exact


def test_tc_k1_hand_example():
    # triangle 0-1-2, pendant 3 on 2, isolated 4; open neighbourhoods:
    # TC_0 = (J(0,1) + J(0,2)) / 2 = (1/3 + 1/4) / 2, TC_2 = (1/4 + 1/4 + 0) / 3, TC_3 = 0.
    ei = torch.tensor([[0, 1, 2, 2], [1, 2, 0, 3]])
    tc = topological_concentration(ei, 5)
    expected = [7 / 24, 7 / 24, 1 / 6, 0.0]
    torch.testing.assert_close(tc[:4], torch.tensor(expected, dtype=torch.float64))
    assert math.isnan(tc[4])
    # the authors' normaliser |N(i)| - 1: 0/0 scores 0 for the pendant
    src = topological_concentration(ei, 5, normalization="source")
    torch.testing.assert_close(src[:4], torch.tensor([1.0, 1.0, 1 / 3, 0.0], dtype=torch.float64))


def test_tc_clique_is_not_one():
    ei = torch.tensor(list(nx.complete_graph(6).edges())).t()
    torch.testing.assert_close(topological_concentration(ei, 6), torch.full((6,), 4 / 6, dtype=torch.float64))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("normalization", ["union", "source"])
def test_tc_k1_matches_python_sets(op_backend, seed, normalization):
    ei, edges, n = _random_graph(seed)
    want = _brute_tc(n, edges, normalization=normalization)
    assert np.isnan(want).sum() >= 5 and np.nanstd(want) > 0.01  # isolated nodes, non-trivial values
    _assert_tc_equal(topological_concentration(ei, n, normalization=normalization), want)
    # int32 input, and "distance" hops coincide with "walk" hops for K = 1
    _assert_tc_equal(topological_concentration(ei.int(), n, hops="distance", normalization=normalization), want)


@pytest.mark.parametrize("hops", ["walk", "distance"])
@pytest.mark.parametrize("normalization", ["union", "source"])
@pytest.mark.parametrize("beta", [None, 0.5])
def test_tc_k2_matches_bfs_sets(hops, normalization, beta):
    ei, edges, n = _random_graph(7, n=50, p=0.07)
    want = _brute_tc(n, edges, k=2, beta=beta, hops=hops, normalization=normalization)
    _assert_tc_equal(topological_concentration(ei, n, k=2, beta=beta, hops=hops, normalization=normalization), want)


def test_tc_k2_hops_differ_and_k3_matches():
    ei, edges, n = _random_graph(11, n=40, p=0.1)
    walk = topological_concentration(ei, n, k=2, hops="walk").numpy()
    dist = topological_concentration(ei, n, k=2, hops="distance").numpy()
    finite = ~np.isnan(walk)
    assert np.abs(walk[finite] - dist[finite]).max() > 1e-3
    _assert_tc_equal(topological_concentration(ei, n, k=3, beta=0.3), _brute_tc(n, edges, k=3, beta=0.3))
    _assert_tc_equal(
        topological_concentration(ei, n, k=3, beta=0.3, hops="distance"),
        _brute_tc(n, edges, k=3, beta=0.3, hops="distance"),
    )


def test_tc_empty_graph_is_nan():
    assert torch.isnan(topological_concentration(torch.empty(2, 0, dtype=torch.long), 4)).all()
    assert torch.isnan(approximate_topological_concentration(torch.empty(2, 0, dtype=torch.long), 4)).all()
    assert topological_concentration(torch.empty(2, 0, dtype=torch.long), 0).shape == (0,)


# -------------------------------------------------------------------------------------------- ATC


def _sbm(seed):
    """Blocks whose expected degree is the same (~16) but whose density, hence TC, is not."""
    sizes = [40, 80, 160, 320]
    probs = [[min(1.0, 16 / sizes[a]) if a == b else 0.002 for b in range(4)] for a in range(4)]
    g = nx.stochastic_block_model(sizes, probs, seed=seed)
    n = g.number_of_nodes() + 10  # 10 isolated nodes
    return torch.tensor(list(g.edges())).t().contiguous(), n


@pytest.mark.parametrize("k", [1, 2])
def test_atc_tracks_exact_tc_on_sbm(k):
    ei, n = _sbm(seed=3)
    tc = topological_concentration(ei, n, k=k).numpy()
    atc = approximate_topological_concentration(ei, n, k=k, dim=1024, seed=0).numpy()
    assert np.array_equal(np.isnan(tc), np.isnan(atc))
    m = ~np.isnan(tc)
    rho, r = spearmanr(atc[m], tc[m])[0], pearsonr(atc[m], tc[m])[0]
    # Measured over 8 graph seeds x 3 projection seeds at dim=1024: Spearman 0.92-0.96, Pearson
    # 0.976-0.988 (the d -> inf limit reaches 0.9997); what is left is the 1/sqrt(dim) noise.
    assert rho > 0.88 and r > 0.95, (rho, r)
    # Degree alone does not explain TC here (Spearman ~0.2), so the agreement is not a degree effect.
    degree = np.bincount(ei.flatten().numpy(), minlength=n)
    assert rho - spearmanr(degree[m], tc[m])[0] > 0.4


def test_atc_converges_to_its_expectation():
    # E[Z_i . Z_j] with Z = D^-1 A R is |N(i) ∩ N(j)| / (d_i d_j); the cosine divides by ~1/sqrt(d_i d_j).
    g = nx.gnp_random_graph(25, 0.3, seed=5)
    ei = torch.tensor(list(g.edges())).t()
    adj = _neighbours(25, g.edges())
    dot_want, cos_want = np.zeros(25), np.zeros(25)
    for i in range(25):
        di = len(adj[i])
        dot_want[i] = np.mean([len(adj[i] & adj[j]) / (di * len(adj[j])) for j in adj[i]])
        cos_want[i] = np.mean([len(adj[i] & adj[j]) / math.sqrt(di * len(adj[j])) for j in adj[i]])
    dot = approximate_topological_concentration(ei, 25, dim=40000, seed=1, similarity="dot", dtype=torch.float64)
    cos = approximate_topological_concentration(ei, 25, dim=40000, seed=1, similarity="cosine", dtype=torch.float64)
    np.testing.assert_allclose(dot.numpy(), dot_want, atol=0.006)
    np.testing.assert_allclose(cos.numpy(), cos_want, atol=0.03)


def test_atc_seeded_and_options():
    ei, n = _sbm(seed=1)
    a = approximate_topological_concentration(ei, n, dim=64, seed=4)
    torch.testing.assert_close(a, approximate_topological_concentration(ei, n, dim=64, seed=4), equal_nan=True)
    assert not torch.allclose(a, approximate_topological_concentration(ei, n, dim=64, seed=5), equal_nan=True)
    sym = approximate_topological_concentration(ei, n, k=2, dim=64, propagation="sym", similarity="dot")
    assert sym.dtype == torch.float64 and sym.shape == (n,) and torch.isnan(sym[-10:]).all()


# -------------------------------------------------------------------------------- per-node Hits@K


def _brute_hits(pairs, pos, neg, k):
    negs = sorted(neg, reverse=True)
    threshold = negs[k - 1] if len(negs) >= k else None
    per = {}
    for (u, v), s in zip(pairs, pos):
        hit = 1.0 if threshold is None else float(s > threshold)
        for node in {u, v}:
            per.setdefault(node, []).append(hit)
    nodes = sorted(per)
    return nodes, [sum(per[x]) / len(per[x]) for x in nodes]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("k", [1, 5, 20, 500])
def test_per_node_hits_matches_loop(seed, k):
    g = torch.Generator().manual_seed(seed)
    pairs = torch.randint(0, 40, (2, 120), generator=g)
    pairs[:, :3] = torch.tensor([[7, 9, 9], [7, 9, 9]])  # self-pairs count once for their node
    pos = torch.randint(0, 16, (120,), generator=g).float()  # integer-valued: ties with the threshold
    neg = torch.randint(0, 12, (200,), generator=g).float()
    nodes, hits = per_node_hits(pairs, pos, neg, k, num_nodes=40)
    want_nodes, want_hits = _brute_hits(pairs.t().tolist(), pos.tolist(), neg.tolist(), k)
    assert nodes.tolist() == want_nodes
    torch.testing.assert_close(hits, torch.tensor(want_hits, dtype=torch.float64))
    if k == 500:  # fewer negatives than k: every positive is a hit (OGB)
        assert bool((hits == 1).all())
    else:
        assert 0 < float(hits.mean()) < 1


def test_per_node_hits_column_scores_and_empty():
    nodes, hits = per_node_hits(torch.tensor([[0], [3]]), torch.tensor([[2.0]]), torch.tensor([[1.0], [2.0]]), 1)
    assert nodes.tolist() == [0, 3] and hits.tolist() == [0.0, 0.0]  # 2.0 > 2.0 is not a hit
    nodes, hits = per_node_hits(torch.empty(2, 0, dtype=torch.long), torch.empty(0), torch.tensor([1.0]), 1)
    assert nodes.numel() == 0 and hits.numel() == 0


# ----------------------------------------------------------------------------------------- report


def _read(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_tc_report_writes_tables_and_plot(tmp_path):
    ei, edges, n = _random_graph(3)
    tc = topological_concentration(ei, n)
    degree = torch.bincount(torch.tensor(edges).flatten(), minlength=n)
    g = torch.Generator().manual_seed(0)
    pairs = torch.randint(0, n - 5, (2, 80), generator=g)
    node_hits = per_node_hits(pairs, torch.rand(80, generator=g), torch.rand(300, generator=g), 20)
    paths = tc_report(tc, degree, node_hits, tmp_path / "out", bins=4)

    assert isinstance(paths, TCReport)
    assert [p.name for p in paths] == ["per_node.csv", "tc_bins.csv", "performance_vs_tc.png"]
    assert paths.plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and paths.plot.stat().st_size > 5000

    rows = _read(paths.per_node)
    assert list(rows[0]) == ["node", "degree", "tc", "hits"] and len(rows) == n
    hits = np.full(n, np.nan)
    hits[node_hits[0].numpy()] = node_hits[1].numpy()
    for node, row in enumerate(rows):
        assert int(row["node"]) == node and int(row["degree"]) == int(degree[node])
        assert (row["tc"] == "") == math.isnan(tc[node]) and (row["hits"] == "") == math.isnan(hits[node])
        if row["tc"]:
            assert float(row["tc"]) == pytest.approx(float(tc[node]), rel=1e-9)

    bins = _read(paths.bins)
    assert list(bins[0]) == ["bin", "tc_range", "tc_low", "tc_high", "num_nodes", "mean_hits", "mean_degree"]
    assert len(bins) == 4
    t = tc.numpy()
    evaluated = ~np.isnan(t) & ~np.isnan(hits)
    assert sum(int(b["num_nodes"]) for b in bins) == evaluated.sum()
    lo, hi = t[evaluated].min(), t[evaluated].max()
    assert float(bins[0]["tc_low"]) == pytest.approx(lo) and float(bins[-1]["tc_high"]) == pytest.approx(hi)
    for b in bins:
        low, high = float(b["tc_low"]), float(b["tc_high"])
        last = b is bins[-1]
        sel = evaluated & (t >= low) & ((t <= high) if last else (t < high))
        assert int(b["num_nodes"]) == sel.sum()
        if sel.any():
            assert float(b["mean_hits"]) == pytest.approx(hits[sel].mean())
        else:
            assert b["mean_hits"] == ""


def test_tc_report_dense_hits_and_explicit_edges(tmp_path):
    tc = torch.tensor([0.1, 0.4, float("nan"), 0.6, 1.0, 0.2])
    hits = torch.tensor([1.0, 0.5, 1.0, float("nan"), 0.0, 0.0])
    paths = tc_report(tc, torch.tensor([2, 3, 0, 4, 1, 2]), hits, tmp_path, bins=[0.0, 0.5, 1.0])
    bins = _read(paths.bins)
    assert [int(b["num_nodes"]) for b in bins] == [3, 1]  # node 2: no TC; node 3: no hits; 1.0 is in the last bin
    assert float(bins[0]["mean_hits"]) == pytest.approx(0.5) and float(bins[1]["mean_hits"]) == 0.0
    assert bins[0]["tc_range"] == "[0, 0.5)" and bins[1]["tc_range"] == "[0.5, 1]"


# ------------------------------------------------------------------------------------- bad input

EI = torch.tensor([[0, 1, 2], [1, 2, 0]])


@pytest.mark.parametrize(
    "call",
    [
        lambda: topological_concentration(EI, 3, k=0),
        lambda: topological_concentration(EI, 2),  # index 2 out of range
        lambda: topological_concentration(torch.tensor([[0, -1, 2], [1, 2, 0]]), 3),
        lambda: topological_concentration(EI[0], 3),  # not [2, E]
        lambda: topological_concentration(EI.float(), 3),
        lambda: topological_concentration(EI, -1),
        lambda: topological_concentration(EI, 3, hops="bfs"),
        lambda: topological_concentration(EI, 3, normalization="min"),
        lambda: topological_concentration(EI, 3, k=2, beta=0.0),
        lambda: approximate_topological_concentration(EI, 3, k=0),
        lambda: approximate_topological_concentration(EI, 3, dim=0),
        lambda: approximate_topological_concentration(EI, 2),
        lambda: approximate_topological_concentration(EI, 3, similarity="l2"),
        lambda: approximate_topological_concentration(EI, 3, dtype=torch.int64),
        lambda: per_node_hits(EI, torch.ones(3), torch.ones(5), 0),
        lambda: per_node_hits(EI, torch.ones(4), torch.ones(5), 1),  # one score per pair
        lambda: per_node_hits(EI.t(), torch.ones(3), torch.ones(5), 1),  # [P, 2]
        lambda: per_node_hits(EI.float(), torch.ones(3), torch.ones(5), 1),
        lambda: per_node_hits(EI, torch.ones(3), torch.ones(5), 1, num_nodes=2),
        lambda: per_node_hits(-EI, torch.ones(3), torch.ones(5), 1),
        lambda: per_node_hits(EI, torch.tensor([1.0, float("nan"), 0.0]), torch.ones(5), 1),
        lambda: per_node_hits(EI, torch.ones(3), torch.ones(0), 1),
        lambda: per_node_hits(EI, torch.ones(3), torch.ones(2, 2), 1),
    ],
)
def test_bad_inputs_raise_value_error(call):
    with pytest.raises(ValueError):
        call()


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(degree=torch.ones(3)),  # wrong length
        dict(node_hits=(torch.tensor([0, 9]), torch.tensor([1.0, 0.0]))),  # node out of range
        dict(node_hits=(torch.tensor([1, 1]), torch.tensor([1.0, 0.0]))),  # repeated node
        dict(node_hits=torch.ones(3)),  # dense of the wrong length
        dict(bins=0),
        dict(bins=[0.5, 0.2]),
    ],
)
def test_tc_report_bad_inputs(tmp_path, kwargs):
    args = dict(tc=torch.rand(4), degree=torch.ones(4), node_hits=torch.rand(4), out_dir=tmp_path, bins=3)
    args.update(kwargs)
    with pytest.raises(ValueError):
        tc_report(**args)
