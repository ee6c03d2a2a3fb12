"""Property tests: every op against plain torch on generated graphs, on both backends.

The graphs cover zero edges, isolated nodes, self loops, multi-edges, int32/int64 indices,
non-contiguous features and float32/float64/bfloat16. Each op is compared with an oracle built
from ``index_add`` / ``scatter_reduce`` / ``index_select`` (independent of gnnlab), forward and
backward, and for sum/mean also the double backward (a Hessian-vector product). The default suite
runs a few hundred examples; the ``slow`` variants run ten thousand.
"""
from __future__ import annotations

import os

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gnnlab.ops
from gnnlab.ops import Graph, aggregate, coo_to_csr, gather_dst, gather_src, reduce_by_source, scatter, segment_csr

REDUCES = ["sum", "mean", "max", "min"]
BACKENDS = ["torch"] + (["extension"] if gnnlab.ops.extension_available() else [])
if os.environ.get("GNNLAB_REQUIRE_EXTENSION", "0") == "1" and "extension" not in BACKENDS:
    raise RuntimeError(f"gnnlab._C not built: {gnnlab.ops.extension_error()}")
SCATTER_NAME = {"sum": "sum", "mean": "mean", "max": "amax", "min": "amin"}
TOLERANCE = {torch.float64: (1e-9, 1e-9), torch.float32: (2e-5, 2e-5), torch.bfloat16: (2e-2, 2e-2)}

# Default-suite and long-run example counts per property (the long run totals 10,000).
DEFAULT_EXAMPLES = {"aggregate": 150, "scatter": 80, "gather": 60, "coo": 30}
LONG_EXAMPLES = {"aggregate": 5000, "scatter": 2500, "gather": 1500, "coo": 1000}


@st.composite
def graph_cases(draw, dtypes=(torch.float32, torch.float64, torch.bfloat16)):
    """A random graph and features: any of zero edges, isolated nodes, self loops, multi-edges."""
    num_nodes = draw(st.integers(0, 20))
    num_edges = draw(st.integers(0, 60)) if num_nodes else 0
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    # Few distinct nodes make multi-edges and self loops common; many leave nodes isolated.
    edge_index = torch.randint(0, max(num_nodes, 1), (2, num_edges), generator=g)
    if draw(st.booleans()) and num_edges:  # force some self loops and exact duplicates
        edge_index[1, ::3] = edge_index[0, ::3]
        edge_index[:, 1::4] = edge_index[:, ::4][:, : edge_index[:, 1::4].size(1)]
    edge_index = edge_index.to(draw(st.sampled_from([torch.int32, torch.int64])))
    feat = draw(st.one_of(st.integers(1, 9), st.sampled_from([16, 33])))
    dtype = draw(st.sampled_from(dtypes))
    contiguous = draw(st.booleans())
    base = torch.randn(num_nodes, feat, generator=g, dtype=torch.float64)
    if draw(st.booleans()):  # small integers: exact ties in max/min
        base = base.mul(2).round()
    x = base.to(dtype) if contiguous else base.t().contiguous().t().to(dtype)
    weighted = draw(st.booleans())
    w = torch.rand(num_edges, generator=g, dtype=torch.float64).add(0.25).to(dtype) if weighted else None
    reduce = draw(st.sampled_from(REDUCES))
    return edge_index, x, w, reduce


def _oracle(edge_index: torch.Tensor, x: torch.Tensor, w: torch.Tensor | None, reduce: str, num_dst: int) -> torch.Tensor:
    """``out[i] = reduce_{j -> i} w·x[j]`` from index_select + index_add / scatter_reduce (differentiable)."""
    src, dst = edge_index[0].long(), edge_index[1].long()
    msg = x.index_select(0, src)
    if w is not None:
        msg = msg * w.unsqueeze(-1)
    if reduce in ("sum", "mean"):
        out = msg.new_zeros(num_dst, x.size(1)).index_add(0, dst, msg)
        if reduce == "mean":
            out = out / torch.bincount(dst, minlength=num_dst).clamp(min=1).to(out.dtype).unsqueeze(-1)
        return out
    index = dst.unsqueeze(-1).expand_as(msg)
    return msg.new_zeros(num_dst, x.size(1)).scatter_reduce(0, index, msg, SCATTER_NAME[reduce], include_self=False)


def _close(actual, expected, dtype, msg):
    rtol, atol = TOLERANCE[dtype]
    torch.testing.assert_close(actual.double(), expected.double(), rtol=rtol, atol=atol, equal_nan=True, msg=msg)


def _check_aggregate(case):
    edge_index, x, w, reduce = case
    num_nodes, dtype = x.size(0), x.dtype
    graph = Graph.from_edge_index(edge_index, num_nodes)
    expected = _oracle(edge_index, x.double(), None if w is None else w.double(), reduce, num_nodes)
    # The upstream gradient is representable in x's dtype, so the oracle sees the same one.
    gen = torch.Generator().manual_seed(num_nodes * 1000 + edge_index.size(1))
    cot = torch.randn(num_nodes, x.size(1), generator=gen, dtype=torch.float64).to(dtype).double()
    grads = {}
    for backend in BACKENDS:
        xr = x.detach().clone().requires_grad_()
        wr = None if w is None else w.detach().clone().requires_grad_()
        with gnnlab.ops.backend_scope(backend):
            out = aggregate(xr, graph, wr, reduce)
            assert out.dtype == dtype and out.shape == (num_nodes, x.size(1))
            _close(out, expected, dtype, f"{backend} forward {reduce}")
            inputs = (xr,) if wr is None else (xr, wr)
            grads[backend] = torch.autograd.grad((out * cot.to(dtype)).sum(), inputs, allow_unused=True)
    # Backward: sum/mean against the oracle's autograd; max/min between the backends (the
    # oracle splits tied gradients, gnnlab gives them to the first edge in CSR order).
    if reduce in ("sum", "mean"):
        xo = x.detach().double().requires_grad_()
        wo = None if w is None else w.detach().double().requires_grad_()
        inputs = (xo,) if wo is None else (xo, wo)
        reference = torch.autograd.grad((_oracle(edge_index, xo, wo, reduce, num_nodes) * cot).sum(), inputs)
        for backend in BACKENDS:
            for got, want in zip(grads[backend], reference):
                _close(got, want, dtype, f"{backend} backward {reduce}")
        if dtype == torch.float64:
            _check_double_backward(edge_index, graph, xo.detach(), None if wo is None else wo.detach(), reduce, cot)
    elif len(BACKENDS) == 2:
        for a, b in zip(grads["torch"], grads["extension"]):
            _close(a, b, dtype, f"backends disagree on the {reduce} gradient")


def _check_double_backward(edge_index, graph, x, w, reduce, cot):
    """Hessian-vector product of a gradient penalty: gnnlab (each backend) vs the oracle."""
    g = torch.Generator().manual_seed(0)
    vx = torch.randn(x.shape, generator=g, dtype=torch.float64)
    vw = None if w is None else torch.randn(w.shape, generator=g, dtype=torch.float64)

    def hvp(fn):
        xr = x.clone().requires_grad_()
        wr = None if w is None else w.clone().requires_grad_()
        inputs = (xr,) if wr is None else (xr, wr)
        out = fn(torch.sin(xr), wr)  # sin makes the second derivative in x non-trivial
        first = torch.autograd.grad((out * cot).sum() + (out**2).sum(), inputs, create_graph=True)
        penalty = (first[0] * vx).sum() + (0 if wr is None else (first[1] * vw).sum())
        return torch.autograd.grad(penalty, inputs, allow_unused=True)

    want = hvp(lambda a, b: _oracle(edge_index, a, b, reduce, graph.num_dst))
    for backend in BACKENDS:
        with gnnlab.ops.backend_scope(backend):
            got = hvp(lambda a, b: aggregate(a, graph, b, reduce))
        for u, v in zip(got, want):
            if v is None:
                assert u is None or not u.any()
            else:
                _close(u, v, torch.float64, f"{backend} double backward {reduce}")


@st.composite
def scatter_cases(draw):
    num = draw(st.integers(0, 40))
    dim_size = draw(st.integers(0, 8)) if num == 0 else draw(st.integers(1, 8))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    index = torch.randint(0, max(dim_size, 1), (num,), generator=g)
    shape = [num, draw(st.integers(1, 5)), draw(st.integers(1, 3))]
    dim = draw(st.sampled_from([0, 1, 2, -1]))
    shape[0], shape[dim] = shape[dim], shape[0]
    src = torch.randn(shape, generator=g, dtype=torch.float64)
    if draw(st.booleans()) and src.numel():
        src.view(-1)[torch.randint(0, src.numel(), (2,), generator=g)] = float("nan")
    return src, index, dim, dim_size, draw(st.sampled_from(REDUCES))


def _check_scatter(case):
    src, index, dim, dim_size, reduce = case
    d = dim % src.dim()
    view = [1] * src.dim()
    view[d] = -1
    out_shape = list(src.shape)
    out_shape[d] = dim_size
    src_r = src.clone().requires_grad_()
    expected = torch.zeros(out_shape, dtype=src.dtype).scatter_reduce(
        d, index.view(view).expand_as(src), src_r, SCATTER_NAME[reduce], include_self=False
    )
    cot = torch.randn(out_shape, generator=torch.Generator().manual_seed(src.numel()), dtype=src.dtype)
    finite = not src.isnan().any()
    ref_grad = torch.autograd.grad((expected * cot).sum(), src_r)[0] if reduce in ("sum", "mean") and finite else None
    for backend in BACKENDS:
        with gnnlab.ops.backend_scope(backend):
            s = src.clone().requires_grad_()
            out = scatter(s, index, dim=dim, dim_size=dim_size, reduce=reduce)
            torch.testing.assert_close(out, expected.detach(), equal_nan=True, msg=f"{backend} scatter {reduce}")
            grad = torch.autograd.grad((out * cot).sum(), s)[0]
            assert grad.shape == src.shape
            if ref_grad is not None:
                torch.testing.assert_close(grad, ref_grad, msg=f"{backend} scatter backward {reduce}")
            if d == 0:  # the same reduction as contiguous segments of the sorted slices
                order = torch.sort(index, stable=True).indices
                indptr = torch.zeros(dim_size + 1, dtype=torch.long)
                indptr[1:] = torch.cumsum(torch.bincount(index, minlength=dim_size), 0)
                seg = segment_csr(src.index_select(0, order), indptr, reduce=reduce)
                torch.testing.assert_close(seg, expected.detach(), equal_nan=True, msg=f"{backend} segment_csr {reduce}")


def _check_gather(case):
    edge_index, x, _, _ = case
    x = x.detach()
    graph = Graph.from_edge_index(edge_index, x.size(0))
    ei = edge_index.long()
    cot = torch.randn(ei.size(1), x.size(1), generator=torch.Generator().manual_seed(ei.size(1)), dtype=torch.float64)
    cot = cot.to(x.dtype)
    for backend in BACKENDS:
        with gnnlab.ops.backend_scope(backend):
            for fn, row in ((gather_src, 0), (gather_dst, 1)):
                xr = x.clone().requires_grad_()
                out = fn(xr, graph)
                assert torch.equal(out, x.index_select(0, ei[row]))
                (grad,) = torch.autograd.grad((out * cot).sum(), xr)
                want = torch.zeros(x.shape, dtype=torch.float64).index_add(0, ei[row], cot.double())
                _close(grad, want, x.dtype, f"{backend} {fn.__name__} backward")
            summed = reduce_by_source(cot, graph)
            want = torch.zeros(x.shape, dtype=torch.float64).index_add(0, ei[0], cot.double())
            _close(summed, want, x.dtype, f"{backend} reduce_by_source")


@st.composite
def coo_cases(draw):
    num_nodes = draw(st.integers(0, 30))
    num_edges = draw(st.integers(0, 80)) if num_nodes else 0
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    edge_index = torch.randint(0, max(num_nodes, 1), (2, num_edges), generator=g)
    return edge_index.to(draw(st.sampled_from([torch.int32, torch.int64]))), num_nodes


def _check_coo(case):
    edge_index, num_nodes = case
    for backend in BACKENDS:
        with gnnlab.ops.backend_scope(backend):
            rowptr, col, perm = coo_to_csr(edge_index, num_nodes)
        assert torch.equal(perm, torch.sort(edge_index[0].long(), stable=True).indices)
        assert torch.equal(col, edge_index[1, perm]) and col.dtype == edge_index.dtype
        assert torch.equal(rowptr.diff(), torch.bincount(edge_index[0].long(), minlength=num_nodes))


def _property(check, strategy, examples):
    return settings(
        max_examples=examples, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
    )(given(case=strategy)(check))


test_aggregate = _property(_check_aggregate, graph_cases(), DEFAULT_EXAMPLES["aggregate"])
test_scatter = _property(_check_scatter, scatter_cases(), DEFAULT_EXAMPLES["scatter"])
test_gather = _property(_check_gather, graph_cases(), DEFAULT_EXAMPLES["gather"])
test_coo_to_csr = _property(_check_coo, coo_cases(), DEFAULT_EXAMPLES["coo"])

test_aggregate_long = pytest.mark.slow(_property(_check_aggregate, graph_cases(), LONG_EXAMPLES["aggregate"]))
test_scatter_long = pytest.mark.slow(_property(_check_scatter, scatter_cases(), LONG_EXAMPLES["scatter"]))
test_gather_long = pytest.mark.slow(_property(_check_gather, graph_cases(), LONG_EXAMPLES["gather"]))
test_coo_to_csr_long = pytest.mark.slow(_property(_check_coo, coo_cases(), LONG_EXAMPLES["coo"]))
