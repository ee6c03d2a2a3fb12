"""torch_scatter-compatible ``scatter`` and ``segment_csr`` on top of the fused aggregation.

Code written for torch_scatter runs unchanged with ``from gnnlab.ops import scatter, segment_csr``
for the common case of a 1-D ``index``/``indptr`` (one group id per slice along ``dim``).
``reduce`` is ``sum``/``add``, ``mean``, ``max`` or ``min``; empty groups give 0, as in
torch_scatter, and so does an empty input (zeros of shape ``dim_size`` along ``dim``). Max/min
propagate NaN whatever the order of the slices. Unlike torch_scatter, gradients of max/min go to the first element of a group on ties.
"""
from __future__ import annotations

import torch
from torch import Tensor

from gnnlab.ops import _reference
from gnnlab.ops.aggregate import aggregate_csr
from gnnlab.ops.csr import coo_to_csr


def _to_rows(src: Tensor, dim: int) -> tuple[Tensor, int, torch.Size]:
    dim = dim if dim >= 0 else src.dim() + dim
    if not 0 <= dim < src.dim():
        raise ValueError(f"dim {dim} out of range for src with {src.dim()} dimensions")
    moved = src.movedim(dim, 0)
    # An explicit width: reshape(n, -1) is ambiguous when there are no slices (E = 0).
    return moved.reshape(moved.size(0), moved.shape[1:].numel()), dim, moved.shape[1:]


def _from_rows(result: Tensor, dim: int, rest: torch.Size, out: Tensor | None, reduce: str, op: str) -> Tensor:
    """The reduced rows back in ``src``'s layout, added into ``out`` when one is given."""
    result = result.reshape(result.size(0), *rest).movedim(0, dim)
    if out is None:
        return result
    if reduce != "sum":
        raise ValueError(f"gnnlab.ops.{op}: out= is supported for reduce='sum' only")
    return out.add_(result)


def scatter(
    src: Tensor,
    index: Tensor,
    dim: int = -1,
    out: Tensor | None = None,
    dim_size: int | None = None,
    reduce: str = "sum",
) -> Tensor:
    """Reduce the slices of ``src`` along ``dim`` into ``index`` groups (torch_scatter's ``scatter``).

    Args:
        src: input tensor.
        index: 1-D group id of each slice along ``dim`` (``index.numel() == src.size(dim)``).
        dim: the dimension to reduce along (default ``-1``, as torch_scatter).
        out: optional output to add into (``reduce='sum'`` only).
        dim_size: number of groups (default ``index.max() + 1``).
        reduce: ``sum``/``add``, ``mean``, ``max`` or ``min``.

    Raises:
        ValueError: index not 1-D, length mismatch, negative ids or ids ``>= dim_size``, bad reduce.
    """
    reduce = _reference.check_reduce(reduce)
    if index.dim() != 1:
        raise ValueError(f"gnnlab.ops.scatter supports a 1-D index, got shape {list(index.shape)}")
    rows, dim, rest = _to_rows(src, dim)
    if index.numel() != rows.size(0):
        raise ValueError(f"index has {index.numel()} entries but src has {rows.size(0)} slices along dim {dim}")
    if dim_size is None:
        dim_size = int(index.max()) + 1 if index.numel() else 0
    num = rows.size(0)
    positions = torch.arange(num, device=src.device, dtype=index.dtype)
    if num and (int(index.min()) < 0 or int(index.max()) >= dim_size):
        bad = int(index.min()) if int(index.min()) < 0 else int(index.max())
        raise ValueError(f"index has entry {bad} out of range [0, {dim_size}) (negative ids or ids >= dim_size)")
    # One square conversion over max(groups, slices) ids, cut back to dim_size groups.
    rowptr, col, perm = coo_to_csr(torch.stack([index, positions]), max(dim_size, num))
    rowptr = rowptr[: dim_size + 1]
    position_of = _reference.inverse_permutation(perm)
    rowptr_t = torch.arange(num + 1, device=src.device)
    result, _ = aggregate_csr(rowptr, col, rowptr_t, index, position_of, rows, None, reduce)
    return _from_rows(result, dim, rest, out, reduce, "scatter")


def segment_csr(src: Tensor, indptr: Tensor, out: Tensor | None = None, reduce: str = "sum") -> Tensor:
    """Reduce contiguous segments ``src[indptr[k]:indptr[k+1]]`` along dim 0 (torch_scatter's ``segment_csr``).

    Args:
        src: ``[E, *]`` tensor.
        indptr: 1-D non-decreasing offsets into dim 0 of ``src``.
        out: optional output to add into (``reduce='sum'`` only).
        reduce: ``sum``/``add``, ``mean``, ``max`` or ``min``.
    """
    reduce = _reference.check_reduce(reduce)
    if indptr.dim() != 1 or indptr.numel() < 1:
        raise ValueError(f"gnnlab.ops.segment_csr supports a non-empty 1-D indptr, got shape {list(indptr.shape)}")
    indptr = indptr.long()
    start, end = int(indptr[0]), int(indptr[-1])
    if start < 0 or end > src.size(0) or start > end:
        raise ValueError(f"indptr spans [{start}, {end}) which is not inside [0, {src.size(0)}) of src")
    rows, _, rest = _to_rows(src[start:end], 0)
    rowptr = indptr - start
    num = rows.size(0)
    arange = torch.arange(num, device=src.device)
    targets = torch.repeat_interleave(torch.arange(rowptr.numel() - 1, device=src.device), rowptr.diff().clamp(min=0))
    result, _ = aggregate_csr(rowptr, arange, torch.arange(num + 1, device=src.device), targets, arange, rows, None, reduce)
    return _from_rows(result, 0, rest, out, reduce, "segment_csr")
