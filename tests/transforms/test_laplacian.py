"""Laplacian eigenpairs against networkx's Laplacians: eigen-equations, orthogonality, skipping,
padding, dense vs sparse solver, the transform and its errors."""
from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from gnnlab.transforms import LaplacianEigenpairs, laplacian_eigenpairs
from tests.transforms.graphs import random_edges, to_networkx


def _reference_laplacian(edge_index, num_nodes, normalization) -> np.ndarray:
    """networkx's Laplacians; ``'rw'`` as ``D^+ (D - A)`` (zero rows for isolated nodes)."""
    g = to_networkx(edge_index, num_nodes)
    nodes = list(range(num_nodes))
    if normalization == "sym":
        return nx.normalized_laplacian_matrix(g, nodelist=nodes).toarray()
    lap = nx.laplacian_matrix(g, nodelist=nodes).toarray().astype(float)
    if normalization is None:
        return lap
    deg = np.diag(lap)
    inv = np.divide(1.0, deg, out=np.zeros_like(deg), where=deg > 0)
    return inv[:, None] * lap


def _check_eigenpairs(lap, values, vectors, orthonormal: bool):
    values, vectors = values.numpy(), vectors.numpy()
    np.testing.assert_allclose(lap @ vectors, vectors * values, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=0), 1.0, atol=1e-8)
    if orthonormal:
        np.testing.assert_allclose(vectors.T @ vectors, np.eye(vectors.shape[1]), atol=1e-8)


@pytest.mark.parametrize("normalization", ["sym", None, "rw"])
@pytest.mark.parametrize("dense_max_nodes", [2000, 0], ids=["dense", "sparse"])
@pytest.mark.parametrize("skip_trivial", [True, False])
def test_matches_reference_spectrum(normalization, dense_max_nodes, skip_trivial):
    edge_index, n = random_edges([30, 25, 12], p=0.15, seed=1, isolated=2)
    lap = _reference_laplacian(edge_index, n, normalization)
    spectrum = np.sort(np.linalg.eigvals(lap).real)
    num_components = nx.number_connected_components(to_networkx(edge_index, n))
    assert num_components == 5
    assert (np.abs(spectrum[:5]) < 1e-8).all() and spectrum[5] > 1e-3

    k = 8
    values, vectors = laplacian_eigenpairs(edge_index, n, k, normalization=normalization,
                                           skip_trivial=skip_trivial, dense_max_nodes=dense_max_nodes)
    assert values.shape == (k,) and vectors.shape == (n, k)
    assert values.dtype == vectors.dtype == torch.float64
    first = num_components if skip_trivial else 0
    np.testing.assert_allclose(values.numpy(), spectrum[first:first + k], atol=1e-8)
    assert (values[1:] >= values[:-1]).all()
    _check_eigenpairs(lap, values, vectors, orthonormal=normalization != "rw")
    if normalization == "rw":
        # Eigenvectors of L_rw are D-orthogonal.
        deg = np.diag(nx.laplacian_matrix(to_networkx(edge_index, n), nodelist=range(n)).toarray())
        gram = vectors.numpy().T @ (deg[:, None] * vectors.numpy())
        np.testing.assert_allclose(gram - np.diag(np.diag(gram)), 0.0, atol=1e-8)


@pytest.mark.parametrize("normalization", ["sym", None])
def test_dense_and_sparse_solvers_agree(normalization):
    edge_index, n = random_edges([150], p=0.04, seed=2)
    k = 8
    dense = laplacian_eigenpairs(edge_index, n, k, normalization=normalization)
    sparse = laplacian_eigenpairs(edge_index, n, k, normalization=normalization, dense_max_nodes=0)
    np.testing.assert_allclose(sparse[0].numpy(), dense[0].numpy(), atol=1e-8)
    full = np.linalg.eigvalsh(_reference_laplacian(edge_index, n, normalization))
    gaps = np.diff(full[: k + 2])
    assert gaps[1:].min() > 1e-4, "test graph should have simple eigenvalues"
    # Simple eigenvalues: each eigenvector is fixed up to sign, so the projectors agree.
    for j in range(k):
        vd, vs = dense[1][:, j].numpy(), sparse[1][:, j].numpy()
        np.testing.assert_allclose(np.outer(vd, vd), np.outer(vs, vs), atol=1e-6)


def test_sparse_solver_on_a_larger_graph():
    edge_index, n = random_edges([1200, 900], p=0.004, seed=3, isolated=5)
    lap = _reference_laplacian(edge_index, n, "sym")
    values, vectors = laplacian_eigenpairs(edge_index, n, 5)  # n > 2000: the sparse path
    _check_eigenpairs(lap, values, vectors, orthonormal=True)
    assert values.min() > 1e-6
    again = laplacian_eigenpairs(edge_index, n, 5)
    assert torch.equal(values, again[0]) and torch.equal(vectors, again[1])  # deterministic


@pytest.mark.parametrize("dense_max_nodes", [2000, 0], ids=["dense", "sparse"])
def test_trivial_pairs(dense_max_nodes):
    # Connected: exactly one trivial pair, skipped.
    edge_index, n = random_edges([40], p=0.1, seed=4)
    values, _ = laplacian_eigenpairs(edge_index, n, 4, dense_max_nodes=dense_max_nodes)
    assert values.min() > 1e-3
    kept, kept_vec = laplacian_eigenpairs(edge_index, n, 5, skip_trivial=False, dense_max_nodes=dense_max_nodes)
    assert abs(kept[0]) < 1e-12
    np.testing.assert_allclose(kept[1:].numpy(), values.numpy(), atol=1e-8)

    # Two components: both zero eigenvalues are dropped; without skipping they come first, each
    # eigenvector supported on one component.
    edge_index, n = random_edges([20, 15], p=0.2, seed=5)
    values, _ = laplacian_eigenpairs(edge_index, n, 4, dense_max_nodes=dense_max_nodes)
    kept, kept_vec = laplacian_eigenpairs(edge_index, n, 6, skip_trivial=False, dense_max_nodes=dense_max_nodes)
    assert (kept[:2].abs() < 1e-12).all() and values.min() > 1e-3
    np.testing.assert_allclose(kept[2:].numpy(), values.numpy(), atol=1e-8)
    support = [set(torch.nonzero(kept_vec[:, j].abs() > 1e-12).flatten().tolist()) for j in range(2)]
    assert sorted(map(sorted, support)) == [list(range(20)), list(range(20, 35))]
    lap = _reference_laplacian(edge_index, n, "sym")
    _check_eigenpairs(lap, kept, kept_vec, orthonormal=True)


@pytest.mark.parametrize("dense_max_nodes", [2000, 0], ids=["dense", "sparse"])
def test_one_direction_is_enough(dense_max_nodes):
    edge_index, n = random_edges([40, 30], p=0.1, seed=8)
    one_way = edge_index[:, edge_index[0] < edge_index[1]]
    both = laplacian_eigenpairs(edge_index, n, 5, dense_max_nodes=dense_max_nodes)
    single = laplacian_eigenpairs(one_way, n, 5, dense_max_nodes=dense_max_nodes)
    assert torch.equal(both[0], single[0]) and torch.equal(both[1], single[1])


def test_isolated_nodes():
    edge_index, n = random_edges([10], p=0.3, seed=6, isolated=3)
    values, vectors = laplacian_eigenpairs(edge_index, n, 4)
    assert values.min() > 1e-3  # the 3 isolated nodes count as components and are skipped
    assert torch.all(vectors[10:] == 0)  # non-trivial eigenvectors vanish on isolated nodes
    kept, kept_vec = laplacian_eigenpairs(edge_index, n, 4, skip_trivial=False)
    assert torch.all(kept == 0)
    _check_eigenpairs(_reference_laplacian(edge_index, n, "sym"), kept, kept_vec, orthonormal=True)


def test_padding_with_nan():
    path = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    values, vectors = laplacian_eigenpairs(path, 3, 8)
    # Path P3: normalised Laplacian eigenvalues 0, 1, 2.
    np.testing.assert_allclose(values[:2].numpy(), [1.0, 2.0], atol=1e-12)
    assert torch.isnan(values[2:]).all() and torch.isnan(vectors[:, 2:]).all()
    assert not torch.isnan(vectors[:, :2]).any()
    values, vectors = laplacian_eigenpairs(path, 3, 8, skip_trivial=False)
    assert (~torch.isnan(values)).sum() == 3 and torch.isnan(vectors[:, 3:]).all()

    data = LaplacianEigenpairs(k=8)(Data(edge_index=path, num_nodes=3))
    assert data.lappe_vec.shape == data.lappe_val.shape == (3, 8)
    assert data.lappe_vec.dtype == data.lappe_val.dtype == torch.float32
    assert torch.isnan(data.lappe_vec[:, 2:]).all() and torch.isnan(data.lappe_val[:, 2:]).all()
    assert torch.equal(data.lappe_val[0, :2], data.lappe_val[2, :2])  # repeated on every node row

    single = laplacian_eigenpairs(torch.empty(2, 0, dtype=torch.long), 1, 2)
    assert torch.isnan(single[0]).all() and single[1].shape == (1, 2)


def test_transform_matches_function_and_names_its_parameters():
    edge_index, n = random_edges([25], p=0.2, seed=7)
    transform = LaplacianEigenpairs(k=4, attr="pe", normalization=None, skip_trivial=False)
    data = transform(Data(edge_index=edge_index, num_nodes=n))
    values, vectors = laplacian_eigenpairs(edge_index, n, 4, normalization=None, skip_trivial=False)
    assert torch.equal(data.pe_vec, vectors.float())
    assert torch.equal(data.pe_val, values.float().expand(n, 4))
    assert "lappe_vec" not in data

    text = repr(transform)
    for part in ("LaplacianEigenpairs", "k=4", "attr='pe'", "normalization=None", "skip_trivial=False",
                 "dense_max_nodes=2000", "tol="):
        assert part in text and part in transform.cache_key
    keys = {LaplacianEigenpairs(k=4).cache_key, LaplacianEigenpairs(k=5).cache_key,
            LaplacianEigenpairs(k=4, normalization="rw").cache_key,
            LaplacianEigenpairs(k=4, skip_trivial=False).cache_key,
            LaplacianEigenpairs(k=4, attr="x2").cache_key}
    assert len(keys) == 5


def test_bad_input():
    edge_index = torch.tensor([[0, 1], [1, 2]])
    for k in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="k must be"):
            laplacian_eigenpairs(edge_index, 3, k)
        with pytest.raises(ValueError, match="k must be"):
            LaplacianEigenpairs(k)
    with pytest.raises(ValueError, match="out of range"):
        laplacian_eigenpairs(edge_index, 2, 1)
    with pytest.raises(ValueError, match="negative"):
        laplacian_eigenpairs(torch.tensor([[0, -1], [1, 0]]), 3, 1)
    with pytest.raises(ValueError, match="shape"):
        laplacian_eigenpairs(torch.tensor([0, 1, 2]), 3, 1)
    with pytest.raises(ValueError, match="dtype"):
        laplacian_eigenpairs(edge_index.float(), 3, 1)
    with pytest.raises(ValueError, match="normalization"):
        LaplacianEigenpairs(2, normalization="sym2")
    with pytest.raises(ValueError, match="dense_max_nodes"):
        LaplacianEigenpairs(2, dense_max_nodes=-1)
    with pytest.raises(ValueError, match="out of range"):
        LaplacianEigenpairs(2)(Data(edge_index=edge_index, num_nodes=2))
