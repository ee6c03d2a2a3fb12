"""PerformerMixer: exact against a dense reference with the same features, approximate against softmax attention."""
from __future__ import annotations

import copy
import math

import pytest
import torch
from _mixer_checks import (
    DTYPE,
    check_bad_inputs,
    check_batch_none,
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

from gnnlab.nn.mixer import GlobalMixer, MultiheadAttentionMixer, PerformerMixer

DIM, HEADS = 8, 2
HEAD_DIM = DIM // HEADS


def _mixer(seed: int = 0, num_features: int = 16, kernel: str = "softmax", **kwargs) -> PerformerMixer:
    torch.manual_seed(seed)
    mixer = PerformerMixer(DIM, HEADS, num_features=num_features, kernel=kernel, seed=seed, **kwargs).to(DTYPE)
    randomize(mixer, seed)
    return mixer


def _linear(x, lin):
    out = x @ lin.weight.detach().T
    return out if lin.bias is None else out + lin.bias.detach()


def _log_phi(x, projection):
    """Log of the softmax-kernel features of ``x`` ``(N, H, d)``, straight from the definition."""
    x = x * HEAD_DIM**-0.25
    return x @ projection.T - x.pow(2).sum(-1, keepdim=True) / 2 - 0.5 * math.log(projection.size(0))


def _dense_reference(mixer: PerformerMixer, x, batch):
    """``(phi(Q) phi(K)^T ⊙ same_graph) V`` normalised by its row sums, as dense ``(H, N, N)`` matrices.

    For the softmax kernel the kernel matrix is formed in log space, ``log A_ij = logsumexp_r
    (log phi(q_i)_r + log phi(k_j)_r)``, so that the reference stays exact where the features
    themselves would underflow.
    """
    n = x.size(0)
    q, k, v = (t.reshape(n, HEADS, HEAD_DIM) for t in _linear(x, mixer.in_proj).split(DIM, dim=1))
    same_graph = batch[:, None] == batch[None, :]
    if mixer.kernel == "softmax":
        log_a = torch.logsumexp(_log_phi(q, mixer.projection)[:, None] + _log_phi(k, mixer.projection)[None], -1)
        a = torch.softmax(log_a.permute(2, 0, 1).masked_fill(~same_graph, -math.inf), dim=-1)  # (H, N, N)
    else:
        m = mixer.projection.size(0)
        pq, pk = ((torch.relu(t * HEAD_DIM**-0.25 @ mixer.projection.T) + 1e-3) / math.sqrt(m) for t in (q, k))
        a = torch.einsum("ihm,jhm->hij", pq, pk) * same_graph  # (H, N, N)
        a = a / a.sum(-1, keepdim=True)
    out = a @ v.transpose(0, 1)  # (H, N, d)
    return _linear(out.transpose(0, 1).reshape(n, DIM), mixer.out_proj)


@pytest.mark.parametrize("kernel", ["softmax", "relu"])
@pytest.mark.parametrize("seed", range(3))
def test_matches_dense_reference(op_backend, kernel, seed):
    x, batch = random_batch([6, 1, 10, 3], DIM, seed)
    mixer = _mixer(seed, kernel=kernel)
    assert_close(mixer(x, batch), _dense_reference(mixer, x, batch))
    single = torch.zeros(x.size(0), dtype=torch.long)
    assert_close(mixer(x), _dense_reference(mixer, x, single))


@pytest.mark.parametrize("kernel", ["softmax", "relu"])
def test_batched_equals_each_graph_alone(op_backend, kernel):
    sizes = [3, 1, 9, 5, 40]
    x, batch = random_batch(sizes, DIM, seed=1)
    mixer = _mixer(1, kernel=kernel)
    out = mixer(x, batch)
    ptr = ptr_of(batch, len(sizes))
    for start, end in zip(ptr[:-1], ptr[1:]):
        for alone_batch in (None, torch.zeros(end - start, dtype=torch.long)):
            # Exact up to rounding: the per-graph sums see the same terms with or without the others.
            assert_close(out[start:end], mixer(x[start:end], alone_batch), rtol=1e-12, atol=1e-12)


def test_softmax_kernel_approaches_softmax_attention():
    x, batch = random_batch([12, 20, 6], DIM, seed=0, scale=0.5)
    errors = []
    for num_features in (16, 256, 4096):
        per_seed = []
        for seed in range(5):
            torch.manual_seed(seed)
            performer = PerformerMixer(DIM, HEADS, num_features=num_features, seed=seed).to(DTYPE)
            exact = MultiheadAttentionMixer(DIM, HEADS).to(DTYPE)
            exact.load_state_dict(performer.state_dict(), strict=False)
            expected = exact(x, batch)
            # Relative to the spread of the exact output (its mean passes through both unchanged).
            spread = (expected - expected.mean(0)).norm()
            per_seed.append(((performer(x, batch) - expected).norm() / spread).item())
        errors.append(sum(per_seed) / len(per_seed))
    assert errors[0] > errors[1] > errors[2], errors
    assert errors[2] < 0.06, errors


def test_contract():
    for kernel in ("softmax", "relu"):
        mixer = _mixer(4, kernel=kernel)
        assert isinstance(mixer, GlobalMixer) and mixer.dim == DIM
        check_shape_and_finite(mixer)
        check_permutation_within_graphs(mixer)
        check_graph_order(mixer)
        check_graph_isolation(mixer)
        check_batch_none(mixer)
        check_empty_graph_ids(mixer)
        check_padding_invariance(mixer, large=200)


@pytest.mark.parametrize("kernel", ["softmax", "relu"])
def test_gradients(op_backend, kernel):
    check_gradients(_mixer(6, kernel=kernel))


def test_gradients_match_dense_reference(op_backend):
    x, batch = random_batch([5, 7, 2], DIM, seed=7)
    mixer = _mixer(7)
    reference = copy.deepcopy(mixer)
    x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    mixer(x1, batch).pow(2).sum().backward()
    # The reference reads detached weights, so compare the gradient with respect to the input.
    _dense_reference(reference, x2, batch).pow(2).sum().backward()
    assert_close(x1.grad, x2.grad)


def test_shifts_keep_far_off_features_exact():
    # Large key and query offsets put every feature near exp(-900), far below the float64 range;
    # the per-query and per-graph shifts bring them back without changing the result.
    x, batch = random_batch([6, 10], DIM, seed=8)
    mixer = _mixer(8)
    with torch.no_grad():
        mixer.in_proj.bias[: 2 * DIM] += 30.0  # queries and keys
    q_and_k = _linear(x, mixer.in_proj)[:, : 2 * DIM].reshape(-1, HEADS, HEAD_DIM)
    assert _log_phi(q_and_k, mixer.projection).max() < -750
    assert_close(mixer(x, batch), _dense_reference(mixer, x, batch))


def test_degenerate_inputs_stay_finite():
    # Inputs this large leave the features of a query and its keys without overlap; the
    # estimate is meaningless there, but forward and backward must stay finite.
    x, batch = random_batch([8, 30], DIM, seed=8, scale=40.0)
    x, mixer = x.float(), _mixer(8).float()
    x.requires_grad_(True)
    out = mixer(x, batch)
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in mixer.parameters())


def test_projection_rows_are_orthogonal_in_blocks():
    mixer = PerformerMixer(DIM, HEADS, num_features=10, seed=3)
    w = mixer.projection.double()
    assert w.shape == (10, HEAD_DIM)
    directions = w / w.norm(dim=1, keepdim=True)
    for start in range(0, 10, HEAD_DIM):
        block = directions[start : start + HEAD_DIM]
        assert_close(block @ block.T, torch.eye(block.size(0), dtype=torch.float64))
    # Row lengths are drawn, not all equal to sqrt(d).
    assert w.norm(dim=1).std() > 0.05


def test_redraw_is_seeded_and_explicit():
    a, b = PerformerMixer(DIM, HEADS, seed=11), PerformerMixer(DIM, HEADS, seed=11)
    assert torch.equal(a.projection, b.projection)
    assert not torch.equal(a.projection, PerformerMixer(DIM, HEADS, seed=12).projection)
    first = a.projection.clone()
    a.redraw_features()
    assert a.num_draws == 1 and not torch.equal(a.projection, first)
    b.redraw_features()
    assert torch.equal(a.projection, b.projection)
    # Forward passes never redraw without ``redraw``, in training or evaluation.
    x, batch = random_batch([4, 5], DIM, seed=0)
    x = x.float()
    drawn = a.projection.clone()
    a.train()
    for _ in range(3):
        a(x, batch)
    assert torch.equal(a.projection, drawn)
    a.reset_parameters()
    assert a.num_draws == 0 and torch.equal(a.projection, first)


def test_seed_from_global_generator():
    torch.manual_seed(0)
    a = PerformerMixer(DIM, HEADS)
    b = PerformerMixer(DIM, HEADS)
    torch.manual_seed(0)
    c = PerformerMixer(DIM, HEADS)
    assert a.seed != b.seed and a.seed == c.seed
    assert torch.equal(a.projection, c.projection)


def test_periodic_redraw_only_in_training():
    mixer = _mixer(9, redraw=2)
    x, batch = random_batch([4, 5], DIM, seed=0)
    mixer.eval()
    for _ in range(5):
        mixer(x, batch)
    assert mixer.num_draws == 0
    mixer.train()
    seen = []
    for _ in range(5):
        mixer(x, batch)
        seen.append(int(mixer.num_draws))
    assert seen == [0, 0, 1, 1, 2]


def test_redraw_between_forward_and_backward_keeps_the_graph():
    mixer = _mixer(10)
    x, batch = random_batch([4, 5], DIM, seed=0)
    out = mixer(x, batch)
    mixer.redraw_features()
    out.sum().backward()  # the old projection is still the one saved for backward
    assert mixer.in_proj.weight.grad is not None


def test_state_dict_round_trip():
    mixer = _mixer(11)
    mixer.redraw_features()
    restored = PerformerMixer(DIM, HEADS, num_features=16, seed=0).to(DTYPE)
    restored.load_state_dict(mixer.state_dict())
    x, batch = random_batch([4, 5], DIM, seed=0)
    assert_close(restored(x, batch), mixer(x, batch))
    assert restored.num_draws == 1


def test_default_num_features():
    assert PerformerMixer(64, 4).num_features == int(16 * math.log(16))
    assert PerformerMixer(8, 4).num_features == 2


def test_empty_input():
    out = _mixer(13)(torch.empty(0, DIM, dtype=DTYPE), torch.empty(0, dtype=torch.long))
    assert out.shape == (0, DIM)


def test_bad_inputs_raise():
    check_bad_inputs(_mixer(14))
    with pytest.raises(ValueError, match="not divisible by num_heads=3"):
        PerformerMixer(8, 3)
    with pytest.raises(ValueError, match="kernel"):
        PerformerMixer(8, 2, kernel="cosine")
    with pytest.raises(ValueError, match="num_features"):
        PerformerMixer(8, 2, num_features=0)
    with pytest.raises(ValueError, match="redraw"):
        PerformerMixer(8, 2, redraw=0)


def test_repr():
    mixer = PerformerMixer(8, 2, num_features=32, kernel="relu")
    assert repr(mixer) == "PerformerMixer(8, num_heads=2, num_features=32, kernel='relu')"
