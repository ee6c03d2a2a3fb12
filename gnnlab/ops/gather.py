"""Per-edge gathers of node rows whose backward is a CSR reduction instead of an atomic scatter.

``x.index_select(0, edge_index[k])`` is the first step of every layer that forms per-edge
messages (GatedGCN, GINE, the Graph Transformer). Autograd's backward for it is ``index_add_``,
which on CPU runs ~3x slower than the row-parallel CSR reduction (and is nondeterministic on
GPU). :func:`gather_src` and :func:`gather_dst` gather the same rows but reduce their gradient
with :func:`~gnnlab.ops.aggregate.aggregate_csr` over the graph's cached CSR (by source or by
target), deterministically. Double backward works: the backward is itself built from
differentiable ops.
"""
from __future__ import annotations

import torch
from torch import Tensor

from gnnlab.ops.aggregate import aggregate_csr, reduce_messages
from gnnlab.ops.graph import CSRGraph

__all__ = ["gather_src", "gather_dst", "reduce_by_source"]


def _by_source(graph: CSRGraph, edge_index: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """CSR grouped by source whose entries are original edge ids, and its inverse."""

    def build():
        edge_ids = graph.perm.index_select(0, graph.perm_t)  # original edge id of each transposed slot
        position = torch.empty_like(edge_ids)
        position[edge_ids] = torch.arange(edge_ids.numel(), device=edge_ids.device)
        return edge_ids, position, torch.arange(edge_ids.numel() + 1, device=edge_ids.device)

    return graph.derive("gather_by_source", build)


def reduce_by_source(messages: Tensor, graph: CSRGraph, edge_index: Tensor) -> Tensor:
    """``out[j] = Σ_{e: source(e) = j} messages[e]`` (messages in the original edge order): ``[num_src, *]``."""
    if messages.size(0) != graph.num_edges:
        raise ValueError(f"reduce_by_source: {messages.size(0)} messages for {graph.num_edges} edges")
    edge_ids, position, ones = _by_source(graph, edge_index)
    trailing = messages.shape[1:]
    flat = messages.reshape(graph.num_edges, trailing.numel())
    out, _ = aggregate_csr(graph.rowptr_t, edge_ids, ones, edge_index[0], position, flat, None, "sum")
    return out.reshape(graph.num_src, *trailing)


class _Gather(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, index: Tensor, graph: CSRGraph, edge_index: Tensor, side: str) -> Tensor:
        ctx.graph, ctx.side = graph, side
        ctx.save_for_backward(edge_index)
        return x.index_select(0, index)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (edge_index,) = ctx.saved_tensors
        grad = grad.contiguous()
        if ctx.side == "dst":
            grad_x = reduce_messages(grad, ctx.graph, edge_index)
        else:
            grad_x = reduce_by_source(grad, ctx.graph, edge_index)
        return grad_x, None, None, None, None


def _check(name: str, x: Tensor, graph: CSRGraph, edge_index: Tensor, side: str) -> None:
    if not isinstance(graph, CSRGraph):
        raise TypeError(f"{name}: graph must be a CSRGraph, got {type(graph).__name__}")
    num_rows = graph.num_src if side == "src" else graph.num_dst
    if edge_index.dim() != 2 or edge_index.size(0) != 2 or edge_index.size(1) != graph.num_edges:
        raise ValueError(f"{name}: edge_index must be the graph's [2, {graph.num_edges}] edges, got {list(edge_index.shape)}")
    if x.size(0) != num_rows:
        raise ValueError(f"{name}: x has {x.size(0)} rows, the graph has {num_rows} nodes on that side")


def gather_src(x: Tensor, graph: CSRGraph, edge_index: Tensor) -> Tensor:
    """``x[edge_index[0]]`` (``[E, *]``), with a CSR reduction by source as its backward."""
    _check("gather_src", x, graph, edge_index, "src")
    if not (torch.is_grad_enabled() and x.requires_grad):
        return x.index_select(0, edge_index[0])
    return _Gather.apply(x, edge_index[0], graph, edge_index, "src")


def gather_dst(x: Tensor, graph: CSRGraph, edge_index: Tensor) -> Tensor:
    """``x[edge_index[1]]`` (``[E, *]``), with a CSR reduction by target as its backward."""
    _check("gather_dst", x, graph, edge_index, "dst")
    if not (torch.is_grad_enabled() and x.requires_grad):
        return x.index_select(0, edge_index[1])
    return _Gather.apply(x, edge_index[1], graph, edge_index, "dst")
