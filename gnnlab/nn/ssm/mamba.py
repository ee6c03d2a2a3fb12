"""The Mamba block (Gu & Dao, "Mamba: Linear-Time Sequence Modeling with Selective State Spaces", 2023).

Parameter names, shapes and initialisation follow ``mamba_ssm.modules.mamba_simple.Mamba``, so a
state dict loads either way. Besides the padded ``[batch, L, d_model]`` layout the block accepts
packed sequences ``[total_L, d_model]`` with offsets ``cu_seqlens`` (graphs laid end to end): the
causal convolution never reads across a boundary and the scan state restarts at each one, so a packed
batch gives exactly what each sequence gives on its own, without padding every graph to the largest.

With ``chunk_size`` the block runs over the packed rows in pieces of that many rows, each starting from
the scan state the previous piece ended with (:func:`gnnlab.ops.selective_scan_carry`) and re-reading
the ``d_conv - 1`` rows before it for the convolution. For the backward only the input and one state per
piece are kept; each piece is recomputed in turn, from the last, with the gradient of its final state
carried to the piece before. The memory of a long sequence then grows with the input alone (about one
``[L, d_model]`` tensor) instead of with the half-dozen ``[L, d_inner]`` activations autograd keeps, for
about one more forward pass of time.
"""
from __future__ import annotations

import bisect
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gnnlab.nn.mlp import reset
from gnnlab.ops import selective_scan, selective_scan_carry

__all__ = ["Mamba", "BiMamba", "positions_in_sequence"]


def _wide(p: Tensor) -> Tensor:
    """``p`` in at least float32: ``A``, ``D`` and the ``Δ`` bias stay so under mixed precision, as upstream."""
    return p.to(torch.promote_types(p.dtype, torch.float32))


def positions_in_sequence(cu_seqlens: Tensor, total: int) -> Tensor:
    """``[total]`` position of each packed element within its own sequence (0 at every offset)."""
    lengths = cu_seqlens.diff()
    starts = torch.repeat_interleave(cu_seqlens[:-1], lengths, output_size=total)
    return torch.arange(total, device=cu_seqlens.device) - starts


class Mamba(nn.Module):
    r"""One Mamba block: ``out = W_out( SSM(σ(conv(W_x h))) ⊙ silu(W_z h) )``.

    With ``x, z = in_proj(h)``, ``x ← silu(causal depthwise conv_k(x))`` (kernel ``d_conv``), the
    input-dependent ``Δ, B, C`` from ``x_proj(x)`` (``Δ`` through the rank-``dt_rank`` projection
    ``dt_proj`` and a softplus), ``A = -exp(A_log)``, and the selective scan
    :func:`gnnlab.ops.selective_scan` with skip ``D`` and gate ``z``.

    Initialisation as ``mamba_ssm``: ``A_log = log([1..d_state])`` per channel (S4D-real),
    ``D = 1``, ``dt_proj.weight ~ U(±dt_rank^-1/2 · dt_scale)`` (or constant), and
    ``dt_proj.bias = softplus⁻¹(dt)`` with ``dt`` log-uniform in ``[dt_min, dt_max]``, floored at
    ``dt_init_floor``. ``A_log``, ``D`` and ``dt_proj.bias`` carry ``_no_weight_decay`` /
    ``_no_reinit`` flags as upstream.

    Args:
        d_model: input and output width.
        d_state: state size ``N`` (16).
        d_conv: causal convolution width (4).
        expand: ``d_inner = expand · d_model`` (2).
        dt_rank: rank of the ``Δ`` projection; ``"auto"`` is ``ceil(d_model / 16)``.
        dt_min, dt_max, dt_init, dt_scale, dt_init_floor: ``Δ`` initialisation, as upstream.
        conv_bias: bias of the convolution (True); bias: biases of ``in_proj`` and ``out_proj`` (False).
        chunk_size: run sequences longer than this many rows in pieces, recomputing each piece in the
            backward (see the module docstring); ``None`` (the default) runs them whole. The result
            is the same either way; the chunked backward is first-order only.

    Shapes:
        - input: ``[batch, L, d_model]``, or packed ``[total_L, d_model]`` with ``cu_seqlens`` ``[S + 1]``
        - output: the same shape
    """

    def __init__(self, d_model: int, d_state: int = 16, d_conv: int = 4, expand: int = 2, dt_rank="auto",
                 dt_min: float = 0.001, dt_max: float = 0.1, dt_init: str = "random", dt_scale: float = 1.0,
                 dt_init_floor: float = 1e-4, conv_bias: bool = True, bias: bool = False,
                 chunk_size: int | None = None):
        super().__init__()
        if d_model < 1 or d_state < 1 or d_conv < 1 or expand < 1:
            raise ValueError(f"Mamba: d_model, d_state, d_conv and expand must be positive, got "
                             f"{d_model}, {d_state}, {d_conv}, {expand}")
        if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int)
                                       or chunk_size < 1):
            raise ValueError(f"Mamba: chunk_size must be a positive integer or None, got {chunk_size!r}")
        self.chunk_size = chunk_size
        if dt_init not in ("random", "constant"):
            raise ValueError(f"Mamba: dt_init must be 'random' or 'constant', got {dt_init!r}")
        self.d_model, self.d_state, self.d_conv, self.expand = d_model, d_state, d_conv, expand
        self.d_inner = expand * d_model
        self.dt_rank = math.ceil(d_model / 16) if dt_rank == "auto" else int(dt_rank)
        self._dt = dict(dt_min=dt_min, dt_max=dt_max, dt_init=dt_init, dt_scale=dt_scale, dt_init_floor=dt_init_floor)
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=bias)
        self.conv1d = nn.Conv1d(self.d_inner, self.d_inner, d_conv, groups=self.d_inner, padding=d_conv - 1,
                                bias=conv_bias)
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True)
        self.A_log = nn.Parameter(torch.empty(self.d_inner, d_state))
        self.D = nn.Parameter(torch.empty(self.d_inner))
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=bias)
        for p in (self.A_log, self.D):
            p._no_weight_decay = True
        self.dt_proj.bias._no_reinit = True
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise every parameter as ``mamba_ssm.Mamba.__init__`` does."""
        for layer in (self.in_proj, self.x_proj, self.out_proj, self.conv1d):
            layer.reset_parameters()
        dt = self._dt
        std = self.dt_rank**-0.5 * dt["dt_scale"]
        with torch.no_grad():
            if dt["dt_init"] == "constant":
                self.dt_proj.weight.fill_(std)
            else:
                self.dt_proj.weight.uniform_(-std, std)
            step = torch.exp(torch.rand(self.d_inner) * (math.log(dt["dt_max"]) - math.log(dt["dt_min"]))
                             + math.log(dt["dt_min"])).clamp(min=dt["dt_init_floor"])
            self.dt_proj.bias.copy_(step + torch.log(-torch.expm1(-step)))  # softplus⁻¹(step)
            self.A_log.copy_(torch.log(torch.arange(1, self.d_state + 1, dtype=torch.float32)).repeat(self.d_inner, 1))
            self.D.fill_(1.0)

    def _conv_packed(self, x: Tensor, cu_seqlens: Tensor) -> Tensor:
        """Causal depthwise convolution of ``x`` ``(d_inner, total)`` that never reads a previous sequence.

        Each sequence is laid out after ``d_conv - 1`` zeros (its own causal padding), one ``conv1d``
        runs over the whole layout, and each element's output is read back: autograd keeps only the
        laid-out input for the backward.
        """
        total, k = x.size(1), self.d_conv
        lengths = cu_seqlens.diff()
        sequence = torch.repeat_interleave(torch.arange(lengths.numel(), device=x.device), lengths, output_size=total)
        at = torch.arange(total, device=x.device) + (sequence + 1) * (k - 1)  # column of each element
        width = max(total + lengths.numel() * (k - 1), k)  # at least one window (empty input)
        laid_out = x.new_zeros(x.size(0), width).index_copy(1, at, x)
        out = F.conv1d(laid_out.unsqueeze(0), self.conv1d.weight, self.conv1d.bias, groups=self.d_inner)[0]
        return out.index_select(1, at - (k - 1))  # the window ending at each element

    def forward(self, hidden: Tensor, cu_seqlens: Tensor | None = None, order: Tensor | None = None) -> Tensor:
        """Apply the block to ``[batch, L, d_model]``, or to packed ``[total_L, d_model]`` with ``cu_seqlens``.

        Packed input may come with ``order`` (``[total_L]`` row indices into ``hidden``): the packed
        sequences are then ``hidden[order]`` and the output is in that order, as from
        ``forward(hidden[order], cu_seqlens)``, but the rows are gathered after the input projection
        (which acts on each row alone), so the gathered copy of ``hidden`` is never made or kept.
        """
        packed = cu_seqlens is not None
        if packed:
            if hidden.dim() != 2 or hidden.size(-1) != self.d_model:
                raise ValueError(f"Mamba: packed input must be [total_L, {self.d_model}], got {list(hidden.shape)}")
        elif hidden.dim() != 3 or hidden.size(-1) != self.d_model:
            raise ValueError(f"Mamba: input must be [batch, L, {self.d_model}] (or packed with cu_seqlens), got "
                             f"{list(hidden.shape)}")
        if order is not None and not packed:
            raise ValueError("Mamba: order applies to packed input (give cu_seqlens)")
        if order is not None and (order.dim() != 1 or order.dtype != torch.long):
            raise ValueError(f"Mamba: order must be a 1-D int64 tensor of row indices, got {order.dtype} "
                             f"{list(order.shape)}")
        if self.chunk_size is not None:
            rows = hidden.size(0) * hidden.size(1) if not packed else (order.numel() if order is not None
                                                                        else hidden.size(0))
            if rows > self.chunk_size:
                if packed:
                    return self._forward_chunked(hidden, cu_seqlens, order)
                batch, length = hidden.shape[:2]  # padded: each row of the batch is one packed sequence
                offsets = torch.arange(0, batch * length + 1, length, device=hidden.device)
                flat = self._forward_chunked(hidden.reshape(batch * length, -1), offsets, None)
                return flat.view(batch, length, -1)
        # in_proj as its two halves, so that the gate z (kept by the scan for the backward) does not
        # keep the x half alive with it.
        weight, bias = self.in_proj.weight, self.in_proj.bias
        halves = []
        for part in (slice(0, self.d_inner), slice(self.d_inner, 2 * self.d_inner)):
            h = F.linear(hidden, weight[part], None if bias is None else bias[part])
            if order is not None:
                h = h.index_select(0, order)
            if packed:
                h = h.unsqueeze(0)
            halves.append(h.transpose(1, 2))  # (B, d_inner, L)
        x, z = halves
        length = x.size(-1)
        if packed:
            x = self._conv_packed(x[0], cu_seqlens).unsqueeze(0)
        else:
            x = self.conv1d(x)[..., :length]
        y = self._scan(F.silu(x), z, cu_seqlens)
        out = self.out_proj(y.transpose(1, 2))  # (B, L, d_model)
        return out[0] if packed else out

    def _scan(self, x: Tensor, z: Tensor, cu_seqlens: Tensor | None, **carry) -> Tensor | tuple[Tensor, Tensor]:
        """The selective scan of the convolved ``x`` ``(B, d_inner, L)``, gated by ``z``; given ``initial_state``,
        :func:`gnnlab.ops.selective_scan_carry`, which also returns the final state."""
        x_dbl = self.x_proj(x.transpose(1, 2))  # (B, L, dt_rank + 2N)
        dt, B, C = torch.split(x_dbl, [self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = (dt @ self.dt_proj.weight.t()).transpose(1, 2)  # (B, d_inner, L); the bias enters the scan
        A = -torch.exp(_wide(self.A_log))  # (d_inner, N)
        scan = selective_scan_carry if carry else selective_scan
        return scan(x, dt, A, B.transpose(1, 2).contiguous(), C.transpose(1, 2).contiguous(), _wide(self.D), z=z,
                    delta_bias=_wide(self.dt_proj.bias), delta_softplus=True, cu_seqlens=cu_seqlens, **carry)

    # ----- the chunked path ------------------------------------------------------------------------------

    def _forward_chunked(self, hidden: Tensor, cu_seqlens: Tensor, order: Tensor | None) -> Tensor:
        params = tuple(p for p in self.parameters())
        if not (torch.is_grad_enabled() and (hidden.requires_grad or any(p.requires_grad for p in params))):
            with torch.no_grad():
                return _chunked_pieces(self, hidden, cu_seqlens, order)[0]
        return _ChunkedMamba.apply(self, hidden, cu_seqlens, order, *params)

    def _piece(self, rows: Tensor, before: int, cu_conv: Tensor, cu_scan: Tensor,
               initial_state: Tensor | None) -> tuple[Tensor, Tensor]:
        """Output rows and final scan state of one piece of a packed sequence.

        ``rows`` are the piece's input rows preceded by ``before`` (< ``d_conv``) earlier rows that only
        feed the convolution; ``cu_conv`` are the sequence offsets within ``rows``, ``cu_scan`` within
        the piece; ``initial_state`` continues the piece's first sequence (``None``: it starts here).
        """
        weight, bias = self.in_proj.weight, self.in_proj.bias
        x = F.linear(rows, weight[: self.d_inner], None if bias is None else bias[: self.d_inner])
        z = F.linear(rows[before:], weight[self.d_inner:], None if bias is None else bias[self.d_inner:])
        x = F.silu(self._conv_packed(x.t(), cu_conv)[:, before:]).unsqueeze(0)  # (1, d_inner, n)
        y, last = self._scan(x, z.t().unsqueeze(0), cu_scan, initial_state=initial_state)
        return self.out_proj(y[0].t()), last


def _pieces(block: Mamba, cu_seqlens: Tensor, total: int) -> list[tuple[int, int, int, Tensor, Tensor, bool]]:
    """``(start, end, before, cu_conv, cu_scan, continues)`` of each piece of ``block.chunk_size`` rows."""
    offsets = cu_seqlens.tolist()  # non-decreasing
    starts = set(offsets)

    def within(lo: int, hi: int) -> list[int]:  # offsets o with lo < o < hi, relative to lo
        return [o - lo for o in offsets[bisect.bisect_right(offsets, lo):bisect.bisect_left(offsets, hi)]]

    out = []
    for start in range(0, total, block.chunk_size):
        end = min(start + block.chunk_size, total)
        low = max(0, start - (block.d_conv - 1))
        cu_conv = torch.tensor([0, *within(low, end), end - low], device=cu_seqlens.device)
        cu_scan = torch.tensor([0, *within(start, end), end - start], device=cu_seqlens.device)
        out.append((start, end, start - low, cu_conv, cu_scan, start not in starts))
    return out


def _rows(hidden: Tensor, order: Tensor | None, low: int, end: int) -> Tensor:
    return hidden[low:end] if order is None else hidden.index_select(0, order[low:end])


def _chunked_pieces(block: Mamba, hidden: Tensor, cu_seqlens: Tensor, order: Tensor | None):
    """Forward of every piece in turn (no autograd graph): the output and the state entering each piece."""
    total = order.numel() if order is not None else hidden.size(0)
    pieces = _pieces(block, cu_seqlens, total)
    out = hidden.new_empty(total, block.d_model)
    entering, state = [], None
    for start, end, before, cu_conv, cu_scan, continues in pieces:
        initial = state if continues else None
        entering.append(initial)
        piece, state = block._piece(_rows(hidden, order, start - before, end), before, cu_conv, cu_scan, initial)
        out[start:end] = piece
    return out, pieces, entering


class _ChunkedMamba(torch.autograd.Function):
    """Mamba over packed rows in pieces, keeping only the input and the states between pieces."""

    @staticmethod
    def forward(ctx, block, hidden, cu_seqlens, order, *params):
        out, pieces, entering = _chunked_pieces(block, hidden, cu_seqlens, order)
        ctx.block, ctx.pieces, ctx.entering = block, pieces, entering
        ctx.save_for_backward(hidden, order)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        if torch.is_grad_enabled():
            raise RuntimeError("Mamba: the chunked path (chunk_size) has first-order gradients only; for a double "
                               "backward build the block with chunk_size=None")
        block, (hidden, order) = ctx.block, ctx.saved_tensors
        params = tuple(block.parameters())
        trained = [k for k, p in enumerate(params) if ctx.needs_input_grad[4 + k]]
        want_hidden = ctx.needs_input_grad[1]
        grad_hidden = torch.zeros_like(hidden) if want_hidden else None
        grad_params = [None] * len(params)
        carry = None  # gradient of the state leaving the current piece
        for (start, end, before, cu_conv, cu_scan, _), initial in zip(reversed(ctx.pieces), reversed(ctx.entering)):
            low = start - before
            with torch.enable_grad():
                rows = _rows(hidden, order, low, end).detach().requires_grad_(want_hidden)
                state = None if initial is None else initial.detach().requires_grad_()
                piece, last = block._piece(rows, before, cu_conv, cu_scan, state)
                outputs, grads = [piece], [grad_out[start:end]]
                if carry is not None:
                    outputs.append(last)
                    grads.append(carry)
                inputs = ([rows] if want_hidden else []) + ([state] if state is not None else [])
                inputs += [params[k] for k in trained]
                found = torch.autograd.grad(outputs, inputs, grads, allow_unused=True)
            found = list(found)
            if want_hidden:
                g_rows = found.pop(0)
                if order is None:
                    grad_hidden[low:end] += g_rows
                else:
                    grad_hidden.index_add_(0, order[low:end], g_rows)
            carry = found.pop(0) if state is not None else None
            for k, g in zip(trained, found):
                if g is not None:
                    grad_params[k] = g if grad_params[k] is None else grad_params[k] + g
        return (None, grad_hidden, None, None, *grad_params)


class BiMamba(nn.Module):
    r"""Bidirectional Mamba: ``out = Mamba_fwd(h) + flip(Mamba_bwd(flip(h)))``, two blocks with their
    own weights, the second reading each sequence (each packed sequence on its own) in reverse;
    with ``out_proj=True`` a linear map ``W_out`` follows the sum.

    This is GMN's scan of each node's token sequence (Behrouz & Hashemi, KDD 2024, arXiv:2402.08678,
    Algorithm 2, line 21: ``y = W_out(Y_f + Reverse(Y_b))``), as in Vision Mamba's bidirectional block;
    GMN's configs set ``out_proj``. The paper's per-direction LayerNorm is the caller's (GMN's layer
    normalises the sequence before this block).

    Args:
        d_model: width; every other keyword goes to both :class:`Mamba` blocks.
        out_proj: add a ``d_model → d_model`` linear map (with bias) after the sum. (default: False)

    Shapes: as :class:`Mamba`.
    """

    def __init__(self, d_model: int, out_proj: bool = False, **kwargs):
        super().__init__()
        self.forward_block = Mamba(d_model, **kwargs)
        self.backward_block = Mamba(d_model, **kwargs)
        self.out_proj = nn.Linear(d_model, d_model) if out_proj else None

    def reset_parameters(self) -> None:
        """Re-initialise both blocks (and the output map)."""
        reset(self.forward_block, self.backward_block, self.out_proj)

    @staticmethod
    def reverse(hidden: Tensor, cu_seqlens: Tensor | None) -> Tensor:
        """Reverse every sequence in place of the time axis (each packed sequence on its own)."""
        if cu_seqlens is None:
            return hidden.flip(1)
        total = hidden.size(0)
        position = positions_in_sequence(cu_seqlens, total)
        end = torch.repeat_interleave(cu_seqlens[1:], cu_seqlens.diff(), output_size=total)
        return hidden.index_select(0, end - 1 - position)  # element t of a sequence ↔ its element end - 1 - t

    def forward(self, hidden: Tensor, cu_seqlens: Tensor | None = None) -> Tensor:
        """Sum of the forward pass and the re-reversed backward pass."""
        back = self.backward_block(self.reverse(hidden, cu_seqlens), cu_seqlens)
        out = self.forward_block(hidden, cu_seqlens) + self.reverse(back, cu_seqlens)
        return out if self.out_proj is None else self.out_proj(out)
