r"""Neighbourhood (k-hop) token sequences: one sequence of hop-aggregated features per node.

A subgraph tokenization in the sense of the GSM framework (Behrouz et al., arXiv 2411.15671, abstract):
node :math:`v` is read as the sequence of its neighbourhood summaries at growing radius,

.. math::
    \big[\mathbf{h}^{(K)}_v, \dots, \mathbf{h}^{(1)}_v, \mathbf{h}^{(0)}_v\big], \qquad
    \mathbf{h}^{(0)} = \mathbf{x}, \quad
    \mathbf{h}^{(k)}_v = \frac{1}{|\mathcal{N}(v)|} \sum_{u \in \mathcal{N}(v)} \mathbf{h}^{(k-1)}_u,

farthest first and the node itself last (mean over in-neighbours, ``edge_index[0] → edge_index[1]``;
a node without in-neighbours gets zeros).
"""
from __future__ import annotations

import torch
from torch import Tensor

from gnnlab.ops import scatter

__all__ = ["hop_sequences"]


def hop_sequences(x: Tensor, edge_index: Tensor, num_hops: int) -> tuple[Tensor, Tensor, Tensor]:
    """Packed ``(N (K + 1), D)`` hop tokens, per-node offsets ``(N + 1,)`` and the hop of each token.

    Raises:
        ValueError: ``num_hops < 1``, or ``x`` / ``edge_index`` of the wrong shape.
    """
    if isinstance(num_hops, bool) or not isinstance(num_hops, int) or num_hops < 1:
        raise ValueError(f"hop_sequences: num_hops must be an integer >= 1, got {num_hops!r}")
    if x.dim() != 2:
        raise ValueError(f"hop_sequences: x must be [N, D], got {list(x.shape)}")
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"hop_sequences: edge_index must be [2, E], got {list(edge_index.shape)}")
    n = x.size(0)
    hops = [x]
    for _ in range(num_hops):
        hops.append(scatter(hops[-1].index_select(0, edge_index[0]), edge_index[1], dim=0, dim_size=n,
                            reduce="mean"))
    seq = torch.stack(hops[::-1], dim=1).reshape(n * (num_hops + 1), x.size(1))  # (N (K+1), D), node-major
    offsets = torch.arange(0, n * (num_hops + 1) + 1, num_hops + 1, device=x.device)
    hop = torch.arange(num_hops, -1, -1, device=x.device).repeat(n)
    return seq, offsets, hop
