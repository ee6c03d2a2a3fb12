"""RWSE against an independent numpy reference and closed forms; blocked vs one-block paths."""
from __future__ import annotations

from math import comb

import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from gnnlab.transforms import RandomWalkSE, random_walk_diagonals, random_walk_diagonals_dense
from tests.transforms.graphs import random_edges


def _numpy_reference(edge_index: torch.Tensor, num_nodes: int, k: int) -> np.ndarray:
    """diag(P^t) by explicit walks: P from a python loop over the edges, powers by repeated products."""
    a = np.zeros((num_nodes, num_nodes))
    for i, j in edge_index.t().tolist():
        a[i, j] = 1.0
    p = np.zeros_like(a)
    for i in range(num_nodes):
        if a[i].sum():
            p[i] = a[i] / a[i].sum()
    out, power = [], np.eye(num_nodes)
    for _ in range(k):
        power = power @ p
        out.append(np.diag(power).copy())
    return np.stack(out, axis=1)


def _directed(num_nodes: int, num_edges: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, num_nodes, (2, num_edges), generator=g)


@pytest.mark.parametrize("graph", ["undirected", "directed"])
@pytest.mark.parametrize("size", [40, 300], ids=["dense-ops", "sparse-ops"])
def test_matches_independent_reference(graph, size):
    if graph == "undirected":
        edge_index, n = random_edges([size // 2, size // 2 - 3], p=6 / size, seed=size, isolated=3)
    else:
        n = size
        edge_index = _directed(n, 3 * n, seed=size)
    k = 7
    ref = _numpy_reference(edge_index, n, k)
    out = random_walk_diagonals(edge_index, n, k)
    assert out.shape == (n, k) and out.dtype == torch.float64
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-10)
    np.testing.assert_allclose(random_walk_diagonals_dense(edge_index, n, k).numpy(), ref, atol=1e-10)


@pytest.mark.parametrize("graph", ["undirected", "directed"])
@pytest.mark.parametrize("size", [40, 300], ids=["dense-ops", "sparse-ops"])
def test_blocked_path_equals_one_block(graph, size):
    if graph == "undirected":
        edge_index, n = random_edges([size], p=5 / size, seed=1)
    else:
        n, edge_index = size, _directed(size, 4 * size, seed=2)
    whole = random_walk_diagonals(edge_index, n, 9, block_size=n)
    for block_size in (1, 7, n - 1, 10 * n):
        blocked = random_walk_diagonals(edge_index, n, 9, block_size=block_size)
        np.testing.assert_allclose(blocked.numpy(), whole.numpy(), atol=1e-12)
    np.testing.assert_allclose(random_walk_diagonals(edge_index, n, 9).numpy(), whole.numpy(), atol=1e-12)


def test_closed_forms():
    # Complete graph K_n: P = (J - I) / (n - 1), so diag(P^t) = (1 + (n - 1) (-1 / (n - 1))^t) / n.
    n, k = 6, 5
    i, j = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    mask = i != j
    complete = torch.stack([i[mask], j[mask]])
    expected = [(1 + (n - 1) * (-1 / (n - 1)) ** t) / n for t in range(1, k + 1)]
    for fn in (random_walk_diagonals, random_walk_diagonals_dense):
        np.testing.assert_allclose(fn(complete, n, k).numpy(), np.tile(expected, (n, 1)), atol=1e-12)

    # A long cycle (several automatic blocks): closed walks of length t < n are the C(t, t/2) balanced
    # paths among 2^t, and none for odd t.
    n, k = 3001, 12
    nodes = torch.arange(n)
    cycle = torch.stack([torch.cat([nodes, (nodes + 1) % n]), torch.cat([(nodes + 1) % n, nodes])])
    expected = [comb(t, t // 2) / 2**t if t % 2 == 0 else 0.0 for t in range(1, k + 1)]
    out = random_walk_diagonals(cycle, n, k)
    np.testing.assert_allclose(out.numpy(), np.tile(expected, (n, 1)), atol=1e-12)


def test_special_nodes():
    # 0 -> 1 only (1 has no out-edges), a self loop on 2, node 3 isolated.
    edge_index = torch.tensor([[0, 2, 2, 4], [1, 2, 4, 2]])
    out = random_walk_diagonals(edge_index, 5, 3)
    assert torch.all(out[[0, 1, 3]] == 0)
    np.testing.assert_allclose(out[2].numpy(), [0.5, 0.75, 0.625])
    np.testing.assert_allclose(out[4].numpy(), [0.0, 0.5, 0.25])
    assert random_walk_diagonals(torch.empty(2, 0, dtype=torch.long), 0, 3).shape == (0, 3)


def test_transform():
    edge_index, n = random_edges([12, 9], p=0.3, seed=3, isolated=1)
    transform = RandomWalkSE(k=6, attr="walks", block_size=4)
    data = transform(Data(edge_index=edge_index, num_nodes=n))
    assert data.walks.shape == (n, 6) and data.walks.dtype == torch.float32
    np.testing.assert_allclose(data.walks.numpy(), _numpy_reference(edge_index, n, 6), atol=1e-6)
    for part in ("RandomWalkSE", "k=6", "attr='walks'", "block_size=4"):
        assert part in repr(transform) and part in transform.cache_key
    assert RandomWalkSE(k=6).cache_key != RandomWalkSE(k=7).cache_key
    assert RandomWalkSE(k=6).cache_key != RandomWalkSE(k=6, attr="other").cache_key


def test_bad_input():
    edge_index = torch.tensor([[0, 1], [1, 2]])
    for k in (0, -3, 2.0, None):
        with pytest.raises(ValueError, match="k must be"):
            random_walk_diagonals(edge_index, 3, k)
        with pytest.raises(ValueError, match="k must be"):
            RandomWalkSE(k)
    with pytest.raises(ValueError, match="block_size"):
        random_walk_diagonals(edge_index, 3, 2, block_size=0)
    with pytest.raises(ValueError, match="out of range"):
        random_walk_diagonals(edge_index, 2, 2)
    with pytest.raises(ValueError, match="out of range"):
        random_walk_diagonals_dense(edge_index, 2, 2)
    with pytest.raises(ValueError, match="num_nodes"):
        random_walk_diagonals(edge_index, -1, 2)
