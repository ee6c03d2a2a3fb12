"""torch_scatter-compatible scatter/segment_csr against torch.scatter_reduce."""
from __future__ import annotations

import pytest
import torch

from gnnlab.ops import scatter, segment_csr

REDUCES = ["sum", "mean", "max", "min"]


def _expected(src, index, dim, dim_size, reduce):
    dim = dim % src.dim()
    shape = list(src.shape)
    shape[dim] = dim_size
    view = [1] * src.dim()
    view[dim] = -1
    idx = index.view(view).expand_as(src)
    name = {"sum": "sum", "mean": "mean", "max": "amax", "min": "amin"}[reduce]
    return torch.zeros(shape, dtype=src.dtype).scatter_reduce(dim, idx, src, name, include_self=False)


@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_scatter_matches_scatter_reduce(op_backend, reduce, dim):
    g = torch.Generator().manual_seed(0)
    src = torch.randn(6, 7, 5, generator=g, dtype=torch.float64)
    size = src.size(dim)
    index = torch.randint(0, 4, (size,), generator=g)
    out = scatter(src, index, dim=dim, dim_size=6, reduce=reduce)
    torch.testing.assert_close(out, _expected(src, index, dim, 6, reduce))


@pytest.mark.parametrize("reduce", REDUCES)
def test_scatter_gradients(op_backend, reduce):
    g = torch.Generator().manual_seed(1)
    src = torch.randn(30, 4, generator=g, dtype=torch.float64, requires_grad=True)
    index = torch.randint(0, 7, (30,), generator=g)
    assert torch.autograd.gradcheck(lambda s: scatter(s, index, dim=0, dim_size=9, reduce=reduce), (src,))


@pytest.mark.parametrize("reduce", REDUCES)
def test_segment_csr(op_backend, reduce):
    g = torch.Generator().manual_seed(2)
    src = torch.randn(20, 3, generator=g, dtype=torch.float64, requires_grad=True)
    indptr = torch.tensor([0, 3, 3, 10, 20])
    out = segment_csr(src, indptr, reduce=reduce)
    index = torch.repeat_interleave(torch.arange(4), indptr.diff())
    torch.testing.assert_close(out, _expected(src.detach(), index, 0, 4, reduce))
    assert torch.autograd.gradcheck(lambda s: segment_csr(s, indptr, reduce=reduce), (src,))


def test_scatter_out_and_errors(op_backend):
    src = torch.ones(4, 2)
    index = torch.tensor([0, 1, 1, 3])
    out = torch.full((4, 2), 10.0)
    scatter(src, index, dim=0, out=out)
    assert out[:, 0].tolist() == [11.0, 12.0, 10.0, 11.0]
    with pytest.raises(ValueError, match="negative|out of range"):
        scatter(src, torch.tensor([0, -1, 1, 2]), dim=0)
    with pytest.raises(ValueError, match="out of range"):
        scatter(src, index, dim=0, dim_size=2)
    with pytest.raises(ValueError, match="slices"):
        scatter(src, torch.tensor([0, 1]), dim=0)
    with pytest.raises(ValueError, match="reduce"):
        scatter(src, index, dim=0, reduce="mul")


@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_empty_input_gives_zeros(op_backend, reduce, dim):
    """torch_scatter's rule: no slices give zeros of shape dim_size along dim (an empty batch)."""
    shape = [3, 4, 2]
    shape[dim] = 0
    src = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    index = torch.empty(0, dtype=torch.long)
    out = scatter(src, index, dim=dim, dim_size=5, reduce=reduce)
    expected_shape = list(shape)
    expected_shape[dim] = 5
    assert list(out.shape) == expected_shape and not out.any()
    (grad,) = torch.autograd.grad(out.sum(), src)
    assert grad.shape == src.shape
    assert scatter(src, index, dim=dim, reduce=reduce).size(dim) == 0  # dim_size defaults to max + 1 = 0
    segments = segment_csr(torch.randn(0, 3), torch.zeros(4, dtype=torch.long), reduce=reduce)
    assert segments.shape == (3, 3) and not segments.any()


@pytest.mark.parametrize("reduce", ["max", "min"])
def test_nan_propagates_like_scatter_reduce(op_backend, reduce):
    g = torch.Generator().manual_seed(3)
    src = torch.randn(12, 5, generator=g, dtype=torch.float64)
    src[torch.randint(0, 12, (6,), generator=g), torch.randint(0, 5, (6,), generator=g)] = float("nan")
    for trial in range(5):
        perm = torch.randperm(12, generator=g)
        index = torch.randint(0, 4, (12,), generator=g)
        out = scatter(src[perm], index, dim=0, dim_size=4, reduce=reduce)
        torch.testing.assert_close(out, _expected(src[perm], index, 0, 4, reduce), equal_nan=True)
