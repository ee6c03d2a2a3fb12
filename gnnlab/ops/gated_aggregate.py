"""Edge-gated aggregation (GatedGCN's message passing) without materialising the gates or the gated messages.

For every edge ``e = j -> i`` of a :class:`~gnnlab.ops.graph.Graph`::

    e_hat[e] = edge_in[e] + x_dst[i] + x_src[j]
    num[i]   = Σ_{e -> i} σ(e_hat[e]) ⊙ values[j]
    den[i]   = Σ_{e -> i} σ(e_hat[e])

(σ the logistic sigmoid, feature-wise). The compiled kernel (``torch.ops.gnnlab.gated_aggregate``)
walks the CSR by target once: it writes ``e_hat`` (the layer's edge output needs it) and keeps
the gates and the ``E × F`` gated messages in registers. The backward takes two passes, without
atomics: by target, it evaluates σ(e_hat) once and writes the gradient of ``e_hat`` and σ·∂num; by
source, it sums both. A double backward (``create_graph``)
takes a plain-torch formula of the same gradients, which autograd differentiates to any order.
The reference path (``backend_scope("torch")``, and devices without a kernel) composes
:func:`gather_src`/:func:`gather_dst`/:func:`reduce_messages`. The CUDA kernels are compiled but have
not been run on a GPU.
"""
from __future__ import annotations

import torch
from torch import Tensor

from gnnlab.ops import _loader
from gnnlab.ops.aggregate import edges_by_source, reduce_messages
from gnnlab.ops.gather import gather_dst, gather_src
from gnnlab.ops.graph import Graph

if _loader.extension_available():
    from gnnlab.ops.aggregate import _rows

    @torch.library.register_fake("gnnlab::gated_aggregate")
    def _gated_aggregate_fake(rowptr, col, edge_id, rowptr_t, edge_id_t, edge_in, x_dst, x_src, values):
        rows, width = rowptr.size(0) - 1, x_src.size(1)
        return edge_in.new_empty(edge_in.shape), x_dst.new_empty(rows, width), x_dst.new_empty(rows, width)

    @torch.library.register_fake("gnnlab::gated_aggregate_backward")
    def _gated_aggregate_backward_fake(rowptr, col, edge_id, rowptr_t, edge_id_t, e_hat, values, g_e, g_num, g_den,
                                       need_edge, need_values):
        empty = values.new_empty(0)
        return (e_hat.new_empty(e_hat.shape) if need_edge else empty,
                g_num.new_empty(g_num.shape) if need_edge else empty,
                values.new_empty(values.shape) if need_edge else empty,
                values.new_empty(values.shape) if need_values else empty)

    def _edge_ends(rowptr: Tensor, col: Tensor, edge_id: Tensor) -> tuple[Tensor, Tensor]:
        """``(src, dst)`` ``[E]`` int64 of every edge in edge-id order, rebuilt from the CSR."""
        num_edges = col.numel()
        rows = _rows(rowptr, num_edges)
        src = torch.empty(num_edges, dtype=torch.long, device=col.device).index_put_((edge_id,), col.long())
        dst = torch.empty(num_edges, dtype=torch.long, device=col.device).index_put_((edge_id,), rows)
        return src, dst

    def _backward_formula(rowptr, col, edge_id, e_hat, values, g_e, g_num, g_den):
        """The gradients as plain differentiable torch (for ``create_graph``): any order is exact."""
        src, dst = _edge_ends(rowptr, col, edge_id)
        s = torch.sigmoid(e_hat)
        gn = g_num.index_select(0, dst)
        d_e = g_e + s * (1 - s) * (values.index_select(0, src) * gn + g_den.index_select(0, dst))
        d_dst = d_e.new_zeros(g_num.shape).index_add(0, dst, d_e)
        d_src = d_e.new_zeros(values.shape).index_add(0, src, d_e)
        d_val = d_e.new_zeros(values.shape).index_add(0, src, s * gn)
        return d_e, d_dst, d_src, d_val

    def _setup(ctx, inputs, output):
        rowptr, col, edge_id, rowptr_t, edge_id_t, _edge_in, _x_dst, _x_src, values = inputs
        ctx.save_for_backward(rowptr, col, edge_id, rowptr_t, edge_id_t, values, output[0])

    def _backward(ctx, g_e, g_num, g_den):
        rowptr, col, edge_id, rowptr_t, edge_id_t, values, e_hat = ctx.saved_tensors
        need_edge = any(ctx.needs_input_grad[5:8])
        need_values = ctx.needs_input_grad[8]
        g_e, g_num, g_den = g_e.contiguous(), g_num.contiguous(), g_den.contiguous()
        if torch.is_grad_enabled():
            d_e, d_dst, d_src, d_val = _backward_formula(rowptr, col, edge_id, e_hat, values, g_e, g_num, g_den)
        else:
            d_e, d_dst, d_src, d_val = torch.ops.gnnlab.gated_aggregate_backward(
                rowptr, col, edge_id, rowptr_t, edge_id_t, e_hat, values, g_e, g_num, g_den, need_edge, need_values)
        grads = (d_e, d_dst, d_src, d_val)
        return (None,) * 5 + tuple(g if need else None for g, need in zip(grads, ctx.needs_input_grad[5:]))

    torch.library.register_autograd("gnnlab::gated_aggregate", _backward, setup_context=_setup)


def _check(edge_in: Tensor, x_dst: Tensor, x_src: Tensor, values: Tensor, graph: Graph) -> None:
    op = "gated_aggregate"
    if not isinstance(graph, Graph):
        raise TypeError(f"{op}: graph must be a Graph, got {type(graph).__name__}")
    width = x_src.size(-1) if x_src.dim() == 2 else None
    inputs = (("edge_in", edge_in, graph.num_edges, "edges"), ("x_dst", x_dst, graph.num_dst, "target nodes"),
              ("x_src", x_src, graph.num_src, "source nodes"), ("values", values, graph.num_src, "source nodes"))
    for name, t, rows, what in inputs:
        if t.dim() != 2 or t.size(0) != rows or t.size(1) != width:
            raise ValueError(f"{op}: {name} must have shape [{rows}, {width}] ({what}, features), got {list(t.shape)}")
        if t.dtype != x_src.dtype or not t.is_floating_point():
            raise ValueError(f"{op}: {name} must be floating point of one dtype with x_src ({x_src.dtype}), "
                             f"got {t.dtype}")
        if t.device != x_src.device:
            raise ValueError(f"{op}: {name} is on {t.device}, x_src on {x_src.device}")


def gated_aggregate(edge_in: Tensor, x_dst: Tensor, x_src: Tensor, values: Tensor,
                    graph: Graph) -> tuple[Tensor, Tensor, Tensor]:
    """Gate every edge ``j -> i`` by ``σ(edge_in[e] + x_dst[i] + x_src[j])``; sum the gated ``values[j]`` into ``i``.

    Args:
        edge_in: ``[E, F]`` per-edge term, in the order of ``graph.edge_index``.
        x_dst: ``[num_dst, F]`` term of the target node.
        x_src: ``[num_src, F]`` term of the source node.
        values: ``[num_src, F]`` what each source sends.
        graph: the :class:`~gnnlab.ops.graph.Graph` the edges come from.

    Returns:
        ``(e_hat, num, den)``: the gate logits ``[E, F]`` (edge order), ``Σ σ(e_hat) ⊙ values[j]`` and
        ``Σ σ(e_hat)``, both ``[num_dst, F]`` (zero for a node without incoming edges).

    Raises:
        ValueError: shapes, dtypes or devices that do not fit together or the graph.
    """
    _check(edge_in, x_dst, x_src, values, graph)
    if _loader.use_extension() and x_src.device.type in ("cpu", "cuda"):
        return torch.ops.gnnlab.gated_aggregate(graph.rowptr, graph.col, graph.perm, graph.rowptr_t,
                                                edges_by_source(graph), edge_in, x_dst, x_src, values)
    e_hat = edge_in + gather_dst(x_dst, graph) + gather_src(x_src, graph)
    gate = torch.sigmoid(e_hat)
    # One reduction for both sums: (E, 2, F) -> (N, 2, F).
    sums = reduce_messages(torch.stack([gate * gather_src(values, graph), gate], dim=1), graph)
    return e_hat, sums[:, 0], sums[:, 1]
