"""FastRP: projection statistics, agreement with a dense re-implementation, seeding, normalisation."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch_geometric.data import Data

from gnnlab.transforms import FastRP, fastrp_embedding, very_sparse_random_projection
from tests.transforms.graphs import random_edges


def _dense_fastrp(edge_index, num_nodes, r, weights, beta, normalize, self_loops) -> np.ndarray:
    """Algorithm 1 of the paper in dense numpy: N_1 = S L R, N_i = S N_{i-1}, sum of alpha_i N_i."""
    a = np.zeros((num_nodes, num_nodes))
    for i, j in edge_index.t().tolist():
        if i != j:
            a[i, j] = a[j, i] = 1.0
    if self_loops:
        a += np.eye(num_nodes)
    deg = a.sum(axis=1)
    s = np.array([row / d if d else row for row, d in zip(a, deg)])
    lvec = np.array([d**beta if d else 0.0 for d in deg])
    current = s @ (lvec[:, None] * r)
    out = np.zeros_like(current)
    for i, w in enumerate(weights):
        if i:
            current = s @ current
        term = current
        if normalize:
            norms = np.linalg.norm(current, axis=1, keepdims=True)
            term = np.where(norms > 0, current / np.where(norms > 0, norms, 1.0), 0.0)
        out += w * term
    return out


def test_projection_statistics():
    n, dim = 10000, 64
    r = very_sparse_random_projection(n, dim, seed=3)
    assert isinstance(r, sp.sparray) and r.shape == (n, dim)
    s = math.sqrt(n)
    expected = n * dim / s
    assert abs(r.nnz - expected) < 5 * math.sqrt(expected)  # binomial: 5 standard deviations
    np.testing.assert_allclose(np.abs(r.data), math.sqrt(s))
    positive = int((r.data > 0).sum())
    assert abs(positive - r.nnz / 2) < 5 * math.sqrt(r.nnz / 4)
    assert abs(float((r.multiply(r)).sum()) / (n * dim) - 1.0) < 0.05  # E[R_ij^2] = 1
    per_column = np.bincount(r.tocoo().col, minlength=dim)
    assert per_column.min() > 0

    dense = very_sparse_random_projection(50, 8, sparsity=1, seed=0).toarray()
    assert set(np.unique(dense)) == {-1.0, 1.0}
    r3 = very_sparse_random_projection(n, dim, sparsity=3, seed=0)
    assert abs(r3.nnz - n * dim / 3) < 5 * math.sqrt(n * dim * (1 / 3) * (2 / 3))

    again = very_sparse_random_projection(n, dim, seed=3)
    assert (r != again).nnz == 0
    assert (r != very_sparse_random_projection(n, dim, seed=4)).nnz > 0


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("self_loops", [False, True])
def test_matches_dense_reimplementation(normalize, self_loops):
    edge_index, n = random_edges([30, 20], p=0.15, seed=1, isolated=2)
    weights, beta, dim = (0.5, 0.0, 1.0, 6.0), -0.7, 16
    r = very_sparse_random_projection(n, dim, seed=5)
    out = fastrp_embedding(edge_index, n, dim, weights=weights, beta=beta, normalize=normalize,
                           self_loops=self_loops, projection=r)
    ref = _dense_fastrp(edge_index, n, r.toarray(), weights, beta, normalize, self_loops)
    assert out.shape == (n, dim) and out.dtype == torch.float64
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-9, atol=1e-12)
    # A dense projection gives the same result, and the default draw is the seeded sparse one.
    np.testing.assert_allclose(
        fastrp_embedding(edge_index, n, dim, weights=weights, beta=beta, normalize=normalize,
                         self_loops=self_loops, projection=r.toarray()).numpy(), ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(
        fastrp_embedding(edge_index, n, dim, weights=weights, beta=beta, normalize=normalize,
                         self_loops=self_loops, seed=5).numpy(), out.numpy())


def test_graph_is_made_undirected():
    edge_index, n = random_edges([30], p=0.2, seed=6)
    one_way = edge_index[:, edge_index[0] < edge_index[1]]
    r = very_sparse_random_projection(n, 8, seed=0)
    assert torch.equal(fastrp_embedding(edge_index, n, 8, projection=r),
                       fastrp_embedding(one_way, n, 8, projection=r))


def test_rows_normalised():
    edge_index, n = random_edges([40], p=0.1, seed=2, isolated=3)
    out = fastrp_embedding(edge_index, n, 32, weights=(0.0, 0.0, 1.0), sparsity=2)
    norms = out.norm(dim=1)
    np.testing.assert_allclose(norms[:40].numpy(), 1.0, atol=1e-12)
    assert torch.all(out[40:] == 0)  # isolated nodes, no self loops
    looped = fastrp_embedding(edge_index, n, 32, weights=(1.0,), self_loops=True, sparsity=1)
    np.testing.assert_allclose(looped.norm(dim=1).numpy(), 1.0, atol=1e-12)


def test_transform_is_seeded_per_graph():
    edge_index, n = random_edges([30], p=0.1, seed=3)
    transform = FastRP(dim=8, seed=1)
    first = transform(Data(edge_index=edge_index, num_nodes=n)).fastrp
    assert first.shape == (n, 8) and first.dtype == torch.float32
    assert torch.equal(first, transform(Data(edge_index=edge_index, num_nodes=n)).fastrp)
    # Edge order and duplicates do not change the graph, hence not the seed.
    shuffled = torch.cat([edge_index.flip(1), edge_index[:, :5]], dim=1)
    assert torch.equal(first, transform(Data(edge_index=shuffled, num_nodes=n)).fastrp)
    assert not torch.equal(first, FastRP(dim=8, seed=2)(Data(edge_index=edge_index, num_nodes=n)).fastrp)
    other, _ = random_edges([30], p=0.1, seed=4)
    assert transform.graph_seed(other, n) != transform.graph_seed(edge_index, n)
    # The transform equals the function with the graph's seed.
    expected = fastrp_embedding(edge_index, n, 8, seed=transform.graph_seed(edge_index, n))
    assert torch.equal(first, expected.float())


def test_large_graph_is_sparse_and_fast():
    n = 20000
    g = torch.Generator().manual_seed(0)
    edge_index = torch.randint(0, n, (2, 5 * n), generator=g)
    out = FastRP(dim=32, weights=(1.0, 1.0, 1.0))(Data(edge_index=edge_index, num_nodes=n)).fastrp
    assert out.shape == (n, 32) and torch.isfinite(out).all()


def test_repr_and_cache_key():
    transform = FastRP(dim=8, weights=[1, 2], beta=-0.5, normalize=False, sparsity=3.0,
                       self_loops=True, seed=7, attr="rp")
    for part in ("FastRP", "dim=8", "weights=(1.0, 2.0)", "beta=-0.5", "normalize=False",
                 "sparsity=3.0", "self_loops=True", "seed=7", "attr='rp'"):
        assert part in repr(transform) and part in transform.cache_key
    assert FastRP(8).cache_key != FastRP(8, seed=1).cache_key
    assert FastRP(8).cache_key != FastRP(8, beta=-0.5).cache_key


def test_bad_input():
    edge_index = torch.tensor([[0, 1], [1, 2]])
    with pytest.raises(ValueError, match="dim"):
        FastRP(dim=0)
    with pytest.raises(ValueError, match="weights"):
        FastRP(dim=4, weights=())
    with pytest.raises(ValueError, match="non-zero"):
        FastRP(dim=4, weights=(0.0, 0.0))
    with pytest.raises(ValueError, match="weights"):
        FastRP(dim=4, weights="1,2")
    with pytest.raises(ValueError, match="sparsity"):
        FastRP(dim=4, sparsity=0.5)
    with pytest.raises(ValueError, match="beta"):
        FastRP(dim=4, beta=float("nan"))
    with pytest.raises(ValueError, match="seed"):
        FastRP(dim=4, seed=-1)
    with pytest.raises(ValueError, match="projection"):
        fastrp_embedding(edge_index, 3, 4, projection=np.zeros((3, 5)))
    with pytest.raises(ValueError, match="out of range"):
        fastrp_embedding(edge_index, 2, 4)
    with pytest.raises(ValueError, match="out of range"):
        FastRP(dim=4)(Data(edge_index=edge_index, num_nodes=2))
