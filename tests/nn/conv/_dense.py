"""Dense-adjacency reference implementations for the convolution tests.

Everything here is plain torch on ``[N, N]`` matrices with ``A[i, j]`` = number of edges ``j -> i``
(``edge_index[0]`` = source ``j``, ``edge_index[1]`` = target ``i``). Layers are only read for their
weights; none of their code runs here.
"""
from __future__ import annotations

import torch
from torch import Tensor

DTYPE = torch.float64


def random_graph(
    num_nodes: int,
    num_edges: int,
    *,
    generator: torch.Generator,
    unique: bool = False,
    num_isolated: int = 1,
    num_self_loops: int = 1,
) -> Tensor:
    """A random ``[2, E]`` edge index on ``num_nodes`` nodes under a random relabelling.

    ``num_isolated`` nodes touch no edge. Unless ``unique``, edges are drawn with replacement (so
    duplicates are likely) and ``num_self_loops`` extra self loops are appended, one of them twice.
    With ``unique`` every (source, target) pair occurs at most once, self loops included.
    """
    active = max(num_nodes - num_isolated, 1)
    if unique:
        pairs = torch.randperm(active * active, generator=generator)[:num_edges]
        src, dst = pairs // active, pairs % active
    else:
        src = torch.randint(active, (num_edges,), generator=generator)
        dst = torch.randint(active, (num_edges,), generator=generator)
        loops = torch.randint(active, (num_self_loops,), generator=generator)
        if num_self_loops > 0:
            loops = torch.cat([loops, loops[:1]])
        src, dst = torch.cat([src, loops]), torch.cat([dst, loops])
    relabel = torch.randperm(num_nodes, generator=generator)
    edge_index = torch.stack([relabel[src], relabel[dst]])
    # Shuffle the columns so that the self loops are not all at the end.
    return edge_index[:, torch.randperm(edge_index.size(1), generator=generator)]


def adjacency(edge_index: Tensor, num_nodes: int) -> Tensor:
    """``A[i, j]`` = number of edges ``j -> i``, as a float64 matrix."""
    a = torch.zeros(num_nodes, num_nodes, dtype=DTYPE)
    ones = torch.ones(edge_index.size(1), dtype=DTYPE)
    a.index_put_((edge_index[1], edge_index[0]), ones, accumulate=True)
    return a


def dense_edge_features(edge_index: Tensor, edge_attr: Tensor, num_nodes: int) -> Tensor:
    """``F[i, j]`` = feature of the edge ``j -> i`` (zero where there is none); edges must be unique."""
    a = adjacency(edge_index, num_nodes)
    assert a.max() <= 1, "dense edge features need a graph without duplicate edges"
    f = torch.zeros(num_nodes, num_nodes, edge_attr.size(1), dtype=edge_attr.dtype)
    f[edge_index[1], edge_index[0]] = edge_attr
    return f


def linear(x: Tensor, lin: torch.nn.Module) -> Tensor:
    """``x W^T + b`` from a layer's ``weight`` (and ``bias``, if it has one)."""
    out = x @ lin.weight.detach().T
    if getattr(lin, "bias", None) is not None:
        out = out + lin.bias.detach()
    return out


def apply_batch_norm(z: Tensor, bn: torch.nn.BatchNorm1d, training: bool) -> Tensor:
    """Batch norm over rows: batch statistics (biased variance) if ``training``, else running ones."""
    if training:
        mean, var = z.mean(0), z.var(0, unbiased=False)
    else:
        mean, var = bn.running_mean, bn.running_var
    return (z - mean) / torch.sqrt(var + bn.eps) * bn.weight.detach() + bn.bias.detach()


def gcn(x: Tensor, a: Tensor, weight: Tensor, bias: Tensor | None, normalize: bool, self_loops: bool) -> Tensor:
    """``norm(A) X W^T + b`` where self loops set the diagonal of ``A`` to one."""
    a = a.clone()
    if self_loops:
        a.fill_diagonal_(1.0)
    if normalize:
        deg = a.sum(1)
        dinv = torch.where(deg > 0, deg.pow(-0.5), torch.zeros_like(deg))
        a = dinv[:, None] * a * dinv[None, :]
    out = a @ (x @ weight.T)
    return out if bias is None else out + bias


def gin_aggregate(x: Tensor, a: Tensor, eps: float) -> Tensor:
    """``(1 + eps) x_i + sum_j A[i, j] x_j``."""
    return (1.0 + eps) * x + a @ x


def gine_aggregate(x: Tensor, a: Tensor, edge_feats: Tensor, eps: float) -> Tensor:
    """``(1 + eps) x_i + sum_{j -> i} ReLU(x_j + e_ji)`` with dense edge features ``[N, N, F]``."""
    messages = torch.relu(x[None, :, :] + edge_feats) * a[:, :, None]
    return (1.0 + eps) * x + messages.sum(1)


def gat(
    x: Tensor,
    mask: Tensor,
    weight: Tensor,
    att_src: Tensor,
    att_dst: Tensor,
    heads: int,
    concat: bool,
    negative_slope: float,
    bias: Tensor | None,
    edge_feats: Tensor | None = None,
    edge_weight: Tensor | None = None,
    att_edge: Tensor | None = None,
) -> Tensor:
    """Multi-head graph attention; ``mask[i, j]`` is the multiplicity of edge ``j -> i``.

    ``weight`` is ``[H * C, F_in]`` with head ``k`` in rows ``k*C:(k+1)*C``; ``att_*`` are ``[H, C]``.
    A row of ``mask`` with no entries yields zero before the bias.
    """
    n = x.size(0)
    xw = (x @ weight.T).view(n, heads, -1)
    s_src = (xw * att_src).sum(-1)
    s_dst = (xw * att_dst).sum(-1)
    score = s_dst[:, None, :] + s_src[None, :, :]
    if edge_feats is not None:
        ew = (edge_feats @ edge_weight.T).view(n, n, heads, -1)
        score = score + (ew * att_edge).sum(-1)
    score = torch.nn.functional.leaky_relu(score, negative_slope)
    present = (mask > 0)[:, :, None]
    shift = torch.where(present, score, torch.full_like(score, -torch.inf)).amax(1, keepdim=True)
    shift = torch.where(torch.isfinite(shift), shift, torch.zeros_like(shift))
    w = torch.exp(score - shift) * mask[:, :, None]
    total = w.sum(1, keepdim=True)
    alpha = torch.where(total > 0, w / torch.where(total > 0, total, torch.ones_like(total)), torch.zeros_like(w))
    out = torch.einsum("ijh,jhc->ihc", alpha, xw)
    out = out.reshape(n, -1) if concat else out.mean(1)
    return out if bias is None else out + bias


def gated_gcn(
    x: Tensor,
    edge_index: Tensor,
    edge_attr: Tensor,
    conv: torch.nn.Module,
    *,
    training: bool,
    batch_norm: bool,
    residual: bool,
    gate_eps: float = 1e-6,
) -> tuple[Tensor, Tensor]:
    """GatedGCN (Benchmarking-GNNs form, D on the target, E on the source) with ReLU and no dropout.

    Returns ``(h, e)`` with ``e`` in the column order of ``edge_index``; edges must be unique.
    """
    n = x.size(0)
    a = adjacency(edge_index, n)
    ef = dense_edge_features(edge_index, edge_attr, n)
    ah, bh, dh, eh = (linear(x, lin) for lin in (conv.A, conv.B, conv.D, conv.E))
    e_hat = linear(ef, conv.C) + dh[:, None, :] + eh[None, :, :]
    gate = torch.sigmoid(e_hat) * a[:, :, None]
    h = ah + (gate * bh[None, :, :]).sum(1) / (gate.sum(1) + gate_eps)
    e = e_hat[edge_index[1], edge_index[0]]
    if batch_norm:
        h = apply_batch_norm(h, conv.bn_node, training)
        e = apply_batch_norm(e, conv.bn_edge, training)
    h, e = torch.relu(h), torch.relu(e)
    if residual:
        h, e = x + h, edge_attr + e
    return h, e


def permute_graph(perm: Tensor, x: Tensor, edge_index: Tensor) -> tuple[Tensor, Tensor]:
    """Relabel nodes so that new node ``k`` is old node ``perm[k]``; edge order is kept."""
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(perm.numel())
    return x[perm], inverse[edge_index]
