"""Plain-torch definitions of every gnnlab op.

Each function here is the specification of an op: the compiled kernels must agree with it,
it is the fallback when ``gnnlab._C`` is missing, and it is the oracle in the tests.
"""
from __future__ import annotations

import torch
from torch import Tensor


def check_edge_index(edge_index: Tensor, num_nodes: int) -> None:
    """Raise ``ValueError`` unless ``edge_index`` is an integer ``[2, E]`` tensor with entries in ``[0, num_nodes)``."""
    if not isinstance(edge_index, Tensor):
        raise TypeError(f"edge_index must be a torch.Tensor, got {type(edge_index).__name__}")
    if edge_index.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"edge_index must have dtype int32 or int64, got {edge_index.dtype}")
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"edge_index must have shape [2, num_edges], got {list(edge_index.shape)}")
    if num_nodes < 0:
        raise ValueError(f"num_nodes must be non-negative, got {num_nodes}")
    if edge_index.numel() == 0:
        return
    lo = int(edge_index.min())
    hi = int(edge_index.max())
    if lo < 0:
        pos = (edge_index < 0).nonzero()[0].tolist()
        raise ValueError(f"edge_index has a negative entry {lo} (first at [{pos[0]}, {pos[1]}])")
    if hi >= num_nodes:
        pos = (edge_index >= num_nodes).nonzero()[0].tolist()
        raise ValueError(
            f"edge_index has entry {hi} out of range for num_nodes={num_nodes} (first at [{pos[0]}, {pos[1]}])"
        )


def coo_to_csr(edge_index: Tensor, num_nodes: int) -> tuple[Tensor, Tensor, Tensor]:
    """Convert a COO edge list to CSR, grouping edges by their first row (``edge_index[0]``).

    Args:
        edge_index: ``[2, E]`` int32/int64 tensor.
        num_nodes: number of rows ``N``; every entry must lie in ``[0, N)``.

    Returns:
        ``(rowptr, col, perm)``: ``rowptr`` ``[N + 1]`` int64 offsets, ``col`` ``[E]`` the second row
        reordered (same dtype as ``edge_index``), and ``perm`` ``[E]`` int64 with
        ``col == edge_index[1, perm]``. The sort is stable: edges of one row keep their input order.
    """
    check_edge_index(edge_index, num_nodes)
    row = edge_index[0].long()
    perm = torch.sort(row, stable=True).indices
    counts = torch.bincount(row, minlength=num_nodes)
    rowptr = torch.zeros(num_nodes + 1, dtype=torch.long, device=edge_index.device)
    torch.cumsum(counts, 0, out=rowptr[1:])
    return rowptr, edge_index[1, perm], perm


REDUCTIONS = ("sum", "mean", "max", "min")


def check_reduce(reduce: str) -> str:
    """Normalise a reduction name (``add`` → ``sum``, ``amax`` → ``max``, ``amin`` → ``min``)."""
    name = {"add": "sum", "amax": "max", "amin": "min"}.get(reduce, reduce)
    if name not in REDUCTIONS:
        raise ValueError(f"reduce must be one of {REDUCTIONS}, got {reduce!r}")
    return name


def check_aggregate(rowptr: Tensor, col: Tensor, x: Tensor, weight: Tensor | None) -> None:
    """Raise ``ValueError`` naming the problem unless the CSR, ``x`` and ``weight`` fit together."""
    if rowptr.dim() != 1 or rowptr.numel() < 1 or rowptr.dtype != torch.long:
        raise ValueError(f"aggregate: rowptr must be a non-empty 1-D int64 tensor, got {rowptr.dtype} {list(rowptr.shape)}")
    if col.dim() != 1 or col.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"aggregate: col must be a 1-D int32/int64 tensor, got {col.dtype} {list(col.shape)}")
    if x.dim() != 2 or not x.is_floating_point():
        raise ValueError(f"aggregate: x must be a 2-D floating tensor [num_nodes, features], got {x.dtype} {list(x.shape)}")
    num_edges = col.numel()
    if weight is not None:
        if weight.shape != (num_edges,):
            raise ValueError(f"aggregate: weight must have shape [{num_edges}] (one per edge), got {list(weight.shape)}")
        if weight.dtype != x.dtype:
            raise ValueError(f"aggregate: weight dtype {weight.dtype} does not match x dtype {x.dtype}")
    if int(rowptr[0]) != 0 or int(rowptr[-1]) != num_edges:
        raise ValueError(f"aggregate: rowptr must start at 0 and end at num_edges={num_edges}, got {int(rowptr[0])} .. {int(rowptr[-1])}")
    if rowptr.numel() > 1 and bool((rowptr.diff() < 0).any()):
        raise ValueError("aggregate: rowptr must be non-decreasing")
    if num_edges:
        lo, hi = int(col.min()), int(col.max())
        if lo < 0:
            raise ValueError(f"aggregate: col has a negative entry {lo}")
        if hi >= x.size(0):
            raise ValueError(f"aggregate: col has entry {hi} out of range for x with {x.size(0)} rows")


def aggregate(rowptr: Tensor, col: Tensor, x: Tensor, weight: Tensor | None = None, reduce: str = "sum") -> tuple[Tensor, Tensor]:
    """Fused-aggregation specification: ``out[i] = reduce_{e ∈ row i} weight[e] · x[col[e]]``.

    Materialises the ``[E, F]`` messages (the compiled kernel does not). ``sum``; ``mean`` divides by
    the number of edges of the row; ``max``/``min`` return in ``arg[i, f]`` the CSR position of the
    winning edge, the FIRST one in CSR order on ties, and the gradient goes to that edge only.
    Rows without edges give 0 (and ``arg = -1``). Differentiable in ``x`` and ``weight``.

    Returns:
        ``(out [R, F], arg)`` with ``arg`` ``[R, F]`` int64 for max/min and an empty tensor otherwise.
    """
    reduce = check_reduce(reduce)
    check_aggregate(rowptr, col, x, weight)
    num_rows, num_edges, feat = rowptr.numel() - 1, col.numel(), x.size(1)
    degree = rowptr.diff()
    dst = torch.repeat_interleave(torch.arange(num_rows, device=x.device), degree)
    # Accumulate in float32 for half types, as the kernel does.
    acc_dtype = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    msg = x.index_select(0, col.long()).to(acc_dtype)  # (E, F)
    if weight is not None:
        msg = msg * weight.to(acc_dtype).unsqueeze(-1)
    if reduce in ("sum", "mean"):
        out = msg.new_zeros(num_rows, feat).index_add(0, dst, msg)
        if reduce == "mean":
            out = out / degree.clamp(min=1).to(acc_dtype).unsqueeze(-1)
        return out.to(x.dtype), torch.empty(0, dtype=torch.long, device=x.device)
    amax = "amax" if reduce == "max" else "amin"
    index = dst.unsqueeze(-1).expand(-1, feat)
    best = msg.new_zeros(num_rows, feat).scatter_reduce(0, index, msg.detach(), amax, include_self=False)
    position = torch.arange(num_edges, device=x.device).unsqueeze(-1).expand(-1, feat)
    winner = torch.where(msg.detach() == best.index_select(0, dst), position, torch.full_like(position, num_edges))
    arg = torch.full((num_rows, feat), num_edges, dtype=torch.long, device=x.device).scatter_reduce(
        0, index, winner, "amin", include_self=True
    )
    empty = degree == 0
    arg = torch.where(empty.unsqueeze(-1), torch.full_like(arg, -1), arg)
    # Row E of the padded messages is zero: empty rows read it, and stay connected to x for autograd.
    padded = torch.cat([msg, msg.new_zeros(1, feat)])
    out = padded.gather(0, torch.where(arg < 0, torch.full_like(arg, num_edges), arg))
    return out.to(x.dtype), arg
