"""PE encoders: references in plain torch, sign/basis invariance, padding, permutation equivariance."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.testing import assert_close
from torch_geometric.data import Batch, Data

from gnnlab.nn.pe import (LapPEDeepSet, LapPELinear, LapPETransformer, MLPPEEncoder, SignNetEncoder, SPEEncoder,
                          random_sign_flip)



@pytest.fixture(autouse=True)
def _float64():
    """Invariance checks at float64 precision; the previous default is restored afterwards."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def cycle(n: int) -> torch.Tensor:
    src = torch.arange(n)
    dst = (src + 1) % n
    return torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], dim=1)


def eigenpairs(edge_index: torch.Tensor, n: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain numpy: the k smallest eigenpairs of I - D^-1/2 A D^-1/2, NaN-padded to k."""
    a = np.zeros((n, n))
    a[edge_index[1].numpy(), edge_index[0].numpy()] = 1.0
    deg = a.sum(1)
    inv = np.where(deg > 0, deg ** -0.5, 0.0)
    lap = np.eye(n) - inv[:, None] * a * inv[None, :]
    lam, vec = np.linalg.eigh(lap)
    m = min(k, n)
    vecs = np.full((n, k), np.nan)
    vals = np.full((n, k), np.nan)
    vecs[:, :m] = vec[:, :m]
    vals[:, :m] = lam[None, :m]
    return torch.from_numpy(vecs), torch.from_numpy(vals)


def graph(edge_index, n, k, attr="lappe", **extra):
    vec, val = eigenpairs(edge_index, n, k)
    return Data(edge_index=edge_index, num_nodes=n, **{f"{attr}_vec": vec, f"{attr}_val": val}, **extra)


def permuted(data: Data, perm: torch.Tensor, attrs) -> Data:
    """Relabel node ``perm[i]`` as ``i``."""
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(perm.numel())
    out = Data(edge_index=inv[data.edge_index], num_nodes=data.num_nodes)
    for name in attrs:
        out[name] = data[name][perm]
    return out


def random_graph(n: int, p: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    upper = torch.triu(torch.rand(n, n, generator=g) < p, diagonal=1)
    src, dst = upper.nonzero().t()
    return torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], dim=1)


# ---------------------------------------------------------------- LapPE


@pytest.mark.parametrize("cls", [LapPELinear, LapPEDeepSet, LapPETransformer])
def test_lappe_padding_does_not_change_outputs(cls):
    torch.manual_seed(0)
    ei = cycle(5)
    small, big = graph(ei, 5, 5), graph(ei, 5, 9)  # the second is padded with 4 NaN pairs
    assert torch.isnan(big.lappe_vec).any()
    enc_small = cls(5, 8).eval()
    enc_big = cls(9, 8).eval()
    state = enc_small.state_dict()
    if cls is LapPELinear:
        # Linear: the padded columns' weights are irrelevant; copy the valid ones.
        w = torch.randn(8, 18)
        w[:, :5], w[:, 9:14] = state["lin.weight"][:, :5], state["lin.weight"][:, 5:]
        state = {"lin.weight": w, "lin.bias": state["lin.bias"]}
    enc_big.load_state_dict(state)
    assert torch.isfinite(enc_big(big)).all()
    assert_close(enc_big(big), enc_small(small))


@pytest.mark.parametrize("post_layers", [0, 2])
def test_lappe_deepset_matches_plain_torch(post_layers):
    """GraphGPS's DeepSet: Σ_j ReLU(W2 ReLU(W1 t_ij)) over the real tokens, then the optional post-MLP."""
    torch.manual_seed(1)
    ei = random_graph(9, 0.4, 1)
    data = graph(ei, 9, 12)  # 3 padded pairs
    enc = LapPEDeepSet(12, 6, hidden_channels=10, num_layers=2, post_layers=post_layers).eval()
    l1, l2 = enc.phi[0][0], enc.phi[0][2]
    assert (l1.in_features, l1.out_features, l2.out_features) == (2, 10, 6)
    expect = torch.zeros(9, 6)
    for i in range(9):
        acc = torch.zeros(6)
        for j in range(12):
            v, lam = data.lappe_vec[i, j], data.lappe_val[i, j]
            if math.isnan(float(v)):
                continue
            acc = acc + torch.relu(l2(torch.relu(l1(torch.stack([v, lam])))))
        if post_layers:
            acc = torch.relu(enc.rho[0][2](torch.relu(enc.rho[0][0](acc))))
        expect[i] = acc
    assert_close(enc(data), expect)


def test_lappe_linear_matches_plain_torch():
    """Benchmarking-GNNs' linear LapPE: W [v_1..v_k, λ_1..λ_k] + b, padding read as 0 (eigenvectors alone
    with use_eigvals=False)."""
    torch.manual_seed(4)
    data = graph(random_graph(7, 0.5, 4), 7, 9)  # 3 padded pairs
    vec, val = data.lappe_vec.nan_to_num(0.0), data.lappe_val.nan_to_num(0.0)
    enc = LapPELinear(9, 5).eval()
    assert_close(enc(data), torch.cat([vec, val], 1) @ enc.lin.weight.t() + enc.lin.bias)
    enc = LapPELinear(9, 5, use_eigvals=False).eval()
    assert enc.lin.in_features == 9
    assert_close(enc(data), vec @ enc.lin.weight.t() + enc.lin.bias)


def test_lappe_deepset_is_nonlinear_before_the_sum():
    """One linear map per token still gets a ReLU before the sum (otherwise the sum would collapse the
    tokens to Σ_j t_ij): swapping the eigenvector values between two tokens of a node changes the output."""
    torch.manual_seed(3)
    enc = LapPEDeepSet(2, 8, num_layers=1, sign_flip=False).eval()
    a = Data(num_nodes=1, lappe_vec=torch.tensor([[0.9, -0.2]]), lappe_val=torch.tensor([[0.1, 1.5]]))
    b = Data(num_nodes=1, lappe_vec=torch.tensor([[-0.2, 0.9]]), lappe_val=torch.tensor([[0.1, 1.5]]))
    assert not torch.allclose(enc(a), enc(b))


def test_sign_flips_only_in_training_and_per_graph():
    torch.manual_seed(2)
    batch = Batch.from_data_list([graph(cycle(6), 6, 4), graph(cycle(7), 7, 4)])
    enc = LapPELinear(4, 8)
    enc.eval()
    assert_close(enc(batch), enc(batch))
    vec = torch.rand(batch.num_nodes, 4) + 0.5  # no zeros, so the ratio is the sign
    ratio = random_sign_flip(vec, batch.batch) / vec
    assert set(ratio.abs().round().unique().tolist()) == {1.0}
    for g in range(2):  # one sign per (graph, eigenvector)
        assert (ratio[batch.batch == g] == ratio[batch.batch == g][0]).all()
    # Training mode changes the input signs at random: across a few draws the output changes.
    enc.train()
    outs = [enc(batch) for _ in range(6)]
    assert any(not torch.allclose(outs[0], o) for o in outs[1:])


@pytest.mark.parametrize("cls", [LapPELinear, LapPEDeepSet, LapPETransformer])
def test_missing_attribute_names_the_transform(cls):
    data = Data(edge_index=cycle(4), num_nodes=4)
    with pytest.raises(ValueError, match=f"{cls.__name__}: .*lappe_vec.*LaplacianEigenpairs"):
        cls(4, 8)(data)
    with pytest.raises(ValueError, match="k of the encoder"):
        cls(3, 8)(graph(cycle(4), 4, 4))


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: LapPELinear(0, 8), "LapPELinear: k and out_channels must be >= 1"),
        (lambda: LapPEDeepSet(4, 8, num_layers=0), "LapPEDeepSet: need num_layers >= 1"),
        (lambda: LapPETransformer(4, 8, hidden_channels=10, num_heads=4), "not divisible by num_heads"),
    ],
)
def test_lappe_bad_arguments_are_named(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# ---------------------------------------------------------------- SignNet / SPE invariances


def _rotate_eigenspaces(vec: torch.Tensor, val: torch.Tensor, seed: int) -> torch.Tensor:
    """Random orthogonal rotation inside every repeated eigenspace, and random signs."""
    g = torch.Generator().manual_seed(seed)
    lam = val[0]
    out = vec.clone()
    j = 0
    k = lam.numel()
    while j < k:
        e = j
        while e + 1 < k and abs(float(lam[e + 1] - lam[j])) < 1e-9:
            e += 1
        d = e - j + 1
        q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=vec.dtype))
        out[:, j : e + 1] = vec[:, j : e + 1] @ q
        j = e + 1
    return out


def test_cycle_has_repeated_eigenvalues():
    _, val = eigenpairs(cycle(8), 8, 8)
    lam = val[0]
    assert (lam[1:] - lam[:-1]).abs().min() < 1e-9


@pytest.mark.parametrize("cls", [SPEEncoder])
def test_spe_invariant_to_signs_and_rotations_in_eigenspaces(cls):
    torch.manual_seed(3)
    data = graph(cycle(8), 8, 8, attr="spe")
    enc = cls(8, 6, attr="spe").eval()
    ref = enc(data)
    for seed in range(3):
        other = data.clone()
        other.spe_vec = _rotate_eigenspaces(data.spe_vec, data.spe_val, seed)
        assert not torch.allclose(other.spe_vec, data.spe_vec)
        assert_close(enc(other), ref)


def test_spe_weights_equal_dense_v_phi_vt():
    torch.manual_seed(4)
    n, k = 10, 6
    ei = random_graph(n, 0.4, 4)
    data = graph(ei, n, k, attr="spe")
    enc = SPEEncoder(k, 5, attr="spe", num_channels=3).eval()
    diag, edge = enc.spectral_weights(data)
    vec, lam = data.spe_vec, data.spe_val[0]
    phi = enc.phi(lam.unsqueeze(-1))  # (k, m)
    for ell in range(3):
        w = vec @ torch.diag(phi[:, ell]) @ vec.t()
        assert_close(diag[:, ell], torch.diagonal(w))
        assert_close(edge[:, ell], w[ei[0], ei[1]])


def test_signnet_invariant_to_eigenvector_signs():
    torch.manual_seed(5)
    data = graph(random_graph(9, 0.5, 5), 9, 5, attr="lappe")
    enc = SignNetEncoder(5, 6).eval()
    ref = enc(data)
    signs = torch.tensor([1.0, -1.0, -1.0, 1.0, -1.0])
    other = data.clone()
    other.lappe_vec = data.lappe_vec * signs
    assert_close(enc(other), ref)


@pytest.mark.parametrize(
    "make",
    [
        lambda: LapPEDeepSet(6, 5),
        lambda: LapPELinear(6, 5),
        lambda: LapPETransformer(6, 6),
        lambda: SignNetEncoder(6, 5),
        lambda: SPEEncoder(6, 5),
        lambda: MLPPEEncoder(6, 5, attr="lappe_vec"),
    ],
)
def test_node_permutation_equivariance(make):
    torch.manual_seed(6)
    n = 11
    data = graph(random_graph(n, 0.35, 6), n, 6)
    enc = make().eval()
    perm = torch.randperm(n)
    other = permuted(data, perm, ["lappe_vec", "lappe_val"])
    assert_close(enc(other), enc(data)[perm])


def test_batched_equals_separate():
    torch.manual_seed(7)
    graphs = [graph(cycle(5), 5, 6), graph(random_graph(9, 0.4, 7), 9, 6), graph(cycle(3), 3, 6)]
    batch = Batch.from_data_list(graphs)
    for enc in (SignNetEncoder(6, 4).eval(), SPEEncoder(6, 4).eval(), LapPETransformer(6, 4).eval(),
                LapPEDeepSet(6, 4).eval()):
        assert_close(enc(batch), torch.cat([enc(g) for g in graphs]))


# ---------------------------------------------------------------- MLP (RWSE / FastRP)


def test_mlp_pe_encoder_matches_batch_norm_and_linear():
    torch.manual_seed(8)
    data = Data(num_nodes=20, rwse=torch.rand(20, 7))
    enc = MLPPEEncoder(7, 4, num_layers=2, hidden_channels=9)
    out = enc(data)  # training mode: batch statistics
    x = data.rwse
    z = (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + enc.norm.eps)
    z = z * enc.norm.weight + enc.norm.bias
    assert_close(out, enc.mlp[2](torch.relu(enc.mlp[0](z))))
    with pytest.raises(ValueError, match="width 7, expected 5"):
        MLPPEEncoder(5, 4)(data)


def test_spectral_edge_weights_gradients_match_the_dense_einsum():
    from gnnlab.nn.pe.spe import spectral_edge_weights

    torch.manual_seed(9)
    n, k, m = 9, 5, 3
    ei = random_graph(n, 0.5, 9)
    vec = torch.randn(n, k, requires_grad=True)
    filt = torch.randn(n, k, m, requires_grad=True)
    diag, edge = spectral_edge_weights(vec, filt, ei)
    ref_edge = torch.einsum("ek,ekm->em", vec[ei[0]] * vec[ei[1]], filt[ei[1]])
    assert_close(edge, ref_edge)
    g = torch.randn_like(edge)
    assert_close(torch.autograd.grad(edge, (vec, filt), g), torch.autograd.grad(ref_edge, (vec, filt), g))
    assert torch.autograd.gradcheck(lambda v, f: spectral_edge_weights(v, f, ei)[1], (vec, filt))
