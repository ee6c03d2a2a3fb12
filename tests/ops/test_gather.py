"""gather_src / gather_dst: index_select forward, CSR-reduction backward, against autograd's index_add."""
from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from gnnlab.ops import Graph, gather_dst, gather_src, reduce_by_source


def graph(seed: int, n: int = 40, e: int = 300):
    g = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, n, (2, e), generator=g)
    edge_index[:, :5] = edge_index[:, :1]  # duplicates
    return edge_index, Graph.from_edge_index(edge_index, n)


@pytest.mark.parametrize("fn,row", [(gather_src, 0), (gather_dst, 1)])
def test_matches_index_select_forward_and_backward(op_backend, fn, row):
    edge_index, g = graph(0)
    x = torch.randn(40, 3, 5, dtype=torch.float64, requires_grad=True)  # trailing dims kept
    w = torch.randn(300, 3, 5, dtype=torch.float64)
    out = fn(x, g)
    ref = x.index_select(0, edge_index[row])
    assert_close(out, ref)
    (grad,) = torch.autograd.grad((out * w).sum(), x)
    (grad_ref,) = torch.autograd.grad((ref * w).sum(), x)
    assert_close(grad, grad_ref)


@pytest.mark.parametrize("fn", [gather_src, gather_dst])
def test_gradcheck_and_double_backward(op_backend, fn):
    edge_index, g = graph(1, n=12, e=50)
    x = torch.randn(12, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: fn(t, g), (x,))
    assert torch.autograd.gradgradcheck(lambda t: fn(t, g) ** 2, (x,))


def test_reduce_by_source_matches_index_add(op_backend):
    edge_index, g = graph(2)
    m = torch.randn(300, 6)
    assert_close(reduce_by_source(m, g), torch.zeros(40, 6).index_add_(0, edge_index[0], m))


def test_bad_input():
    edge_index, g = graph(3)
    with pytest.raises(ValueError, match="x has 39 rows"):
        gather_src(torch.randn(39, 2), g)
    with pytest.raises(ValueError, match="x has 41 rows"):
        gather_dst(torch.randn(41, 2), g)
    with pytest.raises(TypeError, match="Graph"):
        gather_src(torch.randn(40, 2), edge_index)
    with pytest.raises(ValueError, match="299 messages for 300 edges"):
        reduce_by_source(torch.randn(299, 2), g)
