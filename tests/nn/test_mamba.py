"""Mamba block: equals an independent step-by-step Mamba, packed = one sequence at a time, mamba_ssm layout."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gnnlab.nn.ssm import BiMamba, Mamba


def _oracle(block: Mamba, hidden: torch.Tensor) -> torch.Tensor:
    """One sequence ``(L, d_model)`` through Mamba written out time step by time step."""
    length = hidden.size(0)
    k = block.d_conv
    xz = hidden @ block.in_proj.weight.t()
    x, z = xz[:, : block.d_inner], xz[:, block.d_inner :]
    w = block.conv1d.weight[:, 0]  # (d_inner, k)
    conv = torch.zeros_like(x)
    for t in range(length):
        acc = block.conv1d.bias.clone()
        for j in range(k):  # tap j reads x[t - (k - 1) + j]
            src = t - (k - 1) + j
            if src >= 0:
                acc = acc + w[:, j] * x[src]
        conv[t] = acc
    x = F.silu(conv)
    A = -torch.exp(block.A_log)
    h = torch.zeros(block.d_inner, block.d_state, dtype=hidden.dtype)
    ys = []
    for t in range(length):
        proj = block.x_proj.weight @ x[t]
        dt_low, B, C = proj[: block.dt_rank], proj[block.dt_rank : block.dt_rank + block.d_state], proj[-block.d_state :]
        dt = F.softplus(block.dt_proj.weight @ dt_low + block.dt_proj.bias)  # (d_inner,)
        h = torch.exp(dt[:, None] * A) * h + dt[:, None] * B[None, :] * x[t][:, None]
        y = h @ C + block.D * x[t]
        ys.append(y * F.silu(z[t]))
    return torch.stack(ys) @ block.out_proj.weight.t()


def _block(seed=0, **kwargs):
    torch.manual_seed(seed)
    block = Mamba(6, d_state=4, d_conv=3, expand=2, **kwargs).double()
    with torch.no_grad():  # random weights everywhere, not just the initialisation
        block.conv1d.bias.normal_()
        block.D.normal_()
    return block


def test_matches_step_by_step_oracle():
    block = _block()
    hidden = torch.randn(2, 7, 6, dtype=torch.float64)
    out = block(hidden)
    for b in range(2):
        torch.testing.assert_close(out[b], _oracle(block, hidden[b]))


def test_packed_equals_each_sequence_alone():
    block = _block(1)
    lengths = [4, 1, 0, 6]
    hidden = torch.randn(sum(lengths), 6, dtype=torch.float64)
    cu = torch.tensor([0, 4, 5, 5, 11])
    out = block(hidden, cu)
    for s, e in zip(cu[:-1].tolist(), cu[1:].tolist()):
        if e > s:
            torch.testing.assert_close(out[s:e], block(hidden[s:e].unsqueeze(0))[0])
            torch.testing.assert_close(out[s:e], _oracle(block, hidden[s:e]))


def test_bidirectional_is_two_one_way_blocks():
    torch.manual_seed(2)
    bi = BiMamba(6, d_state=4, d_conv=3).double()
    hidden = torch.randn(2, 5, 6, dtype=torch.float64)
    want = bi.forward_block(hidden) + bi.backward_block(hidden.flip(1)).flip(1)
    torch.testing.assert_close(bi(hidden), want)
    cu = torch.tensor([0, 5, 10])
    packed = bi(hidden.reshape(10, 6), cu)
    torch.testing.assert_close(packed, want.reshape(10, 6))


def test_gradcheck_float64():
    block = _block(3)
    hidden = torch.randn(1, 4, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda h: block(h), (hidden,))


def test_state_dict_has_the_mamba_ssm_layout():
    block = Mamba(32)  # d_inner 64, dt_rank 2, d_state 16, d_conv 4
    shapes = {k: tuple(v.shape) for k, v in block.state_dict().items()}
    assert shapes == {
        "in_proj.weight": (128, 32),
        "conv1d.weight": (64, 1, 4),
        "conv1d.bias": (64,),
        "x_proj.weight": (2 + 32, 64),
        "dt_proj.weight": (64, 2),
        "dt_proj.bias": (64,),
        "A_log": (64, 16),
        "D": (64,),
        "out_proj.weight": (32, 64),
    }
    other = Mamba(32)
    other.load_state_dict(block.state_dict())
    hidden = torch.randn(2, 5, 32)
    torch.testing.assert_close(other(hidden), block(hidden))


def test_initialisation_as_mamba_ssm():
    block = Mamba(16, d_state=8, dt_min=0.001, dt_max=0.1)
    assert torch.equal(block.A_log, torch.log(torch.arange(1.0, 9.0)).repeat(32, 1))
    assert torch.equal(block.D, torch.ones(32))
    step = F.softplus(block.dt_proj.bias)
    assert bool((step >= 0.001 - 1e-6).all() and (step <= 0.1 + 1e-6).all())
    bound = block.dt_rank**-0.5
    assert bool((block.dt_proj.weight.abs() <= bound).all())
    assert block.A_log._no_weight_decay and block.D._no_weight_decay and block.dt_proj.bias._no_reinit
    assert block.dt_rank == math.ceil(16 / 16)


@pytest.mark.parametrize("bias", [False, True])
def test_order_equals_gathering_the_rows_first(bias):
    """forward(h, cu, order) == forward(h[order], cu), values and gradients (input and weights)."""
    block = _block(2, bias=bias)
    hidden = torch.randn(9, 6, dtype=torch.float64, requires_grad=True)
    order = torch.tensor([3, 0, 8, 1, 5, 2, 7, 4, 6, 0])  # a repeated row too (K orderings laid end to end)
    cu = torch.tensor([0, 4, 10])
    cot = torch.randn(10, 6, dtype=torch.float64)
    runs = []
    for gathered in (False, True):
        block.zero_grad(set_to_none=True)
        out = block(hidden[order], cu) if gathered else block(hidden, cu, order=order)
        grads = torch.autograd.grad((out * cot).sum(), [hidden, *block.parameters()])
        runs.append((out, grads))
    torch.testing.assert_close(runs[0][0], runs[1][0])
    for a, b in zip(runs[0][1], runs[1][1]):
        torch.testing.assert_close(a, b)


def test_bad_order():
    block = Mamba(8)
    with pytest.raises(ValueError, match="packed input"):
        block(torch.randn(1, 5, 8), order=torch.arange(5))
    with pytest.raises(ValueError, match="1-D int64"):
        block(torch.randn(5, 8), torch.tensor([0, 5]), order=torch.arange(5, dtype=torch.int32))


def test_bad_input():
    block = Mamba(8)
    with pytest.raises(ValueError, match="batch, L, 8"):
        block(torch.randn(5, 8))
    with pytest.raises(ValueError, match="total_L, 8"):
        block(torch.randn(1, 5, 8), torch.tensor([0, 5]))


@pytest.mark.parametrize("out_proj", [False, True])
def test_bidirectional_packed_ragged_is_forward_plus_reversed_backward(out_proj):
    """On packed sequences of different lengths, the bidirectional scan is the forward scan plus the
    backward block run on each sequence reversed alone (and reversed back), then the optional map."""
    torch.manual_seed(3)
    bi = BiMamba(6, d_state=4, d_conv=3, out_proj=out_proj).double()
    lengths = [3, 1, 0, 5, 2]
    hidden = torch.randn(sum(lengths), 6, dtype=torch.float64)
    cu = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()])
    out = bi(hidden, cu)
    for s, e in zip(cu[:-1].tolist(), cu[1:].tolist()):
        if e == s:
            continue
        seq = hidden[s:e].unsqueeze(0)  # (1, L, 6)
        want = bi.forward_block(seq)[0] + bi.backward_block(seq.flip(1))[0].flip(0)
        if out_proj:
            want = bi.out_proj(want)
        torch.testing.assert_close(out[s:e], want)


# ----- chunk_size: pieces recomputed in the backward ------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 16, 100])
@pytest.mark.parametrize("with_order", [False, True])
def test_chunked_equals_whole(chunk_size, with_order):
    """Values and gradients (input and every weight) equal the unchunked block, with pieces that cut
    sequences anywhere, an empty sequence, and an order with a repeated row."""
    whole = _block(4, bias=True)
    chunked = _block(4, bias=True, chunk_size=chunk_size)
    chunked.load_state_dict(whole.state_dict())
    hidden = torch.randn(20, 6, dtype=torch.float64, requires_grad=True)
    order = torch.cat([torch.randperm(20, generator=torch.Generator().manual_seed(1)), torch.tensor([3, 3])])
    cu = torch.tensor([0, 2, 9, 9, 15, 22]) if with_order else torch.tensor([0, 2, 9, 9, 20])
    rows = order.numel() if with_order else 20
    cot = torch.randn(rows, 6, dtype=torch.float64)
    results = []
    for block in (whole, chunked):
        out = block(hidden, cu, order=order if with_order else None)
        results.append((out, torch.autograd.grad((out * cot).sum(), [hidden, *block.parameters()])))
    torch.testing.assert_close(results[1][0], results[0][0])
    for got, want in zip(results[1][1], results[0][1]):
        torch.testing.assert_close(got, want)


def test_chunked_padded_input_no_grad_and_frozen_weights():
    whole = _block(5)
    chunked = _block(5, chunk_size=4)
    chunked.load_state_dict(whole.state_dict())
    hidden = torch.randn(3, 10, 6, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(chunked(hidden), whole(hidden))
    with torch.no_grad():
        torch.testing.assert_close(chunked(hidden), whole(hidden))
    for block in (whole, chunked):
        block.in_proj.weight.requires_grad_(False)
        block.A_log.requires_grad_(False)
    cot = torch.randn(3, 10, 6, dtype=torch.float64)
    want = torch.autograd.grad((whole(hidden) * cot).sum(), [hidden, whole.D, whole.out_proj.weight])
    got = torch.autograd.grad((chunked(hidden) * cot).sum(), [hidden, chunked.D, chunked.out_proj.weight])
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)


def test_chunked_float32_close_to_whole():
    torch.manual_seed(0)
    whole = Mamba(16)
    chunked = Mamba(16, chunk_size=64)
    chunked.load_state_dict(whole.state_dict())
    hidden = torch.randn(300, 16, requires_grad=True)
    cu = torch.tensor([0, 130, 300])
    a, b = whole(hidden, cu), chunked(hidden, cu)
    torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
    (ga,) = torch.autograd.grad(a.square().sum(), hidden)
    (gb,) = torch.autograd.grad(b.square().sum(), hidden)
    torch.testing.assert_close(gb, ga, rtol=1e-4, atol=1e-5)


def test_chunked_double_backward_is_a_clear_error():
    block = _block(6, chunk_size=4)
    hidden = torch.randn(10, 6, dtype=torch.float64, requires_grad=True)
    out = block(hidden, torch.tensor([0, 10]))
    with pytest.raises(RuntimeError, match="first-order gradients only"):
        (g,) = torch.autograd.grad(out.square().sum(), hidden, create_graph=True)
        g.sum().backward()


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "64"])
def test_bad_chunk_size(bad):
    with pytest.raises(ValueError, match="chunk_size"):
        Mamba(8, chunk_size=bad)
