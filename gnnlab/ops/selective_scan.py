"""Mamba's selective scan (``selective_scan_fn`` of ``mamba_ssm``), on any device, with packed sequences.

``selective_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)`` takes the
arguments, shapes and semantics of ``mamba_ssm.ops.selective_scan_interface.selective_scan_fn``, so
code written for one runs on the other; see :func:`gnnlab.ops._reference.selective_scan` for the
recurrence. ``cu_seqlens`` adds packed sequences: graphs of different sizes laid end to end along
``L`` (batch 1), the state restarting at each offset, instead of padding every graph to the largest.

Paths: with ``mamba_ssm`` installed and CUDA tensors (and no ``cu_seqlens``), its CUDA kernel;
otherwise the sequential plain-torch reference, differentiable to any order by autograd. (A compiled
CPU kernel is not part of this module yet.)
"""
from __future__ import annotations

import importlib.util

import torch
from torch import Tensor

from gnnlab.ops import _reference

__all__ = ["selective_scan"]


def _check(u, delta, A, B, C, D, z, delta_bias, cu_seqlens) -> None:
    def shape(t):
        return list(t.shape)

    if not isinstance(u, Tensor) or u.dim() != 3 or not u.is_floating_point():
        raise ValueError(f"selective_scan: u must be a floating [batch, channels, L] tensor, got "
                         f"{shape(u) if isinstance(u, Tensor) else type(u).__name__}")
    batch, dim, length = u.shape
    if delta.shape != u.shape:
        raise ValueError(f"selective_scan: delta must have u's shape {shape(u)}, got {shape(delta)}")
    if A.dim() != 2 or A.size(0) != dim:
        raise ValueError(f"selective_scan: A must be [channels={dim}, N], got {shape(A)}")
    if A.is_complex():
        raise ValueError("selective_scan: complex A is not supported (Mamba uses a real A)")
    state = A.size(1)
    for name, M in (("B", B), ("C", C)):
        if M.dim() == 2:
            ok = tuple(M.shape) == (dim, state)
        elif M.dim() == 3:
            ok = tuple(M.shape) == (batch, state, length)
        elif M.dim() == 4:
            ok = M.size(0) == batch and M.size(2) == state and M.size(3) == length and M.size(1) >= 1 and dim % M.size(1) == 0
        else:
            ok = False
        if not ok:
            raise ValueError(
                f"selective_scan: {name} must be [channels={dim}, N={state}], [batch={batch}, N={state}, L={length}] or "
                f"[batch, G, N, L] with G dividing the channels, got {shape(M)}"
            )
    for name, v in (("D", D), ("delta_bias", delta_bias)):
        if v is not None and tuple(v.shape) != (dim,):
            raise ValueError(f"selective_scan: {name} must be [channels={dim}], got {shape(v)}")
    if z is not None and z.shape != u.shape:
        raise ValueError(f"selective_scan: z must have u's shape {shape(u)}, got {shape(z)}")
    if cu_seqlens is not None:
        if batch != 1:
            raise ValueError(f"selective_scan: packed sequences (cu_seqlens) need batch 1, got batch {batch}")
        _reference.check_offsets(cu_seqlens, length, "cu_seqlens", "selective_scan")


def _mamba_ssm_available(u: Tensor) -> bool:
    return u.is_cuda and importlib.util.find_spec("mamba_ssm") is not None


def selective_scan(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    cu_seqlens: Tensor | None = None,
):
    """Selective scan with ``mamba_ssm``'s signature, plus packed sequences.

    Args:
        u, delta: ``[batch, channels, L]`` input and step sizes (before ``delta_bias``/softplus).
        A: ``[channels, N]`` real state matrix (Mamba stores ``-exp(A_log)``).
        B, C: ``[channels, N]``, ``[batch, N, L]`` or grouped ``[batch, G, N, L]``.
        D: optional ``[channels]`` skip; z: optional ``[batch, channels, L]`` gate (``out · silu(z)``).
        delta_bias: optional ``[channels]`` added to ``delta``; delta_softplus: apply softplus to it.
        return_last_state: also return the final state ``[batch, channels, N]`` (``[S, channels, N]``
            for packed input, one per sequence).
        cu_seqlens: optional ``[S + 1]`` int64 offsets along ``L`` of ``S`` packed sequences (batch 1);
            the state restarts at zero at each one.

    Returns:
        ``out`` ``[batch, channels, L]`` in ``u``'s dtype, and the last state when asked.

    Raises:
        ValueError: naming the argument whose shape, dtype or offsets do not fit.
    """
    _check(u, delta, A, B, C, D, z, delta_bias, cu_seqlens)
    if cu_seqlens is None and _mamba_ssm_available(u):
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn

        return selective_scan_fn(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)
    return _reference.selective_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, cu_seqlens)
