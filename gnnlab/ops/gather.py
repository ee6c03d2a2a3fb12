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

from gnnlab.ops.aggregate import aggregate_csr
from gnnlab.ops.graph import Graph

__all__ = ["gather_src", "gather_dst", "reduce_by_source"]


def _by_source(graph: Graph) -> tuple[Tensor, Tensor, Tensor]:
    """CSR grouped by source whose entries are original edge ids, and its inverse."""

    def build():
        edge_ids = graph.perm.index_select(0, graph.perm_t)  # original edge id of each transposed slot
        position = torch.empty_like(edge_ids)
        position[edge_ids] = torch.arange(edge_ids.numel(), device=edge_ids.device)
        return edge_ids, position, torch.arange(edge_ids.numel() + 1, device=edge_ids.device)

    return graph.derive("gather_by_source", build)


def reduce_by_source(messages: Tensor, graph: Graph) -> Tensor:
    """``out[j] = Σ_{e: source(e) = j} messages[e]`` (messages in the original edge order): ``[num_src, *]``."""
    if messages.size(0) != graph.num_edges:
        raise ValueError(f"reduce_by_source: {messages.size(0)} messages for {graph.num_edges} edges")
    edge_ids, position, ones = _by_source(graph)
    trailing = messages.shape[1:]
    flat = messages.reshape(graph.num_edges, trailing.numel())
    out, _ = aggregate_csr(graph.rowptr_t, edge_ids, ones, graph.edge_index[0], position, flat, None, "sum")
    return out.reshape(graph.num_src, *trailing)


def _reduction(graph: Graph, side: str) -> tuple[Tensor, ...]:
    """The CSR arrays (``aggregate_csr``'s first five arguments) that sum per-edge rows, in the original
    edge order, into the nodes of one side: targets (``"dst"``) or sources (``"src"``)."""
    if side == "dst":
        ones = graph.derive("edge_offsets", lambda: torch.arange(graph.num_edges + 1, device=graph.perm.device))
        return graph.rowptr, graph.perm, ones, graph.edge_index[1], graph.position
    edge_ids, position, ones = _by_source(graph)
    return graph.rowptr_t, edge_ids, ones, graph.edge_index[0], position


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
        rowptr, col, rowptr_t, col_t, perm_t = ctx.saved_tensors
        grad = grad.contiguous()
        trailing = grad.shape[1:]
        out, _ = aggregate_csr(rowptr, col, rowptr_t, col_t, perm_t, grad.reshape(grad.size(0), trailing.numel()),
                               None, "sum")
        return out.reshape(rowptr.numel() - 1, *trailing), None, None, None, None, None, None


def _check(name: str, x: Tensor, graph: Graph, side: str) -> None:
    if not isinstance(graph, Graph):
        raise TypeError(f"{name}: graph must be a Graph, got {type(graph).__name__}")
    num_rows = graph.num_src if side == "src" else graph.num_dst
    if x.size(0) != num_rows:
        raise ValueError(f"{name}: x has {x.size(0)} rows, the graph has {num_rows} nodes on that side")


def gather_src(x: Tensor, graph: Graph) -> Tensor:
    """``x[graph.edge_index[0]]`` (``[E, *]``), with a CSR reduction by source as its backward."""
    _check("gather_src", x, graph, "src")
    if not (torch.is_grad_enabled() and x.requires_grad):
        return x.index_select(0, graph.edge_index[0])
    return _Gather.apply(x, graph.edge_index[0], *_reduction(graph, "src"))


def gather_dst(x: Tensor, graph: Graph) -> Tensor:
    """``x[graph.edge_index[1]]`` (``[E, *]``), with a CSR reduction by target as its backward."""
    _check("gather_dst", x, graph, "dst")
    if not (torch.is_grad_enabled() and x.requires_grad):
        return x.index_select(0, graph.edge_index[1])
    return _Gather.apply(x, graph.edge_index[1], *_reduction(graph, "dst"))
