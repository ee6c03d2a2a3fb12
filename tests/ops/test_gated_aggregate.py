"""gated_aggregate (GatedGCN's fused gating): both paths against a dense plain-torch oracle, gradients to second
order, every dtype, both CPU kernel variants, empty and NaN inputs."""
from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

import gnnlab.ops
from gnnlab.ops import Graph, gated_aggregate
from tests.ops.isa import cpu_isa

needs_extension = pytest.mark.skipif(not gnnlab.ops.extension_available(), reason="gnnlab._C not built")


@pytest.fixture(params=["baseline", "auto"])
def isa(request):
    with cpu_isa(request.param):
        yield request.param


def _graph(seed, num_src=30, num_dst=None, num_edges=200):
    """A random graph with duplicate edges, self loops and (with num_edges small) targets without edges."""
    num_dst = num_src if num_dst is None else num_dst
    g = torch.Generator().manual_seed(seed)
    edge_index = torch.stack([torch.randint(0, num_src, (num_edges,), generator=g),
                              torch.randint(0, num_dst - 1, (num_edges,), generator=g)])  # target num_dst-1: no edge
    if num_edges >= 4:
        edge_index[:, 1:4] = edge_index[:, :1]  # duplicates
    return edge_index, Graph.from_edge_index(edge_index, num_src, num_dst)


def _inputs(edge_index, num_src, num_dst, width, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    shapes = [(edge_index.size(1), width), (num_dst, width), (num_src, width), (num_src, width)]
    return [(torch.randn(*s, generator=g, dtype=torch.float64) * 2).to(dtype) for s in shapes]


def _oracle(edge_index, edge_in, x_dst, x_src, values, num_dst):
    """Dense float64 loops: one edge at a time."""
    edge_in, x_dst, x_src, values = (t.double() for t in (edge_in, x_dst, x_src, values))
    e_hat = torch.empty_like(edge_in)
    num = x_dst.new_zeros(num_dst, x_dst.size(1))
    den = x_dst.new_zeros(num_dst, x_dst.size(1))
    for e, (j, i) in enumerate(edge_index.t().tolist()):
        e_hat[e] = edge_in[e] + x_dst[i] + x_src[j]
        s = 1 / (1 + torch.exp(-e_hat[e]))
        num[i] += s * values[j]
        den[i] += s
    return e_hat, num, den


@pytest.mark.parametrize("width", [1, 7, 8, 16, 23, 70, 130])
def test_forward_matches_oracle(op_backend, isa, width):
    edge_index, graph = _graph(width, num_src=25, num_dst=20)
    inputs = _inputs(edge_index, 25, 20, width)
    for out, ref in zip(gated_aggregate(*inputs, graph), _oracle(edge_index, *inputs, 20)):
        assert out.dtype == torch.float32
        assert_close(out.double(), ref, rtol=2e-6, atol=2e-5)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float16, 2e-2), (torch.bfloat16, 1e-1)])
def test_dtypes_kept_and_close_to_oracle(op_backend, dtype, tol):
    edge_index, graph = _graph(1, num_src=15, num_edges=60)
    inputs = _inputs(edge_index, 15, 15, 9, dtype=dtype)
    for out, ref in zip(gated_aggregate(*inputs, graph), _oracle(edge_index, *inputs, 15)):
        assert out.dtype == dtype
        assert_close(out.double(), ref, rtol=tol, atol=tol * 4)


@pytest.mark.parametrize("width", [5, 16, 40])
def test_gradients_match_reference_path(isa, width):
    """Both paths, float32, every input and every output used with random cotangents."""
    if not gnnlab.ops.extension_available():
        pytest.skip("gnnlab._C not built")
    edge_index, graph = _graph(2, num_src=40, num_dst=35, num_edges=400)
    grads = {}
    for backend in ("torch", "extension"):
        inputs = [t.requires_grad_() for t in _inputs(edge_index, 40, 35, width)]
        with gnnlab.ops.backend_scope(backend):
            outs = gated_aggregate(*inputs, graph)
        g = torch.Generator().manual_seed(5)
        cotangents = [torch.randn(o.shape, generator=g) for o in outs]
        grads[backend] = torch.autograd.grad(outs, inputs, cotangents)
    for ref, out in zip(grads["torch"], grads["extension"]):
        assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_gradcheck_and_gradgradcheck(op_backend):
    edge_index, graph = _graph(3, num_src=9, num_dst=7, num_edges=25)
    inputs = [t.requires_grad_() for t in _inputs(edge_index, 9, 7, 4, dtype=torch.float64)]
    fn = lambda *a: gated_aggregate(*a, graph)  # noqa: E731
    assert torch.autograd.gradcheck(fn, inputs)
    assert torch.autograd.gradgradcheck(fn, inputs)


@pytest.mark.parametrize("which", [0, 1, 2, 3])
def test_gradient_of_one_input_only(op_backend, which):
    """The backward computes only what is asked for, and that part alone is right."""
    edge_index, graph = _graph(4, num_src=12, num_edges=50)
    inputs = _inputs(edge_index, 12, 12, 6, dtype=torch.float64)
    inputs[which].requires_grad_()
    outs = gated_aggregate(*inputs, graph)
    (grad,) = torch.autograd.grad(sum((o * (k + 1)).sum() for k, o in enumerate(outs)), inputs[which])
    leaf = [t.detach().clone().requires_grad_(k == which) for k, t in enumerate(inputs)]
    with gnnlab.ops.backend_scope("torch"):
        outs = gated_aggregate(*leaf, graph)
    (ref,) = torch.autograd.grad(sum((o * (k + 1)).sum() for k, o in enumerate(outs)), leaf[which])
    assert_close(grad, ref)


def test_empty_graph_and_isolated_targets(op_backend):
    graph = Graph.from_edge_index(torch.empty(2, 0, dtype=torch.long), 4)
    inputs = [t.requires_grad_() for t in _inputs(torch.empty(2, 0, dtype=torch.long), 4, 4, 3)]
    e_hat, num, den = gated_aggregate(*inputs, graph)
    assert e_hat.shape == (0, 3) and num.shape == (4, 3) and den.shape == (4, 3)
    assert (num == 0).all() and (den == 0).all()
    grads = torch.autograd.grad((num.sum() + den.sum()), inputs, allow_unused=True)
    assert all(g is None or (g == 0).all() for g in grads)
    no_nodes = Graph.from_edge_index(torch.empty(2, 0, dtype=torch.long), 0)
    out = gated_aggregate(*[torch.empty(0, 3) for _ in range(4)], no_nodes)
    assert [tuple(t.shape) for t in out] == [(0, 3), (0, 3), (0, 3)]


def test_nan_propagates_to_its_target_only(op_backend):
    edge_index, graph = _graph(6, num_src=10, num_edges=40)
    inputs = _inputs(edge_index, 10, 10, 5)
    inputs[0][7, 2] = float("nan")
    e_hat, num, den = gated_aggregate(*inputs, graph)
    target = edge_index[1, 7].item()
    assert e_hat[7, 2].isnan() and e_hat.isnan().sum() == 1
    assert num[target, 2].isnan() and den[target, 2].isnan()
    assert num.isnan().sum() == 1 and den.isnan().sum() == 1


def test_saturated_gates(op_backend):
    """Logits of ±200 (σ = 0 or 1 exactly) and ±inf give finite sums and zero gate gradients."""
    edge_index, graph = _graph(7, num_src=10, num_edges=40)
    inputs = _inputs(edge_index, 10, 10, 4, dtype=torch.float64)
    inputs[0][:20] = 200.0
    inputs[0][20:30] = -200.0
    inputs[0][30:, 0] = float("inf")
    inputs[0][30:, 1] = float("-inf")
    inputs = [t.requires_grad_() for t in inputs]
    e_hat, num, den = gated_aggregate(*inputs, graph)
    ref = _oracle(edge_index, *[t.detach() for t in inputs], 10)
    assert_close(num, ref[1]) and assert_close(den, ref[2])
    (grad,) = torch.autograd.grad(num.sum() + den.sum(), inputs[0])
    assert torch.isfinite(grad).all() and (grad[30:, :2] == 0).all()


@needs_extension
def test_cpu_variants_agree_bitwise():
    edge_index, graph = _graph(8, num_src=60, num_edges=900)
    inputs = [t.requires_grad_() for t in _inputs(edge_index, 60, 60, 70)]
    results = []
    for name in ("baseline", "auto"):
        with cpu_isa(name), gnnlab.ops.backend_scope("extension"):
            outs = gated_aggregate(*inputs, graph)
            grads = torch.autograd.grad(outs, inputs, [torch.ones_like(o) for o in outs])
        results.append(outs + grads)
    for a, b in zip(*results):
        assert_close(a, b, rtol=0, atol=0)


@needs_extension
def test_compiles_without_graph_breaks():
    edge_index, graph = _graph(9, num_src=20, num_edges=100)
    inputs = _inputs(edge_index, 20, 20, 8)
    fn = torch.compile(lambda *a: gated_aggregate(*a, graph), fullgraph=True, backend="aot_eager")
    with gnnlab.ops.backend_scope("extension"):
        for out, ref in zip(fn(*inputs), gated_aggregate(*inputs, graph)):
            assert_close(out, ref)


def test_bad_input():
    edge_index, graph = _graph(10, num_src=12, num_edges=30)
    inputs = _inputs(edge_index, 12, 12, 3)
    with pytest.raises(ValueError, match=r"values must have shape \[12, 3\]"):
        gated_aggregate(*inputs[:3], torch.randn(11, 3), graph)
    with pytest.raises(ValueError, match="edge_in.*dtype"):
        gated_aggregate(inputs[0].double(), *inputs[1:], graph)
    with pytest.raises(TypeError, match="Graph"):
        gated_aggregate(*inputs, edge_index)
