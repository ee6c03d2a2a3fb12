"""Common-neighbour ops for link prediction over a :class:`~gnnlab.ops.Graph` with sorted rows.

For a batch of query pairs ``(i, j)``, with ``N(u)`` the sources of the edges into ``u`` (a row of
the forward CSR):

- :func:`common_neighbor_count`, :func:`adamic_adar`, :func:`resource_allocation`: the classic
  heuristics ``|N(i) ∩ N(j)|``, ``Σ_k 1 / log d_k`` and ``Σ_k 1 / d_k`` over common neighbours ``k``.
- :func:`common_neighbor_sets`: the sets themselves, ``N(i) ∩ N(j)`` or the one-sided
  ``N(i) \\ N(j)`` / ``N(j) \\ N(i)`` that NCNC's completion needs, built count → scan → fill.
- :meth:`PairSets.aggregate`: ``out[p] = Σ_{k ∈ set(p)} w_pk · h[k]`` through the fused aggregation
  (no ``[M, F]`` gather), differentiable in ``h`` and in the per-element weights ``w``.

The ops need every row strictly ascending (sorted, no duplicate edges), which
:meth:`Graph.undirected` guarantees; the check runs once per graph. Every op takes an optional
``edge_mask``, one entry per edge in edge order (``0`` = absent), like an ``edge_weight``: that is
how a training batch hides its own target links (:func:`target_link_mask`) without rebuilding the
graph, and the same mask passes to :func:`gnnlab.ops.aggregate` for message passing. The kernels
pick a linear merge or a galloping search per pair by the ratio of the two degrees (see
``csrc/ops/common/intersect.h``). The CUDA kernels are compiled but have not been run on a GPU.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from gnnlab.ops import _loader, _reference
from gnnlab.ops.aggregate import aggregate_csr
from gnnlab.ops.csr import coo_to_csr
from gnnlab.ops.graph import Graph, csr_targets

MODES = _reference.CN_MODES

if _loader.extension_available():

    @torch.library.register_fake("gnnlab::common_neighbor_count")
    def _count_fake(rowptr, col, src, dst, node_weight, edge_mask, mode):
        total = src.new_empty(src.size(0) if node_weight is not None else 0, dtype=torch.double)
        return src.new_empty(src.size(0)), total if node_weight is None else total.to(node_weight.dtype)

    @torch.library.register_fake("gnnlab::common_neighbor_sets")
    def _sets_fake(rowptr, col, src, dst, edge_mask, mode):
        size = torch.library.get_ctx().new_dynamic_size()
        return src.new_empty(src.size(0) + 1), src.new_empty(size)


def _path(t: Tensor):
    """Where the ops on ``t`` run: ``torch.ops.gnnlab`` (compiled) or :mod:`gnnlab.ops._reference` (same signatures)."""
    return torch.ops.gnnlab if _loader.use_extension() and t.device.type in ("cpu", "cuda") else _reference


def _rows_ascending(graph: Graph) -> bool:
    col, num_edges = graph.col, graph.num_edges
    if num_edges < 2:
        return True
    # Each entry must exceed its predecessor unless it starts a row.
    starts = torch.zeros(num_edges + 1, dtype=torch.bool, device=col.device)
    starts[graph.rowptr] = True
    return bool(((col[1:] > col[:-1]) | starts[1:num_edges]).all())


def _check_graph(graph: Graph, op: str, sorted_rows: bool = True) -> None:
    """Raise unless ``graph`` is a :class:`Graph` whose rows are strictly ascending (checked once per graph)."""
    if not isinstance(graph, Graph):
        raise TypeError(f"{op}: graph must be a gnnlab.ops.Graph, got {type(graph).__name__}")
    if sorted_rows and not graph.derive("rows_ascending", lambda: _rows_ascending(graph)):
        raise ValueError(f"{op}: the neighbours (col) of every node must be strictly ascending (sorted, no "
                         f"duplicate edges); build the graph with gnnlab.ops.Graph.undirected(edge_index, num_nodes)")


def _in_csr_order(graph: Graph) -> bool:
    """Whether edge order is CSR order (``perm`` the identity, as for :meth:`Graph.undirected`); memoised."""
    return graph.derive("edge_order_is_csr", lambda: bool(torch.equal(
        graph.perm, torch.arange(graph.num_edges, device=graph.perm.device))))


def _check_edge_mask(graph: Graph, edge_mask: Tensor | None, op: str) -> Tensor | None:
    """``edge_mask`` in CSR order; ``ValueError`` unless it is ``None`` or a bool/uint8 ``[E]`` tensor."""
    if edge_mask is None:
        return None
    if not isinstance(edge_mask, Tensor) or edge_mask.dim() != 1 or edge_mask.numel() != graph.num_edges:
        raise ValueError(f"{op}: edge_mask must have one entry per graph edge ({graph.num_edges}), "
                         f"got shape {_reference.shape_of(edge_mask)}")
    if edge_mask.dtype not in (torch.bool, torch.uint8):
        raise ValueError(f"{op}: edge_mask must be bool or uint8, got {edge_mask.dtype}")
    return edge_mask if _in_csr_order(graph) else edge_mask.index_select(0, graph.perm)


def _mode(mode: str) -> int:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {sorted(MODES)}, got {mode!r}")
    return MODES[mode]


def masked_degree(graph: Graph, edge_mask: Tensor | None = None) -> Tensor:
    """``[N]`` int64 number of live incoming edges of every node (all of them without ``edge_mask``).

    Raises:
        ValueError: ``edge_mask`` is not a bool/uint8 ``[E]`` tensor.
    """
    _check_graph(graph, "masked_degree", sorted_rows=False)
    if _check_edge_mask(graph, edge_mask, "masked_degree") is None:
        return graph.in_degree()
    return torch.bincount(graph.edge_index[1][edge_mask.bool()], minlength=graph.num_dst)


def _pair_ids(graph: Graph, pairs: Tensor, op: str) -> Tensor:
    if not isinstance(pairs, Tensor) or pairs.dim() != 2 or pairs.size(0) != 2:
        raise ValueError(f"{op}: pairs must have shape [2, B], got {_reference.shape_of(pairs)}")
    if pairs.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"{op}: pairs must be int32 or int64, got {pairs.dtype}")
    if pairs.numel():
        # An entry outside [0, N) would alias the key target * N + source of another pair.
        lo, hi = torch.stack(torch.aminmax(pairs.long())).tolist()
        bound = min(graph.num_src, graph.num_dst)
        if lo < 0 or hi >= bound:
            raise ValueError(f"{op}: pairs has entry {lo if lo < 0 else hi} out of range [0, {bound})")
    return pairs.long()


def _find_edges(graph: Graph, target: Tensor, source: Tensor) -> tuple[Tensor, Tensor]:
    """CSR position of each edge ``source -> target`` and whether it exists, by one ``searchsorted``
    over the ascending keys ``target * n + source`` of the edges (computed once per graph)."""
    n = max(graph.num_src, graph.num_dst, 1)
    keys = graph.derive("edge_keys", lambda: csr_targets(graph) * n + graph.col.long())
    query = target * n + source
    pos = torch.searchsorted(keys, query).clamp(max=max(keys.numel() - 1, 0))
    found = keys[pos] == query if keys.numel() else torch.zeros_like(query, dtype=torch.bool)
    return pos, found


def has_edge(graph: Graph, pairs: Tensor) -> Tensor:
    """``[B]`` bool: whether ``pairs[0, p] -> pairs[1, p]`` is an edge of ``graph`` (``pairs`` ``[2, B]``).

    Raises:
        ValueError: ``pairs`` is not an integer ``[2, B]`` tensor with entries in ``[0, num_nodes)``,
            or the rows of ``graph`` are not strictly ascending.
    """
    _check_graph(graph, "has_edge")
    p = _pair_ids(graph, pairs, "has_edge")
    return _find_edges(graph, p[1], p[0])[1]


def target_link_mask(graph: Graph, pairs: Tensor) -> Tensor:
    """``[E]`` bool mask, in edge order, hiding the edges ``i -> j`` and ``j -> i`` of every pair of ``pairs`` ``[2, B]``.

    Pass it as ``edge_mask`` so a batch's own target links are invisible to the ops and to message
    passing, as when the graph is rebuilt without them (NCN's target-link removal), at the cost of
    one ``searchsorted`` over the sorted edges instead of a sort per batch.

    Raises:
        ValueError: ``pairs`` is not an integer ``[2, B]`` tensor with entries in ``[0, num_nodes)``,
            or the rows of ``graph`` are not strictly ascending.
    """
    _check_graph(graph, "target_link_mask")
    p = _pair_ids(graph, pairs, "target_link_mask")
    pos, found = _find_edges(graph, torch.cat([p[0], p[1]]), torch.cat([p[1], p[0]]))
    mask = torch.ones(graph.num_edges, dtype=torch.bool, device=graph.col.device)
    if graph.num_edges:
        mask[pos[found]] = False
    return mask if _in_csr_order(graph) else mask.index_select(0, graph.position)


def _query(graph: Graph, src: Tensor, dst: Tensor, edge_mask: Tensor | None):
    _check_graph(graph, "common neighbours")
    if not isinstance(src, Tensor) or not isinstance(dst, Tensor):
        raise ValueError("src and dst must be tensors of node ids")
    if src.dtype not in (torch.int32, torch.int64) or dst.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"src and dst must be integer tensors, got {src.dtype} and {dst.dtype}")
    mask = _check_edge_mask(graph, edge_mask, "common neighbours")
    return src.long().contiguous(), dst.long().contiguous(), mask


def _count(graph: Graph, src: Tensor, dst: Tensor, node_weight, edge_mask, mode: int):
    src, dst, mask = _query(graph, src, dst, edge_mask)
    return _path(graph.col).common_neighbor_count(graph.rowptr, graph.col, src, dst, node_weight, mask, mode)


def common_neighbor_count(
    graph: Graph, src: Tensor, dst: Tensor, edge_mask: Tensor | None = None, mode: str = "common"
) -> Tensor:
    """``[B]`` int64 size of ``N(src[p]) ∩ N(dst[p])`` (or of a one-sided set, see ``mode``).

    Args:
        graph: the graph, rows strictly ascending (:meth:`Graph.undirected`).
        src, dst: ``[B]`` node ids of the query pairs.
        edge_mask: optional ``[E]`` bool/uint8 in edge order, ``0`` hides an edge (:func:`target_link_mask`).
        mode: ``"common"`` (∩), ``"src_only"`` (``N(src) \\ N(dst)``) or ``"dst_only"``.

    Raises:
        TypeError: ``graph`` is not a :class:`Graph`.
        ValueError: unsorted rows, query ids out of range, mismatched shapes, a mask of the wrong
            length or dtype.
    """
    return _count(graph, src, dst, None, edge_mask, _mode(mode))[0]


def _degree_weight(graph: Graph, edge_mask: Tensor | None, fn) -> Tensor:
    _check_graph(graph, "common neighbours")
    deg = masked_degree(graph, None if edge_mask is None else edge_mask.bool()).double()
    return torch.where(deg > 1, fn(deg), torch.zeros_like(deg))


def adamic_adar(graph: Graph, src: Tensor, dst: Tensor, edge_mask: Tensor | None = None) -> Tensor:
    """``[B]`` float64 Adamic–Adar index ``Σ_{k ∈ N(i) ∩ N(j)} 1 / log d_k`` (degrees of the live graph)."""
    weight = _degree_weight(graph, edge_mask, lambda d: 1.0 / torch.log(d))
    return _count(graph, src, dst, weight, edge_mask, 0)[1]


def resource_allocation(graph: Graph, src: Tensor, dst: Tensor, edge_mask: Tensor | None = None) -> Tensor:
    """``[B]`` float64 resource-allocation index ``Σ_{k ∈ N(i) ∩ N(j)} 1 / d_k`` (degrees of the live graph)."""
    weight = _degree_weight(graph, edge_mask, lambda d: 1.0 / d)
    return _count(graph, src, dst, weight, edge_mask, 0)[1]


@dataclass(frozen=True)
class PairSets:
    """One node set per query pair, as CSR: pair ``p`` holds ``nodes[ptr[p]:ptr[p+1]]`` (ascending).

    Attributes:
        ptr: ``[B + 1]`` int64 offsets.
        nodes: ``[M]`` int64 members.
        num_nodes: number of nodes of the graph (rows of the features to aggregate).

    Construction checks, in O(B + M), that ``num_nodes >= 0``, ``ptr`` is int64 offsets from 0 to
    ``M`` (non-decreasing) and ``nodes`` is int64 with entries in ``[0, num_nodes)``, on one device;
    it raises ``ValueError`` naming the argument otherwise.
    """

    ptr: Tensor
    nodes: Tensor
    num_nodes: int
    _derived: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        op = "PairSets"
        _reference.check_count(self.num_nodes, "num_nodes", op)
        if not isinstance(self.nodes, Tensor) or self.nodes.dim() != 1:
            raise ValueError(f"{op}: nodes must be a 1-D tensor")
        if not isinstance(self.ptr, Tensor) or self.ptr.device != self.nodes.device:
            raise ValueError(f"{op}: ptr must be a tensor on the device of nodes ({self.nodes.device})")
        _reference.check_offsets(self.ptr, self.nodes.numel(), "ptr", op)
        _reference.check_indices(self.nodes, None, self.num_nodes, "nodes", "num_nodes", op, allow_int32=False)

    @property
    def num_pairs(self) -> int:
        return self.ptr.numel() - 1

    def sizes(self) -> Tensor:
        """``[B]`` int64 size of every set."""
        return self.ptr.diff()

    def pair(self) -> Tensor:
        """``[M]`` int64 pair id of every member."""
        if "pair" not in self._derived:
            self._derived["pair"] = torch.repeat_interleave(
                torch.arange(self.num_pairs, device=self.ptr.device), self.sizes()
            )
        return self._derived["pair"]

    def _transposed(self) -> tuple[Tensor, Tensor, Tensor]:
        # Node -> pairs, for the backward of the aggregation; built once per set.
        if "transposed" not in self._derived:
            # One square conversion covers both index ranges; the offsets are cut to the node rows.
            size = max(self.num_nodes, self.num_pairs)
            rowptr_t, col_t, perm_t = coo_to_csr(torch.stack([self.nodes, self.pair()]), size)
            self._derived["transposed"] = (rowptr_t[: self.num_nodes + 1], col_t, perm_t)
        return self._derived["transposed"]

    def aggregate(self, h: Tensor, weight: Tensor | None = None, reduce: str = "sum") -> Tensor:
        """``out[p] = reduce_{k ∈ set(p)} w_pk · h[k]``, ``[B, F]``; differentiable in ``h`` and ``weight``.

        Args:
            h: ``[num_nodes, F]`` node features.
            weight: optional ``[M]`` per-member weights, in the order of :attr:`nodes`.
            reduce: ``"sum"``, ``"mean"``, ``"max"`` or ``"min"``; empty sets give 0.
        """
        if h.dim() != 2 or h.size(0) != self.num_nodes:
            raise ValueError(f"h must have shape [num_nodes={self.num_nodes}, F], got {list(h.shape)}")
        if weight is not None and weight.shape != self.nodes.shape:
            raise ValueError(f"weight must have one entry per member ({self.nodes.numel()}), got {list(weight.shape)}")
        rowptr_t, col_t, perm_t = self._transposed()
        out, _ = aggregate_csr(self.ptr, self.nodes, rowptr_t, col_t, perm_t, h, weight, reduce)
        return out


def common_neighbor_sets(
    graph: Graph, src: Tensor, dst: Tensor, mode: str = "common", edge_mask: Tensor | None = None
) -> PairSets:
    """The sets ``N(src[p]) ∩ N(dst[p])`` (``mode="common"``), ``N(src) \\ N(dst)`` (``"src_only"``)
    or ``N(dst) \\ N(src)`` (``"dst_only"``) of every query pair, members ascending.

    See :func:`common_neighbor_count` for the arguments.
    """
    m = _mode(mode)
    src, dst, mask = _query(graph, src, dst, edge_mask)
    ptr, nodes = _path(graph.col).common_neighbor_sets(graph.rowptr, graph.col, src, dst, mask, m)
    return PairSets(ptr, nodes, graph.num_src)


def common_neighbor_aggregate(
    h: Tensor,
    graph: Graph,
    src: Tensor,
    dst: Tensor,
    mode: str = "common",
    edge_mask: Tensor | None = None,
) -> Tensor:
    """``out[p] = Σ_{k ∈ N(src[p]) ∩ N(dst[p])} h[k]``, ``[B, F]``, with backward to ``h``.

    NCN's common-neighbour term without the ``[M, F]`` gather or a sparse-sparse product.
    """
    return common_neighbor_sets(graph, src, dst, mode, edge_mask).aggregate(h)
