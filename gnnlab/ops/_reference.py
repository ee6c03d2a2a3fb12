"""Plain-torch definitions of every gnnlab op.

Each function here is the specification of an op: the compiled kernels must agree with it,
it is the fallback when ``gnnlab._C`` is missing, and it is the oracle in the tests.
"""
from __future__ import annotations

import operator
from types import MappingProxyType

import torch
from torch import Tensor


def shape_of(value) -> list[int] | str:
    """The shape of a tensor as a list, or the type name of anything else (for error messages)."""
    return list(value.shape) if isinstance(value, Tensor) else type(value).__name__


def inverse_permutation(perm: Tensor) -> Tensor:
    """``inverse`` with ``inverse[perm] = arange(len(perm))``."""
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(perm.numel(), device=perm.device)
    return inverse


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


def check_count(value, name: str, op: str) -> None:
    """Raise unless ``value`` is a non-negative integer (``ValueError``; ``TypeError`` for a non-integer)."""
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(f"{op}: {name} must be an integer, got {type(value).__name__}") from None
    if number < 0:
        raise ValueError(f"{op}: {name} must be non-negative, got {number}")


def check_offsets(rowptr: Tensor, num_entries: int, name: str, op: str) -> None:
    """Raise ``ValueError`` unless ``rowptr`` is 1-D int64 CSR offsets: at least one entry, starting at 0,
    ending at ``num_entries`` and non-decreasing (so every entry lies in ``[0, num_entries]``). O(length).
    Under ``torch.compile`` only the shape and dtype are checked (a value check would read the device
    inside the graph); the compiled graph's inputs were checked where the :class:`Graph` was built."""
    if not isinstance(rowptr, Tensor) or rowptr.dim() != 1 or rowptr.numel() < 1:
        raise ValueError(f"{op}: {name} must be 1-D with at least one entry, got shape {shape_of(rowptr)}")
    if rowptr.dtype != torch.long:
        raise ValueError(f"{op}: {name} must be int64, got {rowptr.dtype}")
    if torch.compiler.is_compiling():
        return
    step = rowptr.diff().min() if rowptr.numel() > 1 else rowptr.new_zeros(())
    first, last, smallest_step = torch.stack([rowptr[0], rowptr[-1], step]).tolist()  # one host read
    if first != 0 or last != num_entries:
        raise ValueError(f"{op}: {name} must start at 0 and end at num_edges={num_entries}, got {first} .. {last}")
    if smallest_step < 0:
        raise ValueError(f"{op}: {name} must be non-decreasing")


def check_indices(index: Tensor, length: int | None, bound: int, name: str, bound_name: str, op: str, allow_int32: bool = True) -> None:
    """Raise ``ValueError`` unless ``index`` is a 1-D int64 (or int32 when ``allow_int32``) tensor of
    ``length`` entries (any length when ``None``), each in ``[0, bound)``. O(length); the range is not
    read under ``torch.compile`` (see :func:`check_offsets`)."""
    if not isinstance(index, Tensor) or index.dim() != 1:
        raise ValueError(f"{op}: {name} must be 1-D, got shape {shape_of(index)}")
    allowed = (torch.int32, torch.int64) if allow_int32 else (torch.int64,)
    if index.dtype not in allowed:
        raise ValueError(f"{op}: {name} must be {'int32 or int64' if allow_int32 else 'int64'}, got {index.dtype}")
    if length is not None and index.numel() != length:
        raise ValueError(f"{op}: {name} must have {length} entries, got {index.numel()}")
    if index.numel() == 0 or torch.compiler.is_compiling():
        return
    lo, hi = torch.stack(torch.aminmax(index.long())).tolist()  # one host read
    if lo < 0:
        raise ValueError(f"{op}: {name} has a negative entry {lo} (out of range [0, {bound}), {bound_name})")
    if hi >= bound:
        raise ValueError(f"{op}: {name} has entry {hi} out of range [0, {bound}) ({bound_name})")


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


REDUCTIONS = ("sum", "mean", "max", "min")


def check_reduce(reduce: str) -> str:
    """Normalise a reduction name (``add`` → ``sum``, ``amax`` → ``max``, ``amin`` → ``min``)."""
    name = {"add": "sum", "amax": "max", "amin": "min"}.get(reduce, reduce)
    if name not in REDUCTIONS:
        raise ValueError(f"reduce must be one of {REDUCTIONS}, got {reduce!r}")
    return name


def check_aggregate(rowptr: Tensor, col: Tensor, x: Tensor, weight: Tensor | None) -> None:
    """Raise ``ValueError`` naming the problem unless the CSR, ``x`` and ``weight`` fit together."""
    if not isinstance(col, Tensor) or col.dim() != 1:
        raise ValueError(f"aggregate: col must be a 1-D int32/int64 tensor, got {getattr(col, 'shape', type(col).__name__)}")
    if x.dim() != 2 or not x.is_floating_point():
        raise ValueError(f"aggregate: x must be a 2-D floating tensor [num_nodes, features], got {x.dtype} {list(x.shape)}")
    num_edges = col.numel()
    if weight is not None:
        if weight.shape != (num_edges,):
            raise ValueError(f"aggregate: weight must have shape [{num_edges}] (one per edge), got {list(weight.shape)}")
        if weight.dtype != x.dtype:
            raise ValueError(f"aggregate: weight dtype {weight.dtype} does not match x dtype {x.dtype}")
    check_offsets(rowptr, num_edges, "rowptr", "aggregate")
    check_indices(col, num_edges, x.size(0), "col", "rows of x", "aggregate")


def check_transposed_csr(rowptr: Tensor, col: Tensor, rowptr_t: Tensor, col_t: Tensor, perm_t: Tensor, num_src: int) -> None:
    """Raise ``ValueError`` naming the argument unless the transposed CSR that the backward walks fits the
    forward CSR: ``rowptr_t`` ``[num_src + 1]`` offsets ending at ``E``, ``col_t`` ``[E]`` rows of the CSR in
    ``[0, R)``, ``perm_t`` ``[E]`` int64 CSR positions in ``[0, E)``. Ranges only; that the arrays are the
    exact transpose is the caller's contract (:class:`~gnnlab.ops.Graph` builds them). Run after
    :func:`check_aggregate` (same checks as the C++ ``check_transposed_csr``)."""
    num_rows, num_edges = rowptr.numel() - 1, col.numel()
    if not isinstance(rowptr_t, Tensor) or rowptr_t.dim() != 1 or rowptr_t.numel() != num_src + 1:
        raise ValueError(f"aggregate: rowptr_t must have num_src + 1 = {num_src + 1} entries (one row per source "
                         f"node), got shape {shape_of(rowptr_t)}")
    check_offsets(rowptr_t, num_edges, "rowptr_t", "aggregate")
    check_indices(col_t, num_edges, num_rows, "col_t", "rows of the CSR", "aggregate")
    check_indices(perm_t, num_edges, num_edges, "perm_t", "positions of the CSR", "aggregate", allow_int32=False)


def aggregate(rowptr: Tensor, col: Tensor, x: Tensor, weight: Tensor | None = None, reduce: str = "sum") -> tuple[Tensor, Tensor]:
    """Fused-aggregation specification: ``out[i] = reduce_{e ∈ row i} weight[e] · x[col[e]]``.

    Materialises the ``[E, F]`` messages (the compiled kernel does not). ``sum``; ``mean`` divides by
    the number of edges of the row; ``max``/``min`` return in ``arg[i, f]`` the CSR position of the
    winning edge, the FIRST one in CSR order on ties, and the gradient goes to that edge only. A NaN
    message wins over every number (the first NaN in CSR order), so NaN propagates as in
    ``torch.scatter_reduce(..., "amax")`` whatever the edge order.
    Rows without edges give 0 (and ``arg = -1``). Differentiable in ``x`` and ``weight``.

    Returns:
        ``(out [R, F], arg)`` with ``arg`` ``[R, F]`` int64 for max/min and an empty tensor otherwise.
    """
    reduce = check_reduce(reduce)
    check_aggregate(rowptr, col, x, weight)
    num_rows, num_edges, feat = rowptr.numel() - 1, col.numel(), x.size(1)
    degree = rowptr.diff()
    dst = torch.repeat_interleave(torch.arange(num_rows, device=x.device), degree)
    # Accumulate in float32 for half types, as the kernel does.
    acc_dtype = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    msg = x.index_select(0, col.long()).to(acc_dtype)  # (E, F)
    if weight is not None:
        msg = msg * weight.to(acc_dtype).unsqueeze(-1)
    if reduce in ("sum", "mean"):
        out = msg.new_zeros(num_rows, feat).index_add(0, dst, msg)
        if reduce == "mean":
            out = out / degree.clamp(min=1).to(acc_dtype).unsqueeze(-1)
        return out.to(x.dtype), torch.empty(0, dtype=torch.long, device=x.device)
    amax = "amax" if reduce == "max" else "amin"
    index = dst.unsqueeze(-1).expand(-1, feat)
    best = msg.new_zeros(num_rows, feat).scatter_reduce(0, index, msg.detach(), amax, include_self=False)
    position = torch.arange(num_edges, device=x.device).unsqueeze(-1).expand(-1, feat)
    # torch's amax/amin propagate NaN; the winner is then the first NaN message (NaN != NaN).
    best_e = best.index_select(0, dst)
    hit = (msg.detach() == best_e) | (msg.detach().isnan() & best_e.isnan())
    winner = torch.where(hit, position, torch.full_like(position, num_edges))
    arg = torch.full((num_rows, feat), num_edges, dtype=torch.long, device=x.device).scatter_reduce(
        0, index, winner, "amin", include_self=True
    )
    empty = degree == 0
    arg = torch.where(empty.unsqueeze(-1), torch.full_like(arg, -1), arg)
    # Row E of the padded messages is zero: empty rows read it, and stay connected to x for autograd.
    padded = torch.cat([msg, msg.new_zeros(1, feat)])
    out = padded.gather(0, torch.where(arg < 0, torch.full_like(arg, num_edges), arg))
    return out.to(x.dtype), arg


CN_MODES = MappingProxyType({"common": 0, "src_only": 1, "dst_only": 2})


def check_common_neighbor_query(rowptr: Tensor, col: Tensor, src: Tensor, dst: Tensor, edge_mask: Tensor | None, mode: int) -> None:
    """The checks of the common-neighbour ops (same as the C++ ones), raising ``ValueError`` naming the argument:
    ``mode`` in 0..2; ``rowptr`` ``[N + 1]`` int64 offsets ending at ``E``; ``col`` ``[E]`` int32/int64 in
    ``[0, N)``; ``src``/``dst`` ``[B]`` int64 in ``[0, N)``; ``edge_mask`` ``[E]`` bool/uint8. O(E + B).
    Sorted, duplicate-free rows are not checked here (the public ops check them once per graph)."""
    op = "common neighbours"
    if mode not in (0, 1, 2):
        raise ValueError(f"{op}: mode must be 0 (both), 1 (first only) or 2 (second only), got {mode}")
    if col.dim() != 1:
        raise ValueError(f"{op}: col must be 1-D, got shape {list(col.shape)}")
    if src.dim() != 1 or dst.dim() != 1 or src.shape != dst.shape:
        raise ValueError(
            f"{op}: src and dst must be 1-D with one entry per query pair, got shapes "
            f"{list(src.shape)} and {list(dst.shape)}"
        )
    check_offsets(rowptr, col.numel(), "rowptr", op)
    num_nodes = rowptr.numel() - 1
    check_indices(col, col.numel(), num_nodes, "col", "num_nodes", op)
    if edge_mask is not None:
        if edge_mask.dim() != 1 or edge_mask.numel() != col.numel():
            raise ValueError(
                f"{op}: edge_mask must have one entry per adjacency entry ({col.numel()}), "
                f"got shape {list(edge_mask.shape)}"
            )
        if edge_mask.dtype not in (torch.bool, torch.uint8):
            raise ValueError(f"{op}: edge_mask must be bool or uint8, got {edge_mask.dtype}")
    check_indices(src, None, num_nodes, "src", "num_nodes", op, allow_int32=False)
    check_indices(dst, None, num_nodes, "dst", "num_nodes", op, allow_int32=False)


def check_node_weight(node_weight: Tensor | None, num_nodes: int) -> None:
    """Raise ``ValueError`` unless ``node_weight`` is ``None`` or a floating ``[num_nodes]`` tensor."""
    if node_weight is None:
        return
    if node_weight.dim() != 1 or node_weight.numel() != num_nodes:
        raise ValueError(f"common neighbours: node_weight must have shape [num_nodes={num_nodes}], got {list(node_weight.shape)}")
    if not node_weight.is_floating_point():
        raise ValueError(f"common neighbours: node_weight must be floating point, got {node_weight.dtype}")

def _expand_rows(rowptr: Tensor, col: Tensor, live: Tensor, nodes: Tensor) -> tuple[Tensor, Tensor]:
    """(pair id, neighbour) of every live entry of the rows ``nodes``, grouped by pair, ascending."""
    start, deg = rowptr[nodes], rowptr[nodes + 1] - rowptr[nodes]
    pair = torch.repeat_interleave(torch.arange(nodes.numel(), device=nodes.device), deg)
    offset = torch.arange(pair.numel(), device=nodes.device) - torch.repeat_interleave(torch.cumsum(deg, 0) - deg, deg)
    pos = start[pair] + offset
    keep = live[pos]
    return pair[keep], col[pos[keep]].long()


def common_neighbor_sets(rowptr: Tensor, col: Tensor, src: Tensor, dst: Tensor, edge_mask: Tensor | None = None, mode: int = 0) -> tuple[Tensor, Tensor]:
    """Per query pair ``p`` the ascending set ``N(src[p]) ∩ N(dst[p])`` (mode 0), ``N(src) \\ N(dst)`` (1)
    or ``N(dst) \\ N(src)`` (2) over a sorted, duplicate-free CSR adjacency, entries with
    ``edge_mask == 0`` treated as absent. Returns ``(ptr [B+1], nodes [M])``."""
    check_common_neighbor_query(rowptr, col, src, dst, edge_mask, mode)
    if mode == 2:
        src, dst, mode = dst, src, 1
    num_nodes, num_pairs = rowptr.numel() - 1, src.numel()
    live = torch.ones(col.numel(), dtype=torch.bool, device=col.device) if edge_mask is None else edge_mask.bool()
    pa, na = _expand_rows(rowptr, col, live, src)
    pb, nb = _expand_rows(rowptr, col, live, dst)
    member = torch.isin(pa * num_nodes + na, pb * num_nodes + nb)
    keep = member if mode == 0 else ~member
    pair, nodes = pa[keep], na[keep]
    ptr = torch.zeros(num_pairs + 1, dtype=torch.long, device=col.device)
    ptr[1:] = torch.cumsum(torch.bincount(pair, minlength=num_pairs), 0)
    return ptr, nodes


def common_neighbor_count(rowptr: Tensor, col: Tensor, src: Tensor, dst: Tensor, node_weight: Tensor | None = None, edge_mask: Tensor | None = None, mode: int = 0) -> tuple[Tensor, Tensor]:
    """``(|set(p)|, sum of node_weight over set(p))`` for every pair (see :func:`common_neighbor_sets`)."""
    ptr, nodes = common_neighbor_sets(rowptr, col, src, dst, edge_mask, mode)  # checks the query
    check_node_weight(node_weight, rowptr.numel() - 1)
    count = ptr.diff()
    if node_weight is None:
        return count, torch.empty(0, dtype=torch.double, device=col.device)
    pair = torch.repeat_interleave(torch.arange(src.numel(), device=col.device), count)
    total = torch.zeros(src.numel(), dtype=torch.double, device=col.device)
    total.index_add_(0, pair, node_weight.double()[nodes])
    return count, total.to(node_weight.dtype)


def selective_scan(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    cu_seqlens: Tensor | None = None,
    initial_state: Tensor | None = None,
    per_sequence: bool = True,
):
    """Mamba's selective scan, one step at a time (the specification; ``mamba_ssm``'s semantics).

    For every batch ``b``, channel ``d`` and state ``n``, with ``Δ = softplus(delta + delta_bias)``
    (softplus only when ``delta_softplus``)::

        h[t] = exp(Δ[t] · A[d, n]) · h[t-1] + Δ[t] · B[n, t] · u[t]      (h[-1] = 0)
        y[t] = Σ_n C[n, t] · h[t, n]  +  D[d] · u[t]
        out[t] = y[t] · silu(z[t])                                        (when z is given)

    ``B``/``C`` are ``[channels, N]`` (time-invariant), ``[batch, N, L]`` or grouped
    ``[batch, G, N, L]`` (group ``g`` serves channels ``g·D/G .. (g+1)·D/G - 1``). With
    ``cu_seqlens`` (``[S + 1]`` offsets along ``L``, batch 1) the input holds ``S`` packed sequences
    and the state restarts at zero at each offset. Computes in float32 (float64 for float64 input)
    and returns ``u``'s dtype; the last state ``[batch, channels, N]`` (packed: ``[S, channels, N]``,
    one per sequence; with ``per_sequence=False`` only the state after step ``L - 1``, ``[1, channels, N]``)
    in the compute dtype. ``initial_state`` ``[batch, channels, N]`` replaces ``h[-1] = 0``; packed, the
    first sequence continues from it and the others start at zero.
    """
    dtype_in = u.dtype
    compute = torch.float64 if u.dtype == torch.float64 else torch.float32
    u, delta = u.to(compute), delta.to(compute)
    if delta_bias is not None:
        delta = delta + delta_bias.to(compute).unsqueeze(-1)
    if delta_softplus:
        delta = torch.nn.functional.softplus(delta)
    batch, dim, length = u.shape
    A = A.to(compute)
    dA = torch.exp(delta.unsqueeze(-1) * A.unsqueeze(1))  # (b, d, l, n)

    def per_step(M: Tensor) -> Tensor:  # -> (b, d, l, n)
        M = M.to(compute)
        if M.dim() == 2:  # (d, n)
            return M.view(1, dim, 1, -1).expand(batch, dim, length, -1)
        if M.dim() == 3:  # (b, n, l)
            return M.transpose(1, 2).unsqueeze(1).expand(batch, dim, length, -1)
        groups = M.size(1)  # (b, g, n, l)
        return M.permute(0, 1, 3, 2).repeat_interleave(dim // groups, dim=1)

    dBu = delta.unsqueeze(-1) * per_step(B) * u.unsqueeze(-1)  # (b, d, l, n)
    Ct = per_step(C)
    keep = torch.ones(length, dtype=compute, device=u.device)
    if cu_seqlens is not None:
        starts = cu_seqlens[:-1].long()
        keep[starts[starts < length]] = 0  # the state restarts at every sequence
    h = u.new_zeros(batch, dim, A.size(1))
    if initial_state is not None:
        h = initial_state.to(compute)
        if length:
            keep[0] = 1  # the first sequence continues from initial_state
    ys, finals = [], {}
    offsets = [] if cu_seqlens is None else cu_seqlens.tolist()
    ends = {e - 1: k for k, (s, e) in enumerate(zip(offsets[:-1], offsets[1:])) if e > s}  # non-empty sequences
    for t in range(length):
        h = dA[:, :, t] * h * keep[t] + dBu[:, :, t]
        ys.append((h * Ct[:, :, t]).sum(-1))
        if t in ends:
            finals[ends[t]] = h[0]
    y = torch.stack(ys, dim=-1) if length else u.new_zeros(batch, dim, 0)
    if D is not None:
        y = y + u * D.to(compute).unsqueeze(-1)
    if z is not None:
        y = y * torch.nn.functional.silu(z.to(compute))
    out = y.to(dtype_in)
    if not return_last_state:
        return out
    if cu_seqlens is None or not per_sequence:
        return out, h
    # One final state per packed sequence (zeros for an empty one): (S, d, n).
    zero = u.new_zeros(dim, A.size(1))
    return out, torch.stack([finals.get(k, zero) for k in range(cu_seqlens.numel() - 1)])


def check_fanouts(num_neighbors, op: str = "neighbor_sample") -> list[int]:
    """The fan-outs ``num_neighbors`` as a list of ints, each ``-1`` (all neighbours) or ``>= 0``.

    Raises:
        TypeError: not a sequence of integers.
        ValueError: a fan-out below ``-1``.
    """
    if isinstance(num_neighbors, (str, bytes, Tensor)) or not hasattr(num_neighbors, "__iter__"):
        raise TypeError(f"{op}: num_neighbors must be a list of integers, got {type(num_neighbors).__name__}")
    fanouts = []
    for hop, k in enumerate(num_neighbors):
        if isinstance(k, bool):
            raise TypeError(f"{op}: num_neighbors[{hop}] must be an integer, got bool")
        try:
            k = operator.index(k)
        except TypeError:
            raise TypeError(f"{op}: num_neighbors[{hop}] must be an integer, got {type(k).__name__}") from None
        if k < -1:
            raise ValueError(f"{op}: num_neighbors[{hop}] must be -1 (all neighbours) or >= 0, got {k}")
        fanouts.append(k)
    return fanouts


def check_neighbor_sample(rowptr: Tensor, col: Tensor, seeds: Tensor, num_neighbors, op: str = "neighbor_sample",
                          check_graph: bool = True) -> list[int]:
    """Raise unless the inputs of :func:`neighbor_sample` are well formed; return the fan-outs as ints.

    ``rowptr`` int64 CSR offsets over ``col`` (start 0, end ``len(col)``, non-decreasing), ``col`` and
    ``seeds`` 1-D int32/int64 with entries in ``[0, N)`` (``N = len(rowptr) - 1``), the fan-outs as
    :func:`check_fanouts` wants them. ``ValueError`` for bad values, ``TypeError`` for a non-integer fan-out.
    Without ``check_graph`` the values of ``rowptr`` and ``col`` are not read (only their dtypes, shapes
    and the two ends of ``rowptr``): for a graph its owner checked once.
    """
    fanouts = check_fanouts(num_neighbors, op)
    if not isinstance(col, Tensor) or col.dim() != 1:
        raise ValueError(f"{op}: col must be 1-D, got shape {shape_of(col)}")
    if check_graph:
        check_offsets(rowptr, col.numel(), "rowptr", op)
    elif not isinstance(rowptr, Tensor) or rowptr.dim() != 1 or rowptr.numel() < 1 or rowptr.dtype != torch.long:
        raise ValueError(f"{op}: rowptr must be 1-D int64 with at least one entry, got {shape_of(rowptr)}")
    elif (int(rowptr[0]), int(rowptr[-1])) != (0, col.numel()):
        raise ValueError(f"{op}: rowptr must start at 0 and end at num_edges={col.numel()}, got "
                         f"{int(rowptr[0])} .. {int(rowptr[-1])}")
    num_nodes = rowptr.numel() - 1
    if check_graph:
        check_indices(col, None, num_nodes, "col", "num_nodes", op)
    elif col.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"{op}: col must be int32 or int64, got {col.dtype}")
    check_indices(seeds, None, num_nodes, "seeds", "num_nodes", op)
    return fanouts


def _first_occurrence(values: Tensor) -> tuple[Tensor, Tensor]:
    """The distinct entries of ``values`` in order of first appearance, and the position of each in ``values``."""
    uniq, inverse = torch.unique(values, return_inverse=True)
    first = torch.full((uniq.numel(),), values.numel(), dtype=torch.long, device=values.device)
    first.scatter_reduce_(0, inverse, torch.arange(values.numel(), device=values.device), "amin")
    order = torch.argsort(first)
    return uniq[order], first[order]


def neighbor_sample(rowptr: Tensor, col: Tensor, seeds: Tensor, num_neighbors: list[int], replace: bool,
                    seed: int, check_graph: bool = True) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Multi-hop uniform neighbour sampling over a CSR adjacency (the specification of the op).

    Row ``v`` of ``(rowptr, col)`` lists the neighbours ``col[rowptr[v]:rowptr[v+1]]`` that ``v`` may
    draw (for message passing ``j -> v``: its in-neighbours, PyG's CSC). Hop ``h`` draws, for every
    node of its frontier, ``num_neighbors[h]`` neighbours: without ``replace`` a uniformly random
    subset of ``min(k, deg)`` distinct CSR entries, with ``replace`` ``k`` independent uniform draws
    (none for a node without neighbours); ``-1`` takes every entry once. The frontier of hop 0 is
    ``seeds`` (every entry, duplicates included); that of hop ``h + 1`` the nodes first reached in hop ``h``.

    Ordering (PyG's ``SamplerOutput`` convention for directed, non-disjoint sampling):

    - ``node``: ``seeds`` as given, then the nodes new in hop 1 in order of first appearance among
      hop 1's edges, then hop 2's, ...; a node reached again maps to its first entry.
    - edges: hop by hop, grouped by the frontier entry they were drawn for (frontier order), by
      ascending CSR position within it.

    ``check_graph=False`` skips the ``O(N + E)`` range checks of ``rowptr`` and ``col`` (seeds and fan-outs
    are always checked): for a graph checked once by its owner.

    Randomness comes from a ``torch.Generator`` seeded with ``seed``; the compiled kernel uses its own
    counter-based generator, so the two paths agree in distribution, not draw for draw (they agree
    exactly when no draw is random: ``-1`` fan-outs or ``deg <= k`` without replacement).

    Returns:
        ``(node [M] int64 global ids, src [S] int64 local index of each sampled neighbour,
        dst [S] int64 local index of the node it was drawn for, edge [S] int64 CSR position,
        num_sampled_nodes [hops + 1] int64, num_sampled_edges [hops] int64)``; the sampled subgraph's
        ``edge_index`` is ``stack([src, dst])`` (messages flow neighbour -> seed side).
    """
    fanouts = check_neighbor_sample(rowptr, col, seeds, num_neighbors, check_graph=check_graph)
    device = rowptr.device
    gen = torch.Generator(device=device).manual_seed(int(seed))
    num_nodes = rowptr.numel() - 1
    seeds = seeds.long()
    local = torch.full((num_nodes,), -1, dtype=torch.long, device=device)
    if seeds.numel():
        uniq, first = _first_occurrence(seeds)
        local[uniq] = first
    nodes, srcs, dsts, edges = [seeds], [], [], []
    sampled_nodes, sampled_edges = [seeds.numel()], []
    frontier, frontier_local, count = seeds, torch.arange(seeds.numel(), device=device), seeds.numel()
    for k in fanouts:
        start = rowptr[frontier]
        deg = rowptr[frontier + 1] - start
        if replace and k >= 0:
            take = torch.where(deg > 0, torch.full_like(deg, k), torch.zeros_like(deg))
            owner = torch.repeat_interleave(torch.arange(frontier.numel(), device=device), take)
            u = torch.rand(owner.numel(), generator=gen, dtype=torch.float64, device=device)
            d = deg[owner]
            pos = start[owner] + torch.minimum((u * d).long(), d - 1)
            # Ascending CSR position within each frontier entry (the kernel's order).
            order = torch.argsort(owner * (col.numel() + 1) + pos)
            owner, pos = owner[order], pos[order]
        else:
            owner = torch.repeat_interleave(torch.arange(frontier.numel(), device=device), deg)
            seg_start = torch.cumsum(deg, 0) - deg  # first slot of each frontier entry
            pos = start[owner] + torch.arange(owner.numel(), device=device) - seg_start[owner]
            if k >= 0:
                # Random keys, sorted within each entry: the k smallest keys are a uniform k-subset.
                keys = torch.rand(owner.numel(), generator=gen, device=device)
                by_key = torch.argsort(keys)
                grouped = by_key[torch.sort(owner[by_key], stable=True).indices]
                rank = torch.empty_like(owner)
                rank[grouped] = torch.arange(owner.numel(), device=device) - seg_start[owner[grouped]]
                keep = rank < k
                owner, pos = owner[keep], pos[keep]
        nbr = col[pos].long()
        fresh = nbr[local[nbr] < 0]
        new_nodes = _first_occurrence(fresh)[0] if fresh.numel() else fresh
        local[new_nodes] = count + torch.arange(new_nodes.numel(), device=device)
        srcs.append(local[nbr])
        dsts.append(frontier_local[owner])
        edges.append(pos)
        nodes.append(new_nodes)
        sampled_nodes.append(new_nodes.numel())
        sampled_edges.append(pos.numel())
        frontier, frontier_local = new_nodes, count + torch.arange(new_nodes.numel(), device=device)
        count += new_nodes.numel()
    empty = torch.empty(0, dtype=torch.long, device=device)
    return (torch.cat(nodes), torch.cat(srcs) if srcs else empty, torch.cat(dsts) if dsts else empty,
            torch.cat(edges) if edges else empty, torch.tensor(sampled_nodes, dtype=torch.long),
            torch.tensor(sampled_edges, dtype=torch.long))
