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
