"""Selective scan: mamba_ssm's semantics, packed sequences, gradients, errors."""
from __future__ import annotations

import math

import pytest
import torch

from gnnlab.ops import selective_scan, selective_scan_carry
from tests.ops.isa import cpu_isa


def _naive(u, delta, A, B, C, D=None, z=None, delta_bias=None, softplus=False, starts=()):
    """Scalar loops over batch, channel, state and time: independent of the tensor implementation."""
    batch, dim, length = u.shape
    state = A.size(1)
    out = torch.zeros(batch, dim, length, dtype=torch.float64)
    last = torch.zeros(batch, dim, state, dtype=torch.float64)

    def coef(M, b, d, n, t):
        if M.dim() == 2:
            return float(M[d, n])
        if M.dim() == 3:
            return float(M[b, n, t])
        group = d // (dim // M.size(1))
        return float(M[b, group, n, t])

    for b in range(batch):
        for d in range(dim):
            h = [0.0] * state
            for t in range(length):
                dt = float(delta[b, d, t]) + (float(delta_bias[d]) if delta_bias is not None else 0.0)
                if softplus:
                    dt = math.log1p(math.exp(dt))
                if t in starts:
                    h = [0.0] * state
                y = 0.0
                for n in range(state):
                    h[n] = math.exp(dt * float(A[d, n])) * h[n] + dt * coef(B, b, d, n, t) * float(u[b, d, t])
                    y += coef(C, b, d, n, t) * h[n]
                if D is not None:
                    y += float(D[d]) * float(u[b, d, t])
                if z is not None:
                    zz = float(z[b, d, t])
                    y *= zz / (1 + math.exp(-zz))
                out[b, d, t] = y
            last[b, d] = torch.tensor(h, dtype=torch.float64)
    return out, last


def _inputs(batch=2, dim=4, state=3, length=7, layout="variable", groups=2, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(batch, dim, length, generator=g, dtype=dtype)
    delta = torch.randn(batch, dim, length, generator=g, dtype=dtype) * 0.5
    A = -torch.rand(dim, state, generator=g, dtype=dtype) - 0.1
    shape = {"fixed": (dim, state), "variable": (batch, state, length), "grouped": (batch, groups, state, length)}[layout]
    B = torch.randn(*shape, generator=g, dtype=dtype)
    C = torch.randn(*shape, generator=g, dtype=dtype)
    D = torch.randn(dim, generator=g, dtype=dtype)
    z = torch.randn(batch, dim, length, generator=g, dtype=dtype)
    bias = torch.randn(dim, generator=g, dtype=dtype) * 0.1
    return u, delta, A, B, C, D, z, bias


@pytest.mark.parametrize("layout", ["fixed", "variable", "grouped"])
@pytest.mark.parametrize("extras", [False, True])
def test_matches_scalar_loops(layout, extras):
    u, delta, A, B, C, D, z, bias = _inputs(layout=layout)
    kwargs = dict(D=D, z=z, delta_bias=bias, delta_softplus=True) if extras else {}
    out, last = selective_scan(u, delta, A, B, C, return_last_state=True, **kwargs)
    want, want_last = _naive(u, delta, A, B, C, D if extras else None, z if extras else None,
                             bias if extras else None, softplus=extras)
    torch.testing.assert_close(out, want)
    torch.testing.assert_close(last, want_last)


def test_packed_equals_each_sequence_alone():
    """Three sequences laid end to end (one empty) give what each gives on its own."""
    lengths = [3, 0, 5]
    u, delta, A, B, C, D, z, bias = _inputs(batch=1, length=sum(lengths), layout="variable")
    cu = torch.tensor([0, 3, 3, 8])
    out, last = selective_scan(u, delta, A, B, C, D, z, bias, True, return_last_state=True, cu_seqlens=cu)
    for k, (s, e) in enumerate(zip(cu[:-1].tolist(), cu[1:].tolist())):
        piece = selective_scan(u[..., s:e], delta[..., s:e], A, B[..., s:e], C[..., s:e], D, z[..., s:e], bias, True,
                               return_last_state=True)
        torch.testing.assert_close(out[..., s:e], piece[0])
        torch.testing.assert_close(last[k], piece[1][0])
    want, _ = _naive(u, delta, A, B, C, D, z, bias, softplus=True, starts=(0, 3))
    torch.testing.assert_close(out, want)


@pytest.mark.parametrize("layout", ["fixed", "variable", "grouped"])
def test_gradcheck_float64(op_backend, layout):
    """Both paths pass gradcheck; the reference also gradgradcheck (the compiled path refuses it)."""
    u, delta, A, B, C, D, z, bias = _inputs(batch=1, dim=2, state=2, length=4, layout=layout, groups=1)
    args = [t.requires_grad_() for t in (u, delta, A, B, C, D, z, bias)]

    def f(*a):
        return selective_scan(*a[:7], delta_bias=a[7], delta_softplus=True)

    assert torch.autograd.gradcheck(f, args)
    if op_backend == "torch":
        assert torch.autograd.gradgradcheck(f, args)


def test_low_precision_input_keeps_its_dtype():
    u, delta, A, B, C, D, z, bias = _inputs(dtype=torch.float32)
    out = selective_scan(u.bfloat16(), delta.bfloat16(), A, B.bfloat16(), C.bfloat16(), D, z.bfloat16(), bias, True)
    want = selective_scan(u.bfloat16().float(), delta.bfloat16().float(), A, B.bfloat16().float(),
                          C.bfloat16().float(), D, z.bfloat16().float(), bias, True)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), want, rtol=2e-2, atol=2e-2)


def test_empty_sequence():
    u, delta, A, B, C, *_ = _inputs(length=0)
    out, last = selective_scan(u, delta, A, B, C, return_last_state=True)
    assert out.shape == (2, 4, 0) and last.shape == (2, 4, 3) and not last.any()


@pytest.mark.parametrize(
    "change, match",
    [
        ({"delta": torch.zeros(2, 4, 6)}, "delta"),
        ({"A": torch.zeros(5, 3)}, r"\bA\b"),
        ({"B": torch.zeros(2, 3, 6)}, r"\bB\b"),
        ({"C": torch.zeros(2, 3, 3, 7)}, r"\bC\b.*G dividing"),
        ({"D": torch.zeros(3)}, r"\bD\b"),
        ({"z": torch.zeros(2, 4, 6)}, r"\bz\b"),
        ({"cu_seqlens": torch.tensor([0, 7])}, "batch 1"),
    ],
)
def test_bad_shapes_name_the_argument(change, match):
    u, delta, A, B, C, D, z, bias = _inputs()
    kwargs = dict(u=u, delta=delta, A=A, B=B, C=C, D=D, z=z)
    kwargs.update(change)
    with pytest.raises(ValueError, match=match):
        selective_scan(**kwargs)


def test_bad_offsets():
    u, delta, A, B, C, *_ = _inputs(batch=1)
    with pytest.raises(ValueError, match="cu_seqlens"):
        selective_scan(u, delta, A, B, C, cu_seqlens=torch.tensor([0, 5, 3, 7]))
    with pytest.raises(ValueError, match="cu_seqlens"):
        selective_scan(u, delta, A, B, C, cu_seqlens=torch.tensor([0, 6]))


# ---------------------------------------------------------------------------------------------
# The compiled CPU kernel against the reference, forward and backward.

import gnnlab.ops  # noqa: E402

needs_extension = pytest.mark.skipif(not gnnlab.ops.extension_available(), reason="gnnlab._C not built")


def _run(backend, inputs, kwargs, cu=None):
    args = [t.clone().requires_grad_() for t in inputs]
    kw = {k: (v.clone().requires_grad_() if torch.is_tensor(v) else v) for k, v in kwargs.items()}
    with gnnlab.ops.backend_scope(backend):
        out = selective_scan(*args, cu_seqlens=cu, **kw)
    cot = torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=out.dtype)
    grads = torch.autograd.grad((out * cot).sum(), args + [v for v in kw.values() if torch.is_tensor(v)])
    return out, grads


@needs_extension
@pytest.mark.parametrize("layout", ["fixed", "variable", "grouped"])
@pytest.mark.parametrize("length", [7, 150])  # 150 crosses the kernel's checkpoint chunks
@pytest.mark.parametrize("extras", [False, True])
@pytest.mark.parametrize("packed", [False, True])
def test_compiled_matches_reference(layout, length, extras, packed):
    u, delta, A, B, C, D, z, bias = _inputs(batch=1 if packed else 2, length=length, layout=layout)
    kwargs = dict(D=D, z=z, delta_bias=bias, delta_softplus=True) if extras else {}
    cu = torch.tensor([0, 3, 3, length // 2, length]) if packed else None
    ref_out, ref_grads = _run("torch", (u, delta, A, B, C), kwargs, cu)
    out, grads = _run("extension", (u, delta, A, B, C), kwargs, cu)
    torch.testing.assert_close(out, ref_out)
    for got, want in zip(grads, ref_grads):
        torch.testing.assert_close(got, want)


@needs_extension
def test_compiled_last_state_and_float32():
    u, delta, A, B, C, D, z, bias = _inputs(length=70, dtype=torch.float32)
    with gnnlab.ops.backend_scope("torch"):
        want = selective_scan(u, delta, A, B, C, D, z, bias, True, return_last_state=True)
    with gnnlab.ops.backend_scope("extension"):
        got = selective_scan(u, delta, A, B, C, D, z, bias, True, return_last_state=True)
    for a, b in zip(got, want):
        assert a.dtype == b.dtype
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@needs_extension
def test_compiled_double_backward_is_a_clear_error():
    u, delta, A, B, C, *_ = _inputs(length=5)
    u.requires_grad_()
    with gnnlab.ops.backend_scope("extension"):
        out = selective_scan(u, delta, A, B, C)
        (g,) = torch.autograd.grad(out.sum(), u, create_graph=False)
        with pytest.raises(RuntimeError, match="first-order gradients only"):
            torch.autograd.grad(selective_scan(u, delta, A, B, C).pow(2).sum(), u, create_graph=True)


@needs_extension
def test_compiled_forward_opcheck():
    u, delta, A, B, C, D, z, bias = _inputs(length=9, dtype=torch.float32)
    B4 = B.unsqueeze(1)
    C4 = C.unsqueeze(1)
    torch.library.opcheck(torch.ops.gnnlab.selective_scan_fwd.default, (u, delta, A, B4, C4, D, z, bias, True, None, 4))


@needs_extension
@pytest.mark.parametrize("layouts", [("fixed", "variable"), ("variable", "fixed"), ("grouped", "variable"), ("fixed", "grouped")])
def test_compiled_mixed_layouts_on_several_threads(layouts):
    """B and C in different layouts: each backward task must own every gradient slice it writes."""
    batch, dim, state, length = 3, 8, 3, 70
    u, delta, A, B, _, D, z, bias = _inputs(batch=batch, dim=dim, state=state, length=length, layout=layouts[0], groups=2)
    _, _, _, _, C, _, _, _ = _inputs(batch=batch, dim=dim, state=state, length=length, layout=layouts[1], groups=4, seed=1)
    kwargs = dict(D=D, z=z, delta_bias=bias, delta_softplus=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(4)
    try:
        ref_out, ref_grads = _run("torch", (u, delta, A, B, C), kwargs)
        for _ in range(3):
            out, grads = _run("extension", (u, delta, A, B, C), kwargs)
            torch.testing.assert_close(out, ref_out)
            for got, want in zip(grads, ref_grads):
                torch.testing.assert_close(got, want)
    finally:
        torch.set_num_threads(threads)


def test_nan_input_propagates_on_both_paths(op_backend):
    """A NaN input poisons its own channel from that step on, and nothing else."""
    u, delta, A, B, C, D, z, bias = _inputs(length=6)
    u[0, 1, 2] = float("nan")
    out = selective_scan(u, delta, A, B, C, D, z, bias, True)
    assert out[0, 1, 2:].isnan().all()
    assert not out[0, 1, :2].isnan().any()
    assert not out[1].isnan().any() and not out[0, [0, 2, 3]].isnan().any()


# ---------------------------------------------------------------------------------------------
# The compiled kernel's own float32 exp (scan::exp_approx) and its two CPU variants.


def _kernel_exp(x, state):
    """exp(x) as the compiled float32 scan computes it, read from its last state.

    Two steps with dt = 1, B = 1, u = (1, 0) and A = x give h0 = 1 and h1 = exp(x)·h0 + 0 = exp(x)
    exactly (for every x whose exp is finite, and for NaN), one value per (channel, state entry).
    """
    A = x.reshape(-1, state)
    dim = A.size(0)
    u = torch.tensor([1.0, 0.0]).expand(1, dim, 2).contiguous()
    delta = torch.ones(1, dim, 2)
    ones = torch.ones(dim, state)
    with gnnlab.ops.backend_scope("extension"):
        _, last = selective_scan(u, delta, A, ones, ones, return_last_state=True)
    return last.reshape(-1)


@needs_extension
@pytest.mark.parametrize("isa", ["baseline", "auto"])
@pytest.mark.parametrize("state", [16, 5])  # the compile-time width and the run-time path
def test_kernel_exp_within_two_ulp(isa, state):
    """Against float64 exp on a dense sweep of [-110, 88.72] plus -inf, NaN, -0, and underflow."""
    sweep = torch.linspace(-110.0, 88.72, 400_000)
    near_zero = torch.cat([torch.logspace(-30, 1, 2_000), -torch.logspace(-30, 1, 2_000)])
    special = torch.tensor([0.0, -0.0, float("-inf"), -87.3365, -103.27, -103.97, -103.98, -104.0, -1e30,
                            -3.4e38, 88.7228, 1e-38, -1e-45])
    x = torch.cat([sweep, near_zero, special])
    x = torch.cat([x, x.new_zeros((-x.numel()) % state)])
    with cpu_isa(isa):
        got = _kernel_exp(x, state)
    want = torch.exp(x.double())
    w32 = want.float().abs()
    ulp = (torch.nextafter(w32, torch.tensor(float("inf"))) - w32).double()
    assert ((got.double() - want).abs() <= 2 * ulp).all()
    assert (got[x < -104] == 0).all() and (got[x == float("-inf")] == 0).all()
    nan = _kernel_exp(torch.full((state,), float("nan")), state)
    assert nan.isnan().all()


@needs_extension
def test_kernel_exp_overflow_matches_reference():
    """exp(A) = inf at the first step meets the zero initial state: NaN, on both paths."""
    x = torch.tensor([88.8, 100.0, 1e30, float("inf")] * 4)
    A = x.reshape(-1, 16)
    u, delta, ones = torch.ones(1, 1, 2), torch.ones(1, 1, 2), torch.ones(1, 16)
    with gnnlab.ops.backend_scope("extension"):
        got = selective_scan(u, delta, A, ones, ones, return_last_state=True)[1]
    with gnnlab.ops.backend_scope("torch"):
        want = selective_scan(u, delta, A, ones, ones, return_last_state=True)[1]
    assert got.isnan().all() and want.isnan().all()


@needs_extension
@pytest.mark.parametrize("softplus", [False, True])
def test_compiled_float32_at_extreme_steps(softplus):
    """Transitions that underflow to 0 (dt·A down to -1e5) or sit at 1 (dt ~ 1e-13): float32
    kernel against the float64 reference, forward and backward."""
    batch, dim, state, length = 2, 6, 16, 40
    g = torch.Generator().manual_seed(3)
    scale = torch.tensor([1e-13, 1e-6, 1e-2, 1.0, 30.0, 2e3]).view(1, dim, 1)
    delta = torch.rand(batch, dim, length, generator=g) * scale
    if softplus:  # raw values whose softplus spans 1e-13 .. 60
        delta = torch.where(scale < 1, delta.clamp_min(1e-30).log(), delta * 2)
    A = -torch.logspace(-3, 1.7, state).repeat(dim, 1)
    u = torch.randn(batch, dim, length, generator=g)
    B, C = torch.randn(batch, state, length, generator=g), torch.randn(batch, state, length, generator=g)
    D, z = torch.randn(dim, generator=g), torch.randn(batch, dim, length, generator=g)
    cot = torch.randn(batch, dim, length, generator=g)

    def run(backend, dtype):
        args = [t.to(dtype).requires_grad_() for t in (u, delta, A, B, C, D, z)]
        with gnnlab.ops.backend_scope(backend):
            out = selective_scan(*args, delta_softplus=softplus)
        return out, torch.autograd.grad((out * cot.to(dtype)).sum(), args)

    out, grads = run("extension", torch.float32)
    ref_out, ref_grads = run("torch", torch.float64)
    torch.testing.assert_close(out.double(), ref_out, rtol=1e-4, atol=1e-4 * ref_out.abs().max().item())
    for got, want in zip(grads, ref_grads):
        torch.testing.assert_close(got.double(), want, rtol=1e-3, atol=1e-4 * want.abs().max().item())


@needs_extension
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("state", [16, 7])
def test_cpu_variants_give_the_same_bits(dtype, state):
    """The baseline and AVX2 builds add in the same order: identical outputs and gradients."""
    u, delta, A, B, C, D, z, bias = _inputs(batch=2, dim=4, state=state, length=150, dtype=dtype)
    kwargs = dict(D=D, z=z, delta_bias=bias, delta_softplus=True)
    results = []
    for isa in ("baseline", "auto"):
        with cpu_isa(isa):
            results.append(_run("extension", (u, delta, A, B, C), kwargs))
    (out0, grads0), (out1, grads1) = results
    assert torch.equal(out0, out1)
    for a, b in zip(grads0, grads1):
        assert torch.equal(a, b)


# ----- pieces of a scan: initial_state in, last state out (selective_scan_carry) -------------------------


def _naive_from(h0, u, delta, A, B, C, D, z, bias, starts=()):
    """Step-by-step oracle (softplus step sizes, per-step B/C, skip and gate) started from state ``h0``
    instead of zero; the state restarts at zero at the steps in ``starts``."""
    batch, dim, length = u.shape
    dt = torch.nn.functional.softplus(delta + bias.view(1, -1, 1))
    out = torch.zeros(batch, dim, length, dtype=torch.float64)
    last = torch.zeros(batch, dim, A.size(1), dtype=torch.float64)
    for b in range(batch):
        for d in range(dim):
            h = h0[b, d].clone()
            for t in range(length):
                if t in starts:
                    h = torch.zeros_like(h)
                h = torch.exp(dt[b, d, t] * A[d]) * h + dt[b, d, t] * B[b, :, t] * u[b, d, t]
                y = (C[b, :, t] * h).sum() + D[d] * u[b, d, t]
                out[b, d, t] = y * torch.nn.functional.silu(z[b, d, t])
            last[b, d] = h
    return out, last


@pytest.mark.parametrize("backend", ["torch", pytest.param("extension", marks=needs_extension)])
def test_carry_matches_oracle_from_an_initial_state(backend):
    u, delta, A, B, C, D, z, bias = _inputs(batch=1, length=9)
    h0 = torch.randn(1, 4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    with gnnlab.ops.backend_scope(backend):
        out, last = selective_scan_carry(u, delta, A, B, C, D, z, bias, True, torch.tensor([0, 4, 9]), h0)
    want_out, want_last = _naive_from(h0, u, delta, A, B, C, D, z, bias, starts={4})
    torch.testing.assert_close(out, want_out)
    torch.testing.assert_close(last, want_last)
    # unpacked, batch 2: the state runs through every step
    u, delta, A, B, C, D, z, bias = _inputs(batch=2, length=6)
    h0 = torch.randn(2, 4, 3, dtype=torch.float64)
    with gnnlab.ops.backend_scope(backend):
        out, last = selective_scan_carry(u, delta, A, B, C, D, z, bias, True, initial_state=h0)
    want_out, want_last = _naive_from(h0, u, delta, A, B, C, D, z, bias)
    torch.testing.assert_close(out, want_out)
    torch.testing.assert_close(last, want_last)


@pytest.mark.parametrize("backend", ["torch", pytest.param("extension", marks=needs_extension)])
@pytest.mark.parametrize("cut", [40, 64, 100])  # inside a sequence, on a kernel chunk edge, inside the second
def test_pieces_carrying_the_state_equal_one_scan(backend, cut):
    """Values and gradients (including through the carried state) of two pieces equal one packed scan."""
    length = 150
    args = [t.requires_grad_() for t in _inputs(batch=1, length=length)]
    cu = torch.tensor([0, 30, 90, length])
    cot = torch.randn(1, 4, length, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    with gnnlab.ops.backend_scope(backend):
        full = selective_scan(*args[:5], D=args[5], z=args[6], delta_bias=args[7], delta_softplus=True, cu_seqlens=cu)
        u, delta, A, B, C, D, z, bias = args
        first = [0] + [int(o) for o in cu if 0 < o < cut] + [cut]
        second = [0] + [int(o) - cut for o in cu if cut < o < length] + [length - cut]
        o1, s1 = selective_scan_carry(u[..., :cut], delta[..., :cut], A, B[..., :cut], C[..., :cut], D, z[..., :cut],
                                      bias, True, torch.tensor(first))
        o2, _ = selective_scan_carry(u[..., cut:], delta[..., cut:], A, B[..., cut:], C[..., cut:], D, z[..., cut:],
                                     bias, True, torch.tensor(second), initial_state=s1)
    pieces = torch.cat([o1, o2], -1)
    torch.testing.assert_close(pieces, full)
    for got, want in zip(torch.autograd.grad((pieces * cot).sum(), args), torch.autograd.grad((full * cot).sum(), args)):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("backend", ["torch", pytest.param("extension", marks=needs_extension)])
def test_carry_gradcheck_through_both_states(backend):
    u, delta, A, B, C, D, z, bias = [t.requires_grad_() for t in _inputs(batch=1, dim=2, state=3, length=12)]
    h0 = torch.randn(1, 2, 3, dtype=torch.float64, requires_grad=True)
    cu = torch.tensor([0, 5, 12])

    def f(*a):
        with gnnlab.ops.backend_scope(backend):
            return selective_scan_carry(*a[:8], True, cu, initial_state=a[8])

    assert torch.autograd.gradcheck(f, (u, delta, A, B, C, D, z, bias, h0))


def test_carry_bad_initial_state():
    u, delta, A, B, C, *_ = _inputs(batch=1, length=5)
    with pytest.raises(ValueError, match="initial_state must be"):
        selective_scan_carry(u, delta, A, B, C, initial_state=torch.zeros(1, 4, 2, dtype=torch.float64))


@needs_extension
def test_compiled_forward_opcheck_with_initial_state():
    u, delta, A, B, C, D, z, bias = _inputs(length=9, dtype=torch.float32)
    h0 = torch.randn(2, 4, 3)
    torch.library.opcheck(torch.ops.gnnlab.selective_scan_fwd.default,
                          (u, delta, A, B.unsqueeze(1), C.unsqueeze(1), D, z, bias, True, None, 4, h0))


@pytest.mark.parametrize("backend", ["torch", pytest.param("extension", marks=needs_extension)])
@pytest.mark.parametrize("packed", [False, True])
def test_carry_of_an_empty_piece_hands_the_state_on(backend, packed):
    u, delta, A, B, C, *_ = _inputs(batch=1, length=0)
    h0 = torch.randn(1, 4, 3, dtype=torch.float64)
    with gnnlab.ops.backend_scope(backend):
        out, last = selective_scan_carry(u, delta, A, B, C, cu_seqlens=torch.tensor([0, 0]) if packed else None,
                                         initial_state=h0)
    assert out.shape == (1, 4, 0)
    torch.testing.assert_close(last, h0)


@pytest.mark.parametrize("backend", ["torch", pytest.param("extension", marks=needs_extension)])
def test_carry_nan_in_the_initial_state_propagates_in_its_channel(backend):
    u, delta, A, B, C, D, z, bias = _inputs(batch=1, dim=2, length=8)
    h0 = torch.zeros(1, 2, 3, dtype=torch.float64)
    h0[0, 0, 1] = float("nan")
    with gnnlab.ops.backend_scope(backend):
        out, last = selective_scan_carry(u, delta, A, B, C, D, z, bias, True, torch.tensor([0, 3, 8]), h0)
    # Channel 0 continues from the NaN state; a restart multiplies the state by 0, which keeps a NaN
    # NaN (the scan never hides one), so it stays NaN; channel 1 is untouched.
    assert bool(out[0, 0].isnan().all()) and bool(last[0, 0, 1].isnan())
    assert bool(out[0, 1].isfinite().all()) and bool(last[0, 1].isfinite().all())


def test_carry_double_backward_on_the_reference_path():
    u, delta, A, B, C, D, z, bias = [t.requires_grad_() for t in _inputs(batch=1, dim=2, state=2, length=6)]
    h0 = torch.randn(1, 2, 2, dtype=torch.float64, requires_grad=True)

    def f(*a):
        with gnnlab.ops.backend_scope("torch"):
            return selective_scan_carry(*a[:8], True, torch.tensor([0, 2, 6]), initial_state=a[8])

    assert torch.autograd.gradgradcheck(f, (u, delta, A, B, C, D, z, bias, h0))
