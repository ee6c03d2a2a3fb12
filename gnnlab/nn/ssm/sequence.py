"""Reading the nodes of each graph as a sequence: orderings, packing, and back.

A sequence model reads the nodes of a graph in some order. The helpers here build that order for a
whole PyG batch at once (nodes stay grouped by graph, sorted within each graph by a key), lay the
sorted nodes out as packed sequences with offsets ``cu_seqlens`` (one sequence per graph, no
padding), and put the outputs back in the original row order.

    perm = order_within_graphs(batch, key)          # (N,) node ids, graph by graph, key ascending
    seq, cu_seqlens = x[perm], sequence_offsets(batch, num_graphs)
    y = torch.empty_like(seq).index_copy_(0, perm, block(seq, cu_seqlens))   # back to x's rows
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["node_degree", "order_within_graphs", "sequence_offsets", "unpermute"]


def node_degree(edge_index: Tensor, num_nodes: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """``(N,)`` number of edges leaving each node (``edge_index[0]``), as PyG's ``degree(edge_index[0])``.

    For the undirected graphs of the benchmarks (both directions stored) this is the node degree.
    """
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"node_degree: edge_index must be [2, E], got {list(edge_index.shape)}")
    if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes):
        raise ValueError(f"node_degree: edge_index holds node ids outside [0, {num_nodes})")
    return torch.bincount(edge_index[0], minlength=num_nodes).to(dtype)


def order_within_graphs(batch: Tensor | None, key: Tensor, descending: bool = False) -> Tensor:
    """Permutation that keeps nodes grouped by graph and sorts each graph's nodes by ``key``.

    Ties keep the original node order (stable sort), so ``key = degree + noise`` gives Graph-Mamba's
    degree ordering with random tie-breaking, ``key = degree`` the plain degree ordering (ties by
    node index), ``key = arange(N)`` the node-index ordering and ``key = rand(N)`` a uniformly
    random permutation within each graph.

    Args:
        batch: ``(N,)`` sorted graph id of each node, or :obj:`None` for one graph.
        key: ``(N,)`` real sort key.
        descending: sort each graph from the largest key to the smallest.

    Returns:
        ``(N,)`` int64 ``perm``: ``x[perm]`` lists the nodes of graph 0 by key, then graph 1, ...
    """
    if key.dim() != 1:
        raise ValueError(f"order_within_graphs: key must be [N], got {list(key.shape)}")
    if key.is_floating_point() and bool(torch.isnan(key).any()):
        raise ValueError("order_within_graphs: key holds NaN; an ordering needs comparable keys")
    perm = torch.argsort(key, descending=descending, stable=True)
    if batch is None:
        return perm
    if batch.shape != key.shape:
        raise ValueError(f"order_within_graphs: batch {list(batch.shape)} and key {list(key.shape)} differ in length")
    # A stable sort by graph id of the key-sorted nodes keeps the key order inside every graph.
    return perm[torch.argsort(batch[perm], stable=True)]


def sequence_offsets(batch: Tensor | None, num_nodes: int, num_graphs: int | None = None) -> Tensor:
    """``(S + 1,)`` int64 offsets ``cu_seqlens`` of each graph's nodes in a graph-grouped ordering.

    Graphs without nodes give empty sequences (two equal offsets).
    """
    if batch is None:
        return torch.tensor([0, num_nodes], dtype=torch.long)
    size = (int(batch[-1]) + 1 if batch.numel() else 0) if num_graphs is None else num_graphs
    counts = torch.bincount(batch.long(), minlength=size)
    return torch.cat([counts.new_zeros(1), counts.cumsum(0)])


def unpermute(y: Tensor, perm: Tensor) -> Tensor:
    """Rows of ``y`` (laid out in the order ``perm``) put back at their original positions."""
    return torch.empty_like(y).index_copy(0, perm, y)
