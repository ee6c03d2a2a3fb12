"""KronReduction (ECC's graph pyramid) against the dense definitions: Laplacian, top eigenvector, Schur complement."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from gnnlab.transforms import KronReduction, kron_reduction
from gnnlab.transforms.kron import normalized_laplacian_dense


def _graph(n: int, seed: int, p: float = 0.4) -> Data:
    g = torch.Generator().manual_seed(seed)
    upper = torch.triu(torch.rand(n, n, generator=g) < p, diagonal=1)
    src, dst = upper.nonzero().t()
    return Data(x=torch.zeros(n, 1), edge_index=torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], 1))


def test_normalized_laplacian():
    data = _graph(7, 0)
    a = np.zeros((8, 8))
    a[data.edge_index[0], data.edge_index[1]] = 1.0  # node 7 isolated
    d = a.sum(1)
    inv = np.where(d > 0, 1 / np.sqrt(np.maximum(d, 1e-300)), 0.0)
    expected = np.diag((d > 0).astype(float)) - inv[:, None] * a * inv[None, :]
    np.testing.assert_allclose(normalized_laplacian_dense(data.edge_index, 8), expected)


@pytest.mark.parametrize("seed", range(4))
def test_one_level_is_the_schur_complement_on_the_top_eigenvector_sign(seed):
    lap = normalized_laplacian_dense(_graph(12, seed).edge_index, 12)
    keep, reduced = kron_reduction(lap)
    w, v = np.linalg.eigh(lap)
    top = v[:, -1] * np.sign(v[np.argmax(np.abs(v[:, -1])), -1])
    np.testing.assert_array_equal(keep, top >= 0)
    assert 0 < keep.sum() < 12
    p, m = np.flatnonzero(keep), np.flatnonzero(~keep)
    schur = lap[np.ix_(p, p)] - lap[np.ix_(p, m)] @ np.linalg.solve(lap[np.ix_(m, m)], lap[np.ix_(m, p)])
    np.testing.assert_allclose(reduced, schur, atol=1e-10)
    assert np.linalg.eigvalsh(reduced).min() > -1e-9  # a Schur complement of a PSD matrix stays PSD


def test_stored_levels_batch_and_edge_cases():
    data = KronReduction(num_levels=3)(_graph(10, 1))
    n = 10
    for k in (1, 2, 3):
        keep, edges, weight, sizes = (data[f"kron_{name}{k}"] for name in ("keep", "edges", "weight", "sizes"))
        assert keep.dtype == torch.bool and keep.numel() == n
        n = int(keep.sum())
        assert sizes.tolist() == [[n, edges.size(0)]] and weight.shape == (edges.size(0),)
        assert edges.shape[1] == 2 and (edges < n).all()
        dense = torch.zeros(n, n)
        dense[edges[:, 1], edges[:, 0]] = weight
        assert torch.allclose(dense, dense.T)  # symmetric, diagonal included
    single = KronReduction(2)(Data(x=torch.zeros(1, 1), edge_index=torch.zeros(2, 0, dtype=torch.long)))
    assert single.kron_keep2.tolist() == [True] and single.kron_sizes2.tolist() == [[1, 0]]
    # Two components, one of them able to fall wholly on the eliminated side: no inf or NaN.
    two = Data(x=torch.zeros(6, 1), edge_index=torch.tensor([[0, 1, 1, 2, 3, 4, 4, 5], [1, 0, 2, 1, 4, 3, 5, 4]]))
    out = KronReduction(2)(two)
    assert torch.isfinite(out.kron_weight1).all() and torch.isfinite(out.kron_weight2).all()
    with pytest.raises(ValueError, match="num_levels"):
        KronReduction(0)
