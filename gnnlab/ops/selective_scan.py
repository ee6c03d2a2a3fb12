"""Mamba's selective scan (``selective_scan_fn`` of ``mamba_ssm``), on any device, with packed sequences.

``selective_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)`` takes the
arguments, shapes and semantics of ``mamba_ssm.ops.selective_scan_interface.selective_scan_fn``, so
code written for one runs on the other; see :func:`gnnlab.ops._reference.selective_scan` for the
recurrence. ``cu_seqlens`` adds packed sequences: graphs of different sizes laid end to end along
``L`` (batch 1), the state restarting at each offset, instead of padding every graph to the largest.

Paths: with ``mamba_ssm`` installed and CUDA tensors (and no ``cu_seqlens``), its CUDA kernel; with
``gnnlab._C`` built, the compiled kernel (``torch.ops.gnnlab.selective_scan_fwd/bwd``) on the CPU and,
in a CUDA build, on the GPU; otherwise, and for the backend ``"torch"``, the sequential plain-torch
reference. The compiled CPU kernel runs in parallel over batch × channels, keeps a channel's state in
registers and is vectorised over the state size N, with its own branch-free float32 ``exp`` (under
2 ulp; float64 uses the C library's). Its backward is a reverse scan that recomputes one chunk of 64
steps at a time from state checkpoints saved by the forward, reusing that chunk's transitions
``exp(Δ·A)``, so the memory kept for the backward is the inputs plus one state per chunk
(O(batch·channels·L)), never a ``[batch, channels, L, N]`` tensor. The CUDA kernels (one thread per
batch and channel, the same per-step code) are compiled for sm_80/sm_90 but have not been run on a GPU.
The compiled path gives first-order gradients; a second backward through it raises a clear error
(the reference path is differentiable to any order).

Speed (``benchmarks/selective_scan.py``, results in ``results/selective_scan_cpu*.txt``): batch 8,
96 channels, N = 16, L = 512, float32, forward + backward: 10 ms on 2 threads (17 ms on one), 2.9×
(one thread: 2.6×) the time of one ``torch.exp`` over the batch·channels·L·N transitions, 15× faster
than mambapy's parallel scan, which keeps 20× more memory for the backward, and over 300× faster
than the reference.

:func:`selective_scan_carry` scans one piece of a longer sequence: it starts from a given state and
returns the state it ends in, both differentiable, so a long sequence can be processed (and
recomputed in the backward) piece by piece.
"""
from __future__ import annotations

import importlib.util

import torch
from torch import Tensor

from gnnlab.ops import _loader, _reference

__all__ = ["selective_scan", "selective_scan_carry"]

#: Steps between two saved states in the compiled forward (the backward recomputes within a chunk).
CHUNK = 64

if _loader.extension_available():

    @torch.library.register_fake("gnnlab::selective_scan_fwd")
    def _fwd_fake(u, delta, A, B, C, D, z, delta_bias, delta_softplus, reset, chunk, h0=None):
        batch, dim, length = u.shape
        chunks = (length + chunk - 1) // chunk
        return u.new_empty(u.shape), u.new_empty(batch, dim, A.size(1)), u.new_empty(batch, dim, chunks, A.size(1))


def _as_groups(M: Tensor, batch: int, length: int) -> Tensor:
    """``B``/``C`` as the kernel's ``[batch, G, N, L]`` view (no copy for the time-invariant form)."""
    if M.dim() == 2:  # (d, n): one group per channel; zero batch and time strides mark it time-invariant
        M = M.contiguous()
        return M.as_strided((batch, M.size(0), M.size(1), length), (0, M.size(1), 1, 0))
    if M.dim() == 3:  # (b, n, l), contiguous: non-zero strides mark it per-step
        return M.contiguous().unsqueeze(1)
    return M.contiguous()


def _grad_like(grad: Tensor, M: Tensor) -> Tensor:
    """The kernel's B/C gradient back in the layout ``M`` was given in."""
    if M.dim() == 2:
        return grad.sum(0)  # (batch, d, n) -> (d, n)
    if M.dim() == 3:
        return grad.squeeze(1)
    return grad


class _CompiledScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, delta_softplus, reset, h0):
        batch, _, length = u.shape
        B4, C4 = _as_groups(B, batch, length), _as_groups(C, batch, length)
        out, last, checkpoints = torch.ops.gnnlab.selective_scan_fwd(
            u, delta, A, B4, C4, D, z, delta_bias, delta_softplus, reset, CHUNK, h0
        )
        ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias, reset, checkpoints)
        ctx.delta_softplus = delta_softplus
        return out, last

    @staticmethod
    def backward(ctx, grad_out, grad_last):
        if torch.is_grad_enabled():
            raise RuntimeError(
                "selective_scan: the compiled CPU path has first-order gradients only; for a double backward "
                "run it on the reference path (gnnlab.ops.backend_scope('torch'))"
            )
        u, delta, A, B, C, D, z, delta_bias, reset, checkpoints = ctx.saved_tensors
        batch, _, length = u.shape
        if grad_out is None:
            grad_out = torch.zeros_like(u)
        gu, gdelta, gA, gB, gC, gD, gz, gbias, gh0 = torch.ops.gnnlab.selective_scan_bwd(
            u, delta, A, _as_groups(B, batch, length), _as_groups(C, batch, length), D, z, delta_bias,
            ctx.delta_softplus, reset, CHUNK, checkpoints, grad_out.contiguous(),
            None if grad_last is None else grad_last.to(u.dtype).contiguous(),
        )
        return (gu, gdelta, gA, _grad_like(gB, B), _grad_like(gC, C), gD if D is not None else None,
                gz if z is not None else None, gbias if delta_bias is not None else None, None, None,
                gh0 if ctx.needs_input_grad[10] else None)


def _compiled(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, cu_seqlens,
              initial_state=None):
    """The compiled CPU path: float32 (float64 for float64 ``u``) in, ``u``'s dtype out."""
    dtype_in = u.dtype
    compute = torch.float64 if u.dtype == torch.float64 else torch.float32

    def cast(t):
        return None if t is None else t.to(compute)

    reset = None
    if cu_seqlens is not None:
        reset = torch.zeros(u.size(-1), dtype=torch.uint8, device=u.device)
        starts = cu_seqlens[:-1]
        reset[starts[starts < u.size(-1)]] = 1
        if initial_state is not None and reset.numel():
            reset[0] = 0  # the first sequence continues from initial_state
    out, last = _CompiledScan.apply(cast(u), cast(delta), cast(A), cast(B), cast(C), cast(D), cast(z),
                                    cast(delta_bias), bool(delta_softplus), reset, cast(initial_state))
    return (out.to(dtype_in), last) if return_last_state else out.to(dtype_in)


def _check(u, delta, A, B, C, D, z, delta_bias, cu_seqlens) -> None:
    shape = _reference.shape_of
    if not isinstance(u, Tensor) or u.dim() != 3 or not u.is_floating_point():
        raise ValueError(f"selective_scan: u must be a floating [batch, channels, L] tensor, got {shape(u)}")
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
            for packed input, one per sequence; that case runs on the reference path).
        cu_seqlens: optional ``[S + 1]`` int64 offsets along ``L`` of ``S`` packed sequences (batch 1);
            the state restarts at zero at each one.

    Returns:
        ``out`` ``[batch, channels, L]`` in ``u``'s dtype, and the last state when asked.

    Raises:
        ValueError: naming the argument whose shape, dtype or offsets do not fit.
    """
    _check(u, delta, A, B, C, D, z, delta_bias, cu_seqlens)
    if cu_seqlens is None and u.is_cuda and importlib.util.find_spec("mamba_ssm") is not None:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn

        return selective_scan_fn(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)
    if (_loader.use_extension() and u.device.type in ("cpu", "cuda")
            and not (return_last_state and cu_seqlens is not None)):
        return _compiled(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, cu_seqlens)
    return _reference.selective_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, cu_seqlens)


def selective_scan_carry(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
    cu_seqlens: Tensor | None = None,
    initial_state: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """One piece of a longer scan: start from ``initial_state`` and return the state to carry on.

    A sequence cut into consecutive pieces gives, piece by piece, exactly the single scan's output when
    each piece starts from the ``last_state`` of the one before; gradients flow through both states,
    so the pieces can be recomputed one at a time in the backward (what :class:`gnnlab.nn.ssm.Mamba`
    does with ``chunk_size``).

    Args:
        u, delta, A, B, C, D, z, delta_bias, delta_softplus, cu_seqlens: as :func:`selective_scan`.
        initial_state: optional ``[batch, channels, N]`` state before step 0 (zero without it); with
            ``cu_seqlens`` the first packed sequence continues from it and the others start at zero.

    Returns:
        ``(out, last_state)``: ``out`` as :func:`selective_scan`; ``last_state`` ``[batch, channels, N]``
        (compute dtype: float32, or float64 for float64 ``u``) is the state after the last step (for
        packed input, the end of the last non-empty sequence), differentiable like ``out``.
    """
    _check(u, delta, A, B, C, D, z, delta_bias, cu_seqlens)
    batch, dim, _ = u.shape
    if initial_state is not None and tuple(initial_state.shape) != (batch, dim, A.size(1)):
        raise ValueError(f"selective_scan_carry: initial_state must be [batch={batch}, channels={dim}, "
                         f"N={A.size(1)}], got {list(initial_state.shape)}")
    if _loader.use_extension() and u.device.type in ("cpu", "cuda"):
        return _compiled(u, delta, A, B, C, D, z, delta_bias, delta_softplus, True, cu_seqlens, initial_state)
    return _reference.selective_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus, True, cu_seqlens,
                                     initial_state, per_sequence=False)
