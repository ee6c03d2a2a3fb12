"""Per-edge gathers of node rows whose backward is a CSR reduction instead of an atomic scatter.

``x.index_select(0, edge_index[k])`` is the first step of every layer that forms per-edge
messages (GatedGCN, GINE, the Graph Transformer). Autograd's backward for it is ``index_add_``,
which on CPU runs ~3x slower than the row-parallel CSR reduction (and is nondeterministic on
GPU). :func:`gather_src` and :func:`gather_dst` gather the same rows but reduce their gradient
with :func:`~gnnlab.ops.aggregate.aggregate_csr` over the graph's CSR (by source or by
target), deterministically. Double backward works: the backward is itself built from
differentiable ops.
"""
from __future__ import annotations

import torch
from torch import Tensor

from gnnlab.ops.aggregate import _aggregate_flat, _edge_reduction, _reduce_edges
from gnnlab.ops.graph import Graph

__all__ = ["gather_src", "gather_dst", "reduce_by_source"]


def reduce_by_source(messages: Tensor, graph: Graph) -> Tensor:
    """``out[j] = Σ_{e: source(e) = j} messages[e]`` (messages in the original edge order): ``[num_src, *]``."""
    return _reduce_edges("reduce_by_source", messages, graph, "src", "sum")


class _Gather(torch.autograd.Function):
    # Everything the backward needs is a tensor input: no Python object is kept on ctx, so the
    # function traces under torch.compile without side effects.
    @staticmethod
    def forward(ctx, x: Tensor, index: Tensor, rowptr: Tensor, col: Tensor, rowptr_t: Tensor, col_t: Tensor,
                perm_t: Tensor) -> Tensor:
        ctx.save_for_backward(rowptr, col, rowptr_t, col_t, perm_t)
        return x.index_select(0, index)

    @staticmethod
    def backward(ctx, grad: Tensor):
        csr = ctx.saved_tensors  # rowptr, col, rowptr_t, col_t, perm_t
        out = _aggregate_flat(csr, grad.contiguous(), None, "sum", csr[0].numel() - 1)
        return out, None, None, None, None, None, None


def _gather(name: str, x: Tensor, graph: Graph, side: str) -> Tensor:
    if not isinstance(graph, Graph):
        raise TypeError(f"{name}: graph must be a Graph, got {type(graph).__name__}")
    num_rows = graph.num_src if side == "src" else graph.num_dst
    if x.size(0) != num_rows:
        raise ValueError(f"{name}: x has {x.size(0)} rows, the graph has {num_rows} nodes on that side")
    index = graph.edge_index[0 if side == "src" else 1]
    if not (torch.is_grad_enabled() and x.requires_grad):
        return x.index_select(0, index)
    return _Gather.apply(x, index, *_edge_reduction(graph, side))


def gather_src(x: Tensor, graph: Graph) -> Tensor:
    """``x[graph.edge_index[0]]`` (``[E, *]``), with a CSR reduction by source as its backward."""
    return _gather("gather_src", x, graph, "src")


def gather_dst(x: Tensor, graph: Graph) -> Tensor:
    """``x[graph.edge_index[1]]`` (``[E, *]``), with a CSR reduction by target as its backward."""
    return _gather("gather_dst", x, graph, "dst")
