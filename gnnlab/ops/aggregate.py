"""Fused scatter-aggregate over a CSR graph, without materialising the ``[E, F]`` messages.

``aggregate(x, graph, edge_weight, reduce)`` computes, for every target ``i``,
``out[i] = reduce_{j -> i} w_ji · x[j]`` with ``reduce`` in ``sum | mean | max | min``.
The compiled kernels (``torch.ops.gnnlab.aggregate``) run row-parallel with no atomics. The
backward of sum/mean uses the transposed CSR held by :class:`~gnnlab.ops.graph.Graph` (built once
per graph); that of max/min sends each winning message's gradient to its source (on the CPU
partitioned by blocks of source rows, with a temporary of one (offset, value) pair per winning
message, at most 8 bytes per entry of ``grad_out`` (16 for float64); on CUDA gathered through the
transposed CSR). Gradients are deterministic for any number of threads, and every derivative is
again one of the registered ops, so gradients of any order are exact (gradient penalties,
Hessian-vector products). For
``max``/``min`` the gradient goes to the winning edge, the first in CSR order (edges grouped by
target, in input order within a target) on ties; a NaN message always wins, so NaN propagates.
The CUDA kernels are compiled but have not been run on a GPU.
"""
from __future__ import annotations

import torch
from torch import Tensor

from gnnlab.ops import _loader, _reference
from gnnlab.ops.graph import Graph

if _loader.extension_available():

    @torch.library.register_fake("gnnlab::aggregate")
    def _aggregate_fake(rowptr, col, rowptr_t, col_t, perm_t, x, weight, reduce):
        num_rows = rowptr.size(0) - 1
        out = x.new_empty(num_rows, x.size(1))
        extremum = reduce in ("max", "min", "amax", "amin")
        arg = x.new_empty((num_rows, x.size(1)) if extremum else (0,), dtype=torch.int32)
        return out, arg

    @torch.library.register_fake("gnnlab::aggregate_weight_backward")
    def _weight_backward_fake(rowptr, col, x, grad_out, arg, reduce):
        return x.new_empty(col.size(0))

    @torch.library.register_fake("gnnlab::aggregate_extremum_x_backward")
    def _extremum_x_backward_fake(rowptr, col, rowptr_t, col_t, perm_t, arg, grad_out, weight, num_src):
        return grad_out.new_empty(num_src, grad_out.size(1))

    # Autograd of the three ops, to any order. With A the aggregation over the forward CSR (rows =
    # targets), Aᵀ the same over the transposed CSR, s = 1/degree for mean (1 for sum), and, for
    # max/min, p*(i, f) the winning CSR position recorded in ``arg``:
    #
    #   aggregate (sum/mean)           d/dx = Aᵀ(s·g, w)             d/dw = W(x, g)
    #   aggregate (max/min)            d/dx = X(g, w)                d/dw = W(x, g)
    #   W = aggregate_weight_backward  W(x, g)[p] = Σ_f g[row p, f]·x[col p, f]  (·s; max/min: only where p*(·, f) = p)
    #                                  sum/mean: d/dx = Aᵀ(s·g, u)    d/dg = A(x, u)
    #                                  max/min:  d/dx = X(g, u)       d/dg = P(x, u)
    #   X = aggregate_extremum_x_backward X(g, w)[j, f] = Σ_{i: col p*(i, f) = j} w[p*]·g[i, f]
    #                                  d/dg = P(v, w)                 d/dw = W(v, g)
    #   P(v, w)[i, f] = w[p*]·v[col p*, f]   (the max/min forward at a fixed winner; plain torch)
    #
    # u and v are the incoming cotangents. Every derivative is again one of these ops, so
    # gradcheck and gradgradcheck hold and Hessian-vector products are exact. The transposed call
    # swaps the roles of the two orientations, so its "perm_t" is the INVERSE of perm_t.

    def _rows(rowptr: Tensor, num_edges: int) -> Tensor:
        """``[E]`` row of each CSR position."""
        num_rows = rowptr.numel() - 1
        return torch.repeat_interleave(torch.arange(num_rows, device=rowptr.device), rowptr.diff(), output_size=num_edges)

    def _transpose(rowptr: Tensor, col: Tensor, num_src: int) -> tuple[Tensor, Tensor, Tensor]:
        """``(rowptr_t, col_t, perm_t)`` of a forward CSR (only needed by higher-order derivatives)."""
        rows = _rows(rowptr, col.numel()).to(col.dtype)
        # coo_to_csr is square: size it for both sides (rows may outnumber sources), then cut.
        rowptr_t, col_t, perm_t = torch.ops.gnnlab.coo_to_csr(torch.stack([col, rows]), max(num_src, rowptr.numel() - 1))
        return rowptr_t[: num_src + 1], col_t, perm_t

    def _transposed_sum(rowptr, col, rowptr_t, col_t, perm_t, g, weight) -> Tensor:
        """``Aᵀ(g, w)``: sum of ``w[p]·g[row p]`` into ``col p``, over the transposed CSR."""
        w_t = weight.index_select(0, perm_t) if weight is not None else None
        # The inverse permutation only feeds the backward of this call: without create_graph no
        # graph is recorded, so the first-order backward skips the O(E) scatter (any permutation
        # of [0, E) passes the op's range check, and the forward kernel does not read it).
        perm_back = _reference.inverse_permutation(perm_t) if torch.is_grad_enabled() else perm_t
        out, _ = torch.ops.gnnlab.aggregate(rowptr_t, col_t, rowptr, col, perm_back, g, w_t, "sum")
        return out

    def _grad_x(reduce, rowptr, col, rowptr_t, col_t, perm_t, arg, g, weight, num_src) -> Tensor:
        """``d/dx`` of the aggregation for the cotangent ``g``: ``Aᵀ(s·g, w)`` (sum/mean) or ``X(g, w)``."""
        if reduce in ("max", "min"):
            return torch.ops.gnnlab.aggregate_extremum_x_backward(rowptr, col, rowptr_t, col_t, perm_t, arg, g, weight,
                                                                  num_src)
        if reduce == "mean":
            g = g / rowptr.diff().clamp(min=1).to(g.dtype).unsqueeze(-1)
        return _transposed_sum(rowptr, col, rowptr_t, col_t, perm_t, g, weight)

    def _at_winner(rowptr: Tensor, col: Tensor, arg: Tensor, v: Tensor, weight: Tensor | None) -> Tensor:
        """``P(v, w)``: ``w[p*]·v[col p*]`` at the recorded max/min winners; 0 on empty rows."""
        num_edges = col.numel()
        empty = arg < 0
        if num_edges == 0:
            return v.new_zeros(arg.shape)
        position = (rowptr[:-1].unsqueeze(-1) + arg.long()).clamp(0, num_edges - 1)  # [R, F]
        out = v.gather(0, col.long()[position])
        if weight is not None:
            out = out * weight[position]
        return out.masked_fill(empty, 0)

    def _aggregate_setup(ctx, inputs, output):
        rowptr, col, rowptr_t, col_t, perm_t, x, weight, reduce = inputs
        ctx.reduce = _reference.check_reduce(reduce)
        ctx.num_src = x.size(0)
        ctx.save_for_backward(rowptr, col, rowptr_t, col_t, perm_t, x, weight, output[1])

    def _aggregate_backward(ctx, grad_out, _grad_arg):
        rowptr, col, rowptr_t, col_t, perm_t, x, weight, arg = ctx.saved_tensors
        grad_out = grad_out.contiguous()
        grad_x = grad_w = None
        if ctx.needs_input_grad[5]:
            grad_x = _grad_x(ctx.reduce, rowptr, col, rowptr_t, col_t, perm_t, arg, grad_out, weight, ctx.num_src)
        if weight is not None and ctx.needs_input_grad[6]:
            grad_w = torch.ops.gnnlab.aggregate_weight_backward(rowptr, col, x, grad_out, arg, ctx.reduce)
        return None, None, None, None, None, grad_x, grad_w, None

    def _weight_backward_setup(ctx, inputs, output):
        rowptr, col, x, grad_out, arg, reduce = inputs
        ctx.reduce = _reference.check_reduce(reduce)
        ctx.save_for_backward(rowptr, col, x, grad_out, arg)

    def _weight_backward_backward(ctx, u):
        rowptr, col, x, grad_out, arg = ctx.saved_tensors
        u = u.contiguous()
        grad_x = grad_g = None
        need_x, need_g = ctx.needs_input_grad[2], ctx.needs_input_grad[3]
        extremum = ctx.reduce in ("max", "min")
        if need_x or (need_g and not extremum):
            rowptr_t, col_t, perm_t = _transpose(rowptr, col, x.size(0))
        if need_x:
            grad_x = _grad_x(ctx.reduce, rowptr, col, rowptr_t, col_t, perm_t, arg, grad_out, u, x.size(0))
        if need_g:
            if extremum:
                grad_g = _at_winner(rowptr, col, arg, x, u)
            else:
                grad_g, _ = torch.ops.gnnlab.aggregate(rowptr, col, rowptr_t, col_t, perm_t, x, u, ctx.reduce)
        return None, None, grad_x, grad_g, None, None

    def _extremum_x_backward_setup(ctx, inputs, output):
        rowptr, col, rowptr_t, col_t, perm_t, arg, grad_out, weight, num_src = inputs
        ctx.save_for_backward(rowptr, col, arg, grad_out, weight)

    def _extremum_x_backward_backward(ctx, v):
        rowptr, col, arg, grad_out, weight = ctx.saved_tensors
        v = v.contiguous()
        grad_g = grad_w = None
        if ctx.needs_input_grad[6]:
            grad_g = _at_winner(rowptr, col, arg, v, weight)
        if weight is not None and ctx.needs_input_grad[7]:
            grad_w = torch.ops.gnnlab.aggregate_weight_backward(rowptr, col, v, grad_out, arg, "max")
        return None, None, None, None, None, None, grad_g, grad_w, None

    torch.library.register_autograd("gnnlab::aggregate", _aggregate_backward, setup_context=_aggregate_setup)
    torch.library.register_autograd(
        "gnnlab::aggregate_weight_backward", _weight_backward_backward, setup_context=_weight_backward_setup
    )
    torch.library.register_autograd(
        "gnnlab::aggregate_extremum_x_backward", _extremum_x_backward_backward, setup_context=_extremum_x_backward_setup
    )


def aggregate_csr(
    rowptr: Tensor,
    col: Tensor,
    rowptr_t: Tensor,
    col_t: Tensor,
    perm_t: Tensor,
    x: Tensor,
    weight: Tensor | None = None,
    reduce: str = "sum",
) -> tuple[Tensor, Tensor]:
    """The raw op on CSR tensors, ``weight`` in CSR order; returns ``(out, arg)``.

    ``arg`` records the winning edge of max/min for the backward pass; its encoding belongs to the
    backend (the extension stores int32 slots within the row, the reference int64 CSR positions).

    Raises:
        ValueError: naming the argument, on both backends, unless ``rowptr`` ``[R + 1]`` (int64, from 0
        to ``E``, non-decreasing), ``col`` ``[E]`` (int32/int64 in ``[0, num_src)``), ``rowptr_t``
        ``[num_src + 1]`` (the same for the transposed CSR), ``col_t`` ``[E]`` (in ``[0, R)``), ``perm_t``
        ``[E]`` (int64 in ``[0, E)``), ``x`` ``[num_src, F]`` floating and ``weight`` ``[E]`` of ``x``'s
        dtype fit together. Ranges only: the transposed CSR must be the transpose of the forward one.
    """
    reduce = _reference.check_reduce(reduce)
    if _loader.use_extension() and x.device.type in ("cpu", "cuda"):
        return torch.ops.gnnlab.aggregate(rowptr, col, rowptr_t, col_t, perm_t, x, weight, reduce)
    out = _reference.aggregate(rowptr, col, x, weight, reduce)
    # The reference does not read the transposed CSR, but it is refused there as by the extension.
    _reference.check_transposed_csr(rowptr, col, rowptr_t, col_t, perm_t, x.size(0))
    return out


def _aggregate_flat(csr: tuple[Tensor, ...], x: Tensor, weight: Tensor | None, reduce: str, num_rows: int) -> Tensor:
    """:func:`aggregate_csr` (``csr``: its first five arguments) of ``x`` ``[n, *]`` flattened to ``[n, F]``;
    returns ``[num_rows, *]``."""
    trailing = x.shape[1:]
    out, _ = aggregate_csr(*csr, x.reshape(x.size(0), trailing.numel()), weight, reduce)
    return out.reshape(num_rows, *trailing)


def edges_by_source(graph: Graph) -> Tensor:
    """``[E]`` int64 original edge id of each position of the transposed CSR (edges grouped by source)."""
    return graph.derive("edges_by_source", lambda: graph.perm.index_select(0, graph.perm_t))


def _edge_reduction(graph: Graph, side: str) -> tuple[Tensor, ...]:
    """The CSR arrays (``aggregate_csr``'s first five arguments) that reduce per-edge rows, in the original
    edge order, into the nodes of one side: targets (``"dst"``) or sources (``"src"``). The CSR's
    ``perm`` (or its source-side counterpart) addresses the rows directly: nothing is sorted or copied."""
    ones = graph.derive("edge_offsets", lambda: torch.arange(graph.num_edges + 1, device=graph.perm.device))
    if side == "dst":
        return graph.rowptr, graph.perm, ones, graph.edge_index[1], graph.position
    edge_ids = edges_by_source(graph)
    position = graph.derive("edges_by_source_inverse", lambda: _reference.inverse_permutation(edge_ids))
    return graph.rowptr_t, edge_ids, ones, graph.edge_index[0], position


def _reduce_edges(op: str, messages: Tensor, graph: Graph, side: str, reduce: str) -> Tensor:
    """``out[v] = reduce_{e: v is the side's end of e} messages[e]`` (:func:`_edge_reduction`), ``[nodes, *]``."""
    if messages.size(0) != graph.num_edges:
        raise ValueError(f"{op}: {messages.size(0)} messages for {graph.num_edges} edges")
    num_rows = graph.num_dst if side == "dst" else graph.num_src
    return _aggregate_flat(_edge_reduction(graph, side), messages, None, reduce, num_rows)


def aggregate(x: Tensor, graph: Graph, edge_weight: Tensor | None = None, reduce: str = "sum") -> Tensor:
    """Aggregate source features into targets: ``out[i] = reduce_{j -> i} w_ji · x[j]``.

    Args:
        x: ``[num_src, F]`` (or ``[num_src, *]``, flattened and restored) node features.
        graph: the cached structure of the graph (:meth:`Graph.from_edge_index`).
        edge_weight: optional ``[E]`` per-edge weights in the ORIGINAL edge order.
        reduce: ``"sum"``, ``"mean"``, ``"max"`` or ``"min"``.

    Returns:
        ``[num_dst, F]`` (or ``[num_dst, *]``).

    Raises:
        ValueError: wrong shapes, dtypes, or a graph that does not fit ``x``.
    """
    if not isinstance(graph, Graph):
        raise TypeError(f"aggregate: graph must be a Graph, got {type(graph).__name__}")
    if x.size(0) != graph.num_src:
        raise ValueError(f"aggregate: x has {x.size(0)} rows but the graph has {graph.num_src} source nodes")
    weight = None
    if edge_weight is not None:
        if edge_weight.shape != (graph.num_edges,):
            raise ValueError(f"aggregate: edge_weight must have shape [{graph.num_edges}], got {list(edge_weight.shape)}")
        weight = edge_weight.index_select(0, graph.perm)
    csr = graph.rowptr, graph.col, graph.rowptr_t, graph.col_t, graph.perm_t
    return _aggregate_flat(csr, x, weight, reduce, graph.num_dst)


def reduce_messages(messages: Tensor, graph: Graph, reduce: str = "sum") -> Tensor:
    """Reduce per-edge messages into their targets without sorting or copying them.

    For layers whose messages cannot be formed inside the kernel (they mix edge features, gates…):
    ``out[i] = reduce_{e: target(e) = i} messages[e]``, with ``messages`` in the ORIGINAL edge
    order (:func:`_edge_reduction`).

    Args:
        messages: ``[E, *]`` per-edge messages, in the order of ``graph.edge_index``.
        graph: the :class:`Graph` the messages flow over.
        reduce: ``"sum"``, ``"mean"``, ``"max"`` or ``"min"``.
    """
    return _reduce_edges("reduce_messages", messages, graph, "dst", reduce)
