"""COO → CSR conversion with input validation (``torch.ops.gnnlab.coo_to_csr``)."""
from __future__ import annotations

import torch
from torch import Tensor

from gnnlab.ops import _loader, _reference

validate_edge_index = _reference.check_edge_index

if _loader.extension_available():

    @torch.library.register_fake("gnnlab::coo_to_csr")
    def _coo_to_csr_fake(edge_index: Tensor, num_nodes: int):
        num_edges = edge_index.size(1)
        rowptr = edge_index.new_empty(num_nodes + 1, dtype=torch.long)
        col = edge_index.new_empty(num_edges)
        perm = edge_index.new_empty(num_edges, dtype=torch.long)
        return rowptr, col, perm


def coo_to_csr(edge_index: Tensor, num_nodes: int) -> tuple[Tensor, Tensor, Tensor]:
    """Convert a COO ``edge_index`` to CSR, grouped by ``edge_index[0]`` with a stable order.

    Args:
        edge_index: ``[2, E]`` int32 or int64 tensor.
        num_nodes: number of rows ``N``; entries must lie in ``[0, N)``.

    Returns:
        ``(rowptr [N+1] int64, col [E] (dtype of edge_index), perm [E] int64)`` with
        ``col == edge_index[1, perm]``; apply ``perm`` to edge attributes to keep them aligned.

    Raises:
        ValueError: wrong shape or dtype, a negative entry, or an entry ``>= num_nodes``.
    """
    if _loader.use_extension() and isinstance(edge_index, Tensor) and edge_index.device.type in ("cpu", "cuda"):
        # Shape and dtype errors are reported by the C++ checks as ValueError too.
        return torch.ops.gnnlab.coo_to_csr(edge_index, num_nodes)
    return _reference.coo_to_csr(edge_index, num_nodes)
