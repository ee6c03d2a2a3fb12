"""Fused aggregation vs its plain-torch specification and an independent dense oracle."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import gnnlab.ops
from gnnlab.ops import Graph, _reference, aggregate, aggregate_csr
from tests.ops.isa import cpu_isa

REDUCES = ["sum", "mean", "max", "min"]
BACKENDS = ["torch"] + (["extension"] if gnnlab.ops.extension_available() else [])
# The CPU kernel is compiled for the baseline ISA and for AVX2 (chosen at run time); test both.
ISAS = ["baseline", "auto"]
# Feature widths that reach the run-time-width path, the half-width block and the full blocks.
WIDTHS = st.one_of(st.integers(1, 9), st.sampled_from([16, 31, 32, 33, 48, 64, 65, 97, 128, 130]))




@pytest.fixture(params=ISAS)
def isa(request):
    with cpu_isa(request.param):
        yield request.param


def _random_graph(g, num_nodes, num_edges, self_loops=True, duplicates=True):
    edge_index = torch.randint(0, max(num_nodes, 1), (2, num_edges), generator=g)
    if not self_loops:
        edge_index = edge_index[:, edge_index[0] != edge_index[1]]
    if not duplicates:
        edge_index = torch.unique(edge_index, dim=1)
    return edge_index


def _dense_oracle(edge_index, x, w, reduce, num_dst):
    """Per-target gathers and reductions: an oracle independent of both implementations."""
    feat = x.size(1)
    out = torch.zeros(num_dst, feat, dtype=torch.float64)
    for i in range(num_dst):
        edges = (edge_index[1] == i).nonzero().view(-1)
        if edges.numel() == 0:
            continue
        vals = x[edge_index[0, edges]].double()
        if w is not None:
            vals = vals * w[edges].double().unsqueeze(-1)
        out[i] = {"sum": vals.sum(0), "mean": vals.mean(0), "max": vals.max(0).values, "min": vals.min(0).values}[reduce]
    return out


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    num_nodes=st.integers(0, 30),
    num_edges=st.integers(0, 90),
    feat=WIDTHS,
    reduce=st.sampled_from(REDUCES),
    weighted=st.booleans(),
    index_dtype=st.sampled_from([torch.int32, torch.int64]),
)
def test_forward_matches_oracle(seed, num_nodes, num_edges, feat, reduce, weighted, index_dtype):
    g = torch.Generator().manual_seed(seed)
    if num_nodes == 0:
        num_edges = 0
    edge_index = _random_graph(g, num_nodes, num_edges).to(index_dtype)
    x = torch.randn(num_nodes, feat, generator=g, dtype=torch.float64)
    w = torch.randn(edge_index.size(1), generator=g, dtype=torch.float64) if weighted else None
    graph = Graph.from_edge_index(edge_index, num_nodes)
    expected = _dense_oracle(edge_index.long(), x, w, reduce, num_nodes)
    for backend in BACKENDS:
        for isa in ISAS if backend == "extension" else ["auto"]:
            with gnnlab.ops.backend_scope(backend), cpu_isa(isa):
                out = aggregate(x, graph, w, reduce)
            torch.testing.assert_close(out, expected, msg=f"{backend} ({isa}) {reduce}")


@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("feat", [33, 70, 130])
def test_dtypes_extension_vs_reference(op_backend, isa, reduce, dtype, feat):
    g = torch.Generator().manual_seed(1)
    edge_index = _random_graph(g, 50, 400)
    x = torch.randn(50, feat, generator=g).to(dtype)
    w = torch.rand(edge_index.size(1), generator=g).to(dtype)
    graph = Graph.from_edge_index(edge_index, 50)
    out = aggregate(x, graph, w, reduce)
    ref = _dense_oracle(edge_index, x.double(), w.double(), reduce, 50)
    tol = {torch.float32: 1e-5, torch.float64: 1e-10, torch.bfloat16: 3e-2, torch.float16: 3e-3}[dtype]
    assert out.dtype == dtype
    torch.testing.assert_close(out.double(), ref, rtol=tol, atol=tol * 10)


def test_noncontiguous_input(op_backend):
    g = torch.Generator().manual_seed(2)
    edge_index = _random_graph(g, 40, 200)
    base = torch.randn(16, 40, generator=g)
    x = base.t()  # (40, 16), not contiguous
    assert not x.is_contiguous()
    graph = Graph.from_edge_index(edge_index, 40)
    for reduce in REDUCES:
        torch.testing.assert_close(aggregate(x, graph, reduce=reduce), aggregate(x.contiguous(), graph, reduce=reduce))


@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize("weighted", [False, True])
def test_gradcheck(op_backend, reduce, weighted):
    g = torch.Generator().manual_seed(3)
    # No duplicate edges and distinct values: max/min are differentiable (no ties) at this point.
    edge_index = _random_graph(g, 12, 50, duplicates=False)
    x = torch.randn(12, 5, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.rand(edge_index.size(1), generator=g, dtype=torch.float64).add(0.5).requires_grad_(weighted)
    graph = Graph.from_edge_index(edge_index, 12)
    inputs = (x, w) if weighted else (x,)

    def f(*args):
        return aggregate(args[0], graph, args[1] if weighted else w.detach(), reduce)

    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("reduce", ["max", "min"])
@pytest.mark.parametrize("feat", [1, 40, 70])
def test_tie_rule_first_edge_in_csr_order(op_backend, isa, reduce, feat):
    # Target 0 receives from 1, 2, 3 with equal values: the first edge in CSR (= input) order wins.
    edge_index = torch.tensor([[2, 1, 3], [0, 0, 0]])
    x = torch.tensor([[0.0], [5.0], [5.0], [5.0]]).repeat(1, feat).requires_grad_()
    graph = Graph.from_edge_index(edge_index, 4)
    aggregate(x, graph, reduce=reduce).sum().backward()
    assert x.grad.tolist() == [[0.0] * feat, [0.0] * feat, [1.0] * feat, [0.0] * feat]


def test_backends_agree_on_gradients():
    if "extension" not in BACKENDS:
        pytest.skip("gnnlab._C not built")
    g = torch.Generator().manual_seed(4)
    edge_index = _random_graph(g, 60, 500)
    graph = Graph.from_edge_index(edge_index, 60)
    for reduce in REDUCES:
        grads = []
        for backend in BACKENDS:
            x = torch.randn(60, 7, generator=torch.Generator().manual_seed(5), requires_grad=True)
            w = torch.rand(edge_index.size(1), generator=torch.Generator().manual_seed(6)).requires_grad_()
            with gnnlab.ops.backend_scope(backend):
                out = aggregate(x, graph, w, reduce)
            (out * torch.arange(7.0)).sum().backward()
            grads.append((out.detach(), x.grad, w.grad))
        for a, b in zip(*grads):
            torch.testing.assert_close(a, b, msg=reduce)


def test_empty_graph_and_isolated_nodes(op_backend):
    graph = Graph.from_edge_index(torch.empty(2, 0, dtype=torch.long), 5)
    x = torch.randn(5, 3, requires_grad=True)
    for reduce in REDUCES:
        out = aggregate(x, graph, reduce=reduce)
        assert torch.equal(out, torch.zeros(5, 3))
        out.sum().backward()
        assert torch.equal(x.grad, torch.zeros(5, 3))
        x.grad = None


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"col": torch.tensor([0, 7])}, "out of range"),
        ({"col": torch.tensor([0, -1])}, "negative"),
        ({"rowptr": torch.tensor([0, 1, 3])}, "end at num_edges|start at 0"),
        ({"rowptr": torch.tensor([0, 2, 1, 2])}, "non-decreasing"),
        ({"weight": torch.ones(3)}, r"shape \[2\]"),
        ({"weight": torch.ones(2, dtype=torch.float64)}, "dtype"),
        ({"x": torch.ones(4, dtype=torch.long)}, "floating|2-D"),
        ({"reduce": "median"}, "reduce"),
    ],
)
def test_bad_input_raises_value_error(op_backend, kwargs, match):
    args = {
        "rowptr": torch.tensor([0, 1, 2, 2]),
        "col": torch.tensor([0, 1]),
        "x": torch.randn(4, 3),
        "weight": None,
        "reduce": "sum",
    }
    args.update(kwargs)
    z = torch.zeros(1, dtype=torch.long)
    with pytest.raises(ValueError, match=match):
        aggregate_csr(args["rowptr"], args["col"], z, z, z, args["x"], args["weight"], args["reduce"])


def test_graph_cache_orientations():
    g = torch.Generator().manual_seed(7)
    edge_index = _random_graph(g, 20, 80)
    graph = Graph.from_edge_index(edge_index, 20)
    assert torch.equal(graph.col.long(), edge_index[0, graph.perm])
    assert torch.equal(graph.in_degree(), torch.bincount(edge_index[1], minlength=20))
    assert torch.equal(graph.out_degree(), torch.bincount(edge_index[0], minlength=20))
    # perm_t maps transposed positions to CSR positions of the same edge.
    src_sorted = torch.repeat_interleave(torch.arange(20), graph.out_degree())
    assert torch.equal(graph.col.long()[graph.perm_t], src_sorted)
    assert torch.equal(graph.csr_edge_index()[1], torch.repeat_interleave(torch.arange(20), graph.in_degree()))


@pytest.mark.skipif(not gnnlab.ops.extension_available(), reason="gnnlab._C not built")
@pytest.mark.parametrize("reduce", REDUCES)
def test_opcheck(reduce):
    g = torch.Generator().manual_seed(8)
    edge_index = _random_graph(g, 15, 60, duplicates=False)
    graph = Graph.from_edge_index(edge_index, 15)
    x = torch.randn(15, 4, generator=g, requires_grad=True)
    w = torch.rand(graph.num_edges, generator=g, requires_grad=True)
    args = (graph.rowptr, graph.col, graph.rowptr_t, graph.col_t, graph.perm_t, x, w, reduce)
    torch.library.opcheck(torch.ops.gnnlab.aggregate.default, args)
    torch.library.opcheck(torch.ops.gnnlab.aggregate.default, args[:6] + (None, reduce))


def test_reference_is_the_spec_for_ties():
    """The reference path implements the same tie rule (it is the fallback)."""
    rowptr, col = torch.tensor([0, 3]), torch.tensor([1, 0, 2])
    x = torch.tensor([[2.0], [2.0], [1.0]])
    _, arg = _reference.aggregate(rowptr, col, x, None, "max")
    assert arg.tolist() == [[0]]


@pytest.mark.parametrize("reduce", REDUCES)
def test_reduce_messages(op_backend, reduce):
    g = torch.Generator().manual_seed(9)
    edge_index = _random_graph(g, 25, 120)
    graph = Graph.from_edge_index(edge_index, 25)
    messages = torch.randn(edge_index.size(1), 2, 3, generator=g, dtype=torch.float64, requires_grad=True)
    out = gnnlab.ops.reduce_messages(messages, graph, reduce)
    name = {"sum": "sum", "mean": "mean", "max": "amax", "min": "amin"}[reduce]
    index = edge_index[1].view(-1, 1, 1).expand_as(messages)
    expected = torch.zeros(25, 2, 3, dtype=torch.float64).scatter_reduce(0, index, messages.detach(), name, include_self=False)
    torch.testing.assert_close(out, expected)
    assert torch.autograd.gradcheck(lambda m: gnnlab.ops.reduce_messages(m, graph, reduce), (messages,))


# ---------------------------------------------------------------------------------------------
# Second-order gradients: every registered op has an autograd formula made of the same ops.


def _smooth_case(seed, num_nodes=9, num_edges=40, feat=3):
    """Random graph without duplicate edges and random values: max/min have no ties (differentiable)."""
    g = torch.Generator().manual_seed(seed)
    edge_index = _random_graph(g, num_nodes, num_edges, duplicates=False)
    x = torch.randn(num_nodes, feat, generator=g, dtype=torch.float64)
    w = torch.rand(edge_index.size(1), generator=g, dtype=torch.float64).add(0.5)
    return Graph.from_edge_index(edge_index, num_nodes), x, w


@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_gradgradcheck(op_backend, reduce, weighted, seed):
    graph, x, w = _smooth_case(seed)
    x.requires_grad_()
    w.requires_grad_(weighted)
    inputs = (x, w) if weighted else (x,)

    def f(*args):
        return aggregate(args[0], graph, args[1] if weighted else w, reduce)

    assert torch.autograd.gradcheck(f, inputs)
    assert torch.autograd.gradgradcheck(f, inputs)


def test_hessian_vector_product_matches_reference():
    """A gradient penalty's second derivative: extension and reference agree on random graphs."""
    if "extension" not in BACKENDS:
        pytest.skip("gnnlab._C not built")
    graph, x0, w0 = _smooth_case(3, num_nodes=30, num_edges=200, feat=5)
    for reduce in REDUCES:
        results = []
        for backend in BACKENDS:
            x, w = x0.clone().requires_grad_(), w0.clone().requires_grad_()
            with gnnlab.ops.backend_scope(backend):
                out = aggregate(torch.tanh(x), graph, w, reduce)
                gx, gw = torch.autograd.grad((out**2).sum(), (x, w), create_graph=True)
                penalty = (gx**2).sum() + (gw**3).sum()
                results.append(torch.autograd.grad(penalty, (x, w)))
        for a, b in zip(*results):
            torch.testing.assert_close(a, b, msg=reduce)


@pytest.mark.skipif(not gnnlab.ops.extension_available(), reason="gnnlab._C not built")
@pytest.mark.parametrize("reduce", REDUCES)
def test_backward_ops_gradcheck_and_opcheck(reduce):
    """The registered backward ops are differentiable themselves (to the third order via the forward op)."""
    graph, x, w = _smooth_case(4)
    rowptr, col, rowptr_t, col_t, perm_t = graph.rowptr, graph.col, graph.rowptr_t, graph.col_t, graph.perm_t
    _, arg = torch.ops.gnnlab.aggregate(rowptr, col, rowptr_t, col_t, perm_t, x, w, reduce)
    g = torch.randn(graph.num_dst, x.size(1), dtype=torch.float64, requires_grad=True)
    xr = x.clone().requires_grad_()

    def weight_backward(x_, g_):
        return torch.ops.gnnlab.aggregate_weight_backward(rowptr, col, x_, g_, arg, reduce)

    assert torch.autograd.gradcheck(weight_backward, (xr, g))
    assert torch.autograd.gradgradcheck(weight_backward, (xr, g))
    torch.library.opcheck(torch.ops.gnnlab.aggregate_weight_backward.default, (rowptr, col, xr, g, arg, reduce))
    if reduce in ("max", "min"):
        wr = w.clone().requires_grad_()

        def x_backward(g_, w_):
            return torch.ops.gnnlab.aggregate_extremum_x_backward(
                rowptr, col, rowptr_t, col_t, perm_t, arg, g_, w_, x.size(0)
            )

        assert torch.autograd.gradcheck(x_backward, (g, wr))
        assert torch.autograd.gradgradcheck(x_backward, (g, wr))
        torch.library.opcheck(
            torch.ops.gnnlab.aggregate_extremum_x_backward.default,
            (rowptr, col, rowptr_t, col_t, perm_t, arg, g, wr, x.size(0)),
        )


@pytest.mark.parametrize("reduce", REDUCES)
def test_no_silent_autograd_fallthrough(op_backend, reduce):
    """Double backward through every path runs without 'autograd kernel was not registered' warnings."""
    import warnings

    graph, x, w = _smooth_case(5)
    x.requires_grad_()
    w.requires_grad_()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = aggregate(x, graph, w, reduce)
        gx, gw = torch.autograd.grad(out.pow(2).sum(), (x, w), create_graph=True)
        torch.autograd.grad(gx.sum() + gw.sum(), (x, w))


# ---------------------------------------------------------------------------------------------
# NaN: max/min propagate it as torch.scatter_reduce(amax/amin) does, whatever the edge order.


@pytest.mark.parametrize("reduce", ["max", "min"])
@pytest.mark.parametrize("feat", [1, 16, 37])
def test_nan_propagates_in_any_edge_order(op_backend, isa, reduce, feat):
    g = torch.Generator().manual_seed(11)
    x = torch.randn(6, feat, generator=g)
    x[2, ::2] = float("nan")  # node 2 sends NaN on every other feature
    name = {"max": "amax", "min": "amin"}[reduce]
    sources = torch.tensor([0, 1, 2, 3, 4, 5])
    for trial in range(6):
        order = sources[torch.randperm(6, generator=g)]
        edge_index = torch.stack([order, torch.zeros(6, dtype=torch.long)])
        graph = Graph.from_edge_index(edge_index, 6)
        out = aggregate(x, graph, reduce=reduce)
        expected = torch.zeros(6, feat).scatter_reduce(
            0, edge_index[1].view(-1, 1).expand(-1, feat), x[order], name, include_self=False
        )
        torch.testing.assert_close(out, expected, equal_nan=True, msg=f"order {order.tolist()}")
        assert out[0, ::2].isnan().all() and not out[0, 1::2].isnan().any()


@pytest.mark.parametrize("reduce", ["max", "min"])
def test_nan_gradient_goes_to_the_first_nan_edge(op_backend, reduce):
    x = torch.tensor([[1.0], [float("nan")], [float("nan")], [5.0]], requires_grad=True)
    edge_index = torch.tensor([[3, 2, 0, 1], [0, 0, 0, 0]])
    aggregate(x, Graph.from_edge_index(edge_index, 4), reduce=reduce).sum().backward()
    assert x.grad.view(-1).tolist() == [0.0, 0.0, 1.0, 0.0]


# ---------------------------------------------------------------------------------------------
# Determinism: no atomics, one thread per row, no fused multiply-adds.


def _all_results(graph, x0, w0):
    results = []
    for reduce in REDUCES:
        x, w = x0.clone().requires_grad_(), w0.clone().requires_grad_()
        out = aggregate(x, graph, w, reduce)
        (out * torch.linspace(-1, 1, out.size(1), dtype=out.dtype)).sum().backward()
        results.append((out.detach(), x.grad, w.grad))
    return results


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_same_bits_for_any_thread_count(op_backend, dtype):
    g = torch.Generator().manual_seed(12)
    edge_index = _random_graph(g, 2000, 40000)
    graph = Graph.from_edge_index(edge_index, 2000)
    x0 = torch.randn(2000, 48, generator=g).to(dtype)
    w0 = torch.rand(edge_index.size(1), generator=g).to(dtype)
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        runs = []
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            runs.append(_all_results(graph, x0, w0))
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
    for other in runs[1:]:
        for reduce, a, b in zip(REDUCES, runs[0], other):
            for u, v in zip(a, b):
                assert torch.equal(u, v), reduce


@pytest.mark.skipif(not gnnlab.ops.extension_available(), reason="gnnlab._C not built")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_baseline_and_avx2_variants_give_the_same_bits(dtype):
    g = torch.Generator().manual_seed(13)
    edge_index = _random_graph(g, 500, 8000)
    graph = Graph.from_edge_index(edge_index, 500)
    x0 = torch.randn(500, 70, generator=g).to(dtype)
    w0 = torch.rand(edge_index.size(1), generator=g).to(dtype)
    with gnnlab.ops.backend_scope("extension"):
        with cpu_isa("baseline"):
            base = _all_results(graph, x0, w0)
        with cpu_isa("auto"):
            auto = _all_results(graph, x0, w0)
    for reduce, a, b in zip(REDUCES, base, auto):
        for u, v in zip(a, b):
            assert torch.equal(u, v), reduce


def _winner_sums(graph, arg, g, w, acc_dtype, order):
    """d x of max/min: each entry sums w·g over the targets it won, one add at a time, visiting the
    winning CSR positions in ``order``."""
    degree = graph.rowptr.diff()
    row = torch.repeat_interleave(torch.arange(graph.num_dst), degree)
    position = graph.rowptr[:-1].unsqueeze(-1) + arg.long()  # [R, F]; rows without edges never match
    acc = torch.zeros(graph.num_src, g.size(1), dtype=acc_dtype)
    for e in order.tolist():
        i = row[e]
        won = position[i] == e
        value = g[i, won].to(acc_dtype) * (w[e].to(acc_dtype) if w is not None else 1)
        acc[graph.col[e], won] += value
    return acc.to(g.dtype)


@pytest.mark.skipif(not gnnlab.ops.extension_available(), reason="gnnlab._C not built")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
@pytest.mark.parametrize(
    "num_src, num_dst, num_edges, feat",
    [
        (300, 200, 3000, 2100),  # edges >= rows: the partitioned scatter, over ten blocks of grad_x rows
        (40, 30, 900, 7),  # one block
        (50, 400, 150, 70),  # fewer edges than rows: the gather through the transposed CSR
    ],
)
@pytest.mark.parametrize("weighted", [False, True])
def test_extremum_x_backward_sums_in_a_fixed_order(dtype, num_src, num_dst, num_edges, feat, weighted):
    """The CPU max/min x-gradient is the ordered sum, bit for bit: ascending target for the partitioned
    scatter, the transposed CSR's order for the gather."""
    g = torch.Generator().manual_seed(num_edges + feat)
    src = torch.randint(0, num_src, (num_edges,), generator=g)
    dst = torch.randint(0, num_dst, (num_edges,), generator=g)
    graph = Graph.from_edge_index(torch.stack([src, dst]), num_src, num_dst)
    x = torch.randn(num_src, feat, generator=g).to(dtype)
    w = torch.rand(num_edges, generator=g).to(dtype).index_select(0, graph.perm) if weighted else None  # CSR order
    grad = torch.randn(num_dst, feat, generator=g).to(dtype)
    csr = (graph.rowptr, graph.col, graph.rowptr_t, graph.col_t, graph.perm_t)
    _, arg = torch.ops.gnnlab.aggregate(*csr, x, w, "max")
    ours = torch.ops.gnnlab.aggregate_extremum_x_backward(*csr, arg, grad, w, num_src)
    order = torch.arange(num_edges) if num_edges >= num_dst else graph.perm_t
    acc_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    assert torch.equal(ours, _winner_sums(graph, arg, grad, w, acc_dtype, order))


# ---------------------------------------------------------------------------------------------
# Empty inputs: zeros of the right shape, gradients included.


@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize("num_nodes", [0, 4])
def test_zero_edges(op_backend, reduce, num_nodes):
    graph = Graph.from_edge_index(torch.empty(2, 0, dtype=torch.long), num_nodes)
    x = torch.randn(num_nodes, 3, dtype=torch.float64, requires_grad=True)
    w = torch.empty(0, dtype=torch.float64, requires_grad=True)
    out = aggregate(x, graph, w, reduce)
    assert out.shape == (num_nodes, 3) and not out.any()
    gx, gw = torch.autograd.grad(out.sum(), (x, w), create_graph=True)
    assert gx.shape == x.shape and not gx.any() and gw.shape == (0,)
    messages = torch.randn(0, 2, 3, requires_grad=True)
    out = gnnlab.ops.reduce_messages(messages, graph, reduce)
    assert out.shape == (num_nodes, 2, 3) and not out.any()


@pytest.mark.skipif(not gnnlab.ops.extension_available(), reason="gnnlab._C not built")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_extension_forward_equals_reference_bits(isa, dtype):
    """Both sum a row in CSR order with the same accumulator type and no FMA: identical bits."""
    g = torch.Generator().manual_seed(14)
    edge_index = _random_graph(g, 400, 6000)
    graph = Graph.from_edge_index(edge_index, 400)
    x = torch.randn(400, 37, generator=g).to(dtype)
    w = torch.rand(edge_index.size(1), generator=g).to(dtype)
    for reduce in REDUCES:
        with gnnlab.ops.backend_scope("torch"):
            ref = aggregate(x, graph, w, reduce)
        with gnnlab.ops.backend_scope("extension"):
            out = aggregate(x, graph, w, reduce)
        assert torch.equal(out, ref), reduce
