"""MultiheadAttentionMixer against torch.nn.MultiheadAttention and a block-diagonal dense reference."""
from __future__ import annotations

import math

import pytest
import torch
from _mixer_checks import (
    DTYPE,
    check_bad_inputs,
    check_batch_none,
    check_batched_equals_each_alone,
    check_empty_graph_ids,
    check_gradients,
    check_graph_isolation,
    check_graph_order,
    check_padding_invariance,
    check_permutation_within_graphs,
    check_shape_and_finite,
    ptr_of,
    random_batch,
    randomize,
)
from torch.testing import assert_close
from torch_geometric.utils import to_dense_batch

from gnnlab.nn.mixer import GlobalMixer, MultiheadAttentionMixer

DIM, HEADS = 12, 3


def _mixer(seed: int = 0, bias: bool = True, **kwargs) -> MultiheadAttentionMixer:
    torch.manual_seed(seed)
    mixer = MultiheadAttentionMixer(DIM, HEADS, bias=bias, **kwargs).to(DTYPE)
    randomize(mixer, seed)
    return mixer


def _torch_mha(mixer: MultiheadAttentionMixer) -> torch.nn.MultiheadAttention:
    bias = mixer.in_proj.bias is not None
    mha = torch.nn.MultiheadAttention(DIM, HEADS, bias=bias, batch_first=True).to(DTYPE)
    with torch.no_grad():
        mha.in_proj_weight.copy_(mixer.in_proj.weight)
        mha.out_proj.weight.copy_(mixer.out_proj.weight)
        if bias:
            mha.in_proj_bias.copy_(mixer.in_proj.bias)
            mha.out_proj.bias.copy_(mixer.out_proj.bias)
    return mha.eval()


def _block_attention(mixer: MultiheadAttentionMixer, x, batch):
    """Softmax attention over all N nodes with the scores of node pairs in different graphs masked out."""
    n, h, d = x.size(0), HEADS, DIM // HEADS
    w_in, w_out = mixer.in_proj.weight.detach(), mixer.out_proj.weight.detach()
    qkv = x @ w_in.T
    if mixer.in_proj.bias is not None:
        qkv = qkv + mixer.in_proj.bias.detach()
    q, k, v = (t.reshape(n, h, d).transpose(0, 1) for t in qkv.split(DIM, dim=1))  # (H, N, d)
    scores = q @ k.transpose(1, 2) / math.sqrt(d)  # (H, N, N)
    same_graph = batch[:, None] == batch[None, :]
    scores = scores.masked_fill(~same_graph, -math.inf)
    out = (torch.softmax(scores, dim=-1) @ v).transpose(0, 1).reshape(n, DIM)
    out = out @ w_out.T
    if mixer.out_proj.bias is not None:
        out = out + mixer.out_proj.bias.detach()
    return out


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("seed", range(3))
def test_matches_torch_multihead_attention_per_graph(bias, seed):
    sizes = [5, 1, 9, 3]
    x, batch = random_batch(sizes, DIM, seed)
    mixer = _mixer(seed, bias=bias).eval()
    mha = _torch_mha(mixer)
    out = mixer(x, batch)
    ptr = ptr_of(batch, len(sizes))
    for start, end in zip(ptr[:-1], ptr[1:]):
        xg = x[start:end].unsqueeze(0)
        expected, _ = mha(xg, xg, xg, need_weights=False)
        assert_close(out[start:end], expected[0])


def test_matches_torch_multihead_attention_with_key_padding_mask():
    x, batch = random_batch([6, 2, 11], DIM, seed=3)
    mixer = _mixer(3).eval()
    dense, mask = to_dense_batch(x, batch)
    expected, _ = _torch_mha(mixer)(dense, dense, dense, key_padding_mask=~mask, need_weights=False)
    assert_close(mixer(x, batch), expected[mask])


@pytest.mark.parametrize("seed", range(3))
def test_matches_block_diagonal_reference(seed):
    x, batch = random_batch([7, 3, 1, 12], DIM, seed, scale=2.0)
    mixer = _mixer(seed)
    assert_close(mixer(x, batch), _block_attention(mixer, x, batch))
    assert_close(mixer(x), _block_attention(mixer, x, torch.zeros(x.size(0), dtype=torch.long)))


def test_contract():
    mixer = _mixer(4)
    assert isinstance(mixer, GlobalMixer) and mixer.dim == DIM
    check_shape_and_finite(mixer)
    check_permutation_within_graphs(mixer)
    check_graph_order(mixer)
    check_graph_isolation(mixer)
    check_batched_equals_each_alone(mixer)
    check_batch_none(mixer)
    check_empty_graph_ids(mixer)


@pytest.mark.parametrize("large", [30, 200])
def test_padding_invariance(large):
    check_padding_invariance(_mixer(5), large=large)


def test_gradients():
    check_gradients(_mixer(6))


def test_no_gradient_leaks_through_padding():
    # The small graph's output must not depend on the large graph, in values or in gradients.
    x, batch = random_batch([3, 40], DIM, seed=7)
    x.requires_grad_(True)
    _mixer(7)(x, batch)[:3].sum().backward()
    assert x.grad[3:].abs().max() == 0
    assert torch.isfinite(x.grad).all() and x.grad[:3].abs().sum() > 0


def test_attention_dropout_only_in_training():
    x, batch = random_batch([5, 8], DIM, seed=8)
    mixer = _mixer(8, dropout=0.5)
    reference = _block_attention(mixer, x, batch)
    assert_close(mixer.eval()(x, batch), reference)
    torch.manual_seed(0)
    dropped = mixer.train()(x, batch)
    assert torch.isfinite(dropped).all() and not torch.allclose(dropped, reference)
    # On the attention weights, not the output: no output entry is zeroed.
    assert (dropped != 0).all()


def test_training_attention_on_the_cpu_matches_the_reference_without_drops():
    """The CPU training path (matmul / softmax / gnnlab dropout / matmul) with a rate that drops nothing
    (below 2^-17) against the block-diagonal reference, on graphs of different sizes and an empty graph id."""
    x, batch = random_batch([5, 1, 8], DIM, seed=9)
    batch = torch.where(batch >= 1, batch + 1, batch)  # graph id 1 has no node
    mixer = _mixer(9, dropout=1e-7).train()
    out = mixer(x, batch)
    assert_close(out, _block_attention(mixer, x, batch))
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in mixer.parameters())


def test_attention_dropout_is_unbiased():
    """The mean over many dropout masks approaches the attention without dropout."""
    x, batch = random_batch([4, 6], DIM, seed=10)
    mixer = _mixer(10, dropout=0.5)
    reference = mixer.eval()(x, batch)
    mixer.train()
    torch.manual_seed(1)
    with torch.no_grad():
        mean = torch.stack([mixer(x, batch) for _ in range(4000)]).mean(0)
    assert_close(mean, reference, rtol=0, atol=0.05 * reference.abs().max().item())
    assert not torch.allclose(mixer(x, batch), reference)


def test_default_initialisation_matches_torch():
    mixer = MultiheadAttentionMixer(DIM, HEADS)
    assert mixer.in_proj.bias.abs().max() == 0 and mixer.out_proj.bias.abs().max() == 0
    # Xavier-uniform bound of a (3D, D) matrix.
    assert mixer.in_proj.weight.abs().max() <= math.sqrt(6.0 / (DIM + 3 * DIM))
    assert MultiheadAttentionMixer(DIM, HEADS, bias=False).in_proj.bias is None


def test_empty_input():
    mixer = _mixer(9)
    out = mixer(torch.empty(0, DIM, dtype=DTYPE), torch.empty(0, dtype=torch.long))
    assert out.shape == (0, DIM)


def test_bad_inputs_raise():
    check_bad_inputs(_mixer(10))
    with pytest.raises(ValueError, match="not divisible by num_heads=5"):
        MultiheadAttentionMixer(12, 5)
    with pytest.raises(ValueError, match="num_heads"):
        MultiheadAttentionMixer(12, 0)
    with pytest.raises(ValueError, match="dropout"):
        MultiheadAttentionMixer(12, 3, dropout=1.0)
    with pytest.raises(ValueError, match="dropout"):
        MultiheadAttentionMixer(12, 3, dropout=-0.1)


def test_repr():
    assert repr(MultiheadAttentionMixer(12, 3)) == "MultiheadAttentionMixer(12, num_heads=3)"
