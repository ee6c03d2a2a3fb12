"""gnnlab.nn.dropout: the drop rate, unbiasedness, gradients, edge cases, against torch's dropout."""
from __future__ import annotations

import math

import pytest
import torch

from gnnlab.nn.dropout import Dropout, dropout


@pytest.mark.parametrize("p", [0.05, 0.3, 0.7])
def test_drop_rate_and_scale_match_bernoulli_dropout(p):
    torch.manual_seed(0)
    x = torch.rand(400, 250) + 0.5  # no zeros: a zero in the output means a drop
    out = dropout(x, p)
    dropped = (out == 0).double().mean().item()
    n = x.numel()
    assert abs(dropped - p) < 5 * math.sqrt(p * (1 - p) / n)  # 5 sigma of a binomial proportion
    kept = out != 0
    torch.testing.assert_close(out[kept], x[kept] / (1 - p), rtol=2e-4, atol=0)  # p rounded to 2^-16
    # Unbiased: the mean over many draws approaches x.
    y = torch.randn(64)
    mean = torch.stack([dropout(y, p) for _ in range(4000)]).mean(0)
    assert (mean - y).abs().max() < 6 * y.abs().max() * math.sqrt(p / (1 - p) / 4000)


def test_masks_are_independent_across_elements_and_calls():
    torch.manual_seed(1)
    x = torch.ones(4, 100_000)
    a, b = dropout(x, 0.5) != 0, dropout(x, 0.5) != 0
    # Neighbouring lanes (one 64-bit draw) and consecutive calls are uncorrelated.
    for u, v in ((a[:, :-1], a[:, 1:]), (a, b), (a[:, 0::4], a[:, 3::4])):
        corr = torch.corrcoef(torch.stack([u.flatten().double(), v.flatten().double()]))[0, 1].item()
        assert abs(corr) < 0.01


def test_gradient_is_the_mask_times_the_scale_and_double_backward_works():
    torch.manual_seed(2)
    x = torch.randn(30, 7, dtype=torch.float64, requires_grad=True)
    torch.manual_seed(3)
    out = dropout(x, 0.4)
    (grad,) = torch.autograd.grad(out.sum(), x)
    scale = out.detach() / x.detach()
    torch.testing.assert_close(grad, torch.where(out != 0, scale, torch.zeros_like(scale)))

    def f(x):
        torch.manual_seed(3)  # the same mask on every call of gradcheck
        return dropout(x, 0.4) ** 2

    assert torch.autograd.gradcheck(f, (x,))
    assert torch.autograd.gradgradcheck(f, (x,))


def test_seeded_runs_repeat_and_edge_cases():
    x = torch.randn(10, 10)
    torch.manual_seed(5)
    a = dropout(x, 0.3)
    torch.manual_seed(5)
    assert torch.equal(a, dropout(x, 0.3))
    assert dropout(x, 0.3, training=False) is x and dropout(x, 0.0) is x
    assert torch.equal(dropout(x, 1.0), torch.zeros_like(x))
    assert dropout(torch.empty(0, 4), 0.5).shape == (0, 4)
    nan = torch.full((1000,), float("nan"))
    assert torch.isnan(dropout(nan, 0.5)).all()  # as torch's dropout: x * 0 stays NaN
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        dropout(x, 1.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        Dropout(-0.1)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_every_float_dtype_keeps_its_dtype_and_rate(dtype):
    torch.manual_seed(6)
    x = torch.ones(200, 200, dtype=dtype)
    out = dropout(x, 0.25)
    assert out.dtype == dtype
    assert abs((out == 0).float().mean().item() - 0.25) < 0.01
    torch.testing.assert_close(out[out != 0].float(), torch.full_like(out[out != 0].float(), 1 / 0.75),
                               rtol=1e-2, atol=0)


def test_module_matches_function_and_eval_mode():
    m = Dropout(0.2)
    x = torch.randn(50, 3)
    torch.manual_seed(7)
    a = m(x)
    torch.manual_seed(7)
    assert torch.equal(a, dropout(x, 0.2))
    m.eval()
    assert m(x) is x
    assert repr(m) == "Dropout(p=0.2)"
