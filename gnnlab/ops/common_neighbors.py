"""Common-neighbour ops for link prediction over a sorted CSR adjacency.

For a batch of query pairs ``(i, j)``:

- :func:`common_neighbor_count`, :func:`adamic_adar`, :func:`resource_allocation`: the classic
  heuristics ``|N(i) ∩ N(j)|``, ``Σ_k 1 / log d_k`` and ``Σ_k 1 / d_k`` over common neighbours ``k``.
- :func:`common_neighbor_sets`: the sets themselves, ``N(i) ∩ N(j)`` or the one-sided
  ``N(i) \\ N(j)`` / ``N(j) \\ N(i)`` that NCNC's completion needs, built count → scan → fill.
- :meth:`PairSets.aggregate`: ``out[p] = Σ_{k ∈ set(p)} w_pk · h[k]`` through the fused aggregation
  (no ``[M, F]`` gather), differentiable in ``h`` and in the per-element weights ``w``.

Every op takes an optional ``edge_mask`` (one entry per adjacency entry, ``0`` = absent): that is
how a training batch hides its own target links (:meth:`Adjacency.target_link_mask`) without
rebuilding the adjacency. The kernels pick a linear merge or a galloping search per pair by the
ratio of the two degrees (see ``csrc/ops/common/intersect.h``). The CUDA kernels are compiled but
have not been run on a GPU.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from gnnlab.ops import _loader, _reference
from gnnlab.ops.aggregate import aggregate_csr
from gnnlab.ops.csr import coo_to_csr
from gnnlab.ops.graph import Graph

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


def _use_extension(t: Tensor) -> bool:
    return _loader.use_extension() and t.device.type in ("cpu", "cuda")


def _check_edge_mask(adj: "Adjacency", edge_mask: Tensor | None, op: str) -> None:
    """Raise ``ValueError`` unless ``edge_mask`` is ``None`` or a bool/uint8 ``[E]`` tensor (one entry per adjacency entry)."""
    if edge_mask is None:
        return
    if not isinstance(edge_mask, Tensor) or edge_mask.dim() != 1 or edge_mask.numel() != adj.num_entries:
        shape = list(edge_mask.shape) if isinstance(edge_mask, Tensor) else type(edge_mask).__name__
        raise ValueError(
            f"{op}: edge_mask must have one entry per adjacency entry ({adj.num_entries}), got shape {shape}"
        )
    if edge_mask.dtype not in (torch.bool, torch.uint8):
        raise ValueError(f"{op}: edge_mask must be bool or uint8, got {edge_mask.dtype}")


def _mode(mode: str) -> int:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {sorted(MODES)}, got {mode!r}")
    return MODES[mode]


@dataclass(frozen=True)
class Adjacency:
    """A sorted, duplicate-free CSR adjacency: ``N(u) = col[rowptr[u]:rowptr[u+1]]``, ascending.

    Build it once per graph with :meth:`from_edge_index`. Construction checks, in O(E), that
    ``num_nodes >= 0``, ``rowptr`` is ``[num_nodes + 1]`` int64 offsets from 0 to ``E``
    (non-decreasing), ``col`` is ``[E]`` int32/int64 with entries in ``[0, num_nodes)``, both on one
    device, and every row is strictly ascending (sorted, no duplicates); it raises ``ValueError``
    naming the argument otherwise.
    """

    rowptr: Tensor
    col: Tensor
    num_nodes: int
    _derived: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        op = "Adjacency"
        _reference.check_count(self.num_nodes, "num_nodes", op)
        if not isinstance(self.rowptr, Tensor) or self.rowptr.dim() != 1 or self.rowptr.numel() != self.num_nodes + 1:
            shape = list(self.rowptr.shape) if isinstance(self.rowptr, Tensor) else type(self.rowptr).__name__
            raise ValueError(f"{op}: rowptr must have num_nodes + 1 = {self.num_nodes + 1} entries, got shape {shape}")
        if not isinstance(self.col, Tensor) or self.col.dim() != 1:
            raise ValueError(f"{op}: col must be a 1-D tensor")
        if self.col.device != self.rowptr.device:
            raise ValueError(f"{op}: rowptr ({self.rowptr.device}) and col ({self.col.device}) must be on one device")
        num_entries = self.col.numel()
        _reference.check_offsets(self.rowptr, num_entries, "rowptr", op)
        _reference.check_indices(self.col, num_entries, self.num_nodes, "col", "num_nodes", op)
        if num_entries > 1:
            # Each entry must exceed its predecessor unless it starts a row.
            starts = torch.zeros(num_entries + 1, dtype=torch.bool, device=self.col.device)
            starts[self.rowptr] = True
            ascending = (self.col[1:] > self.col[:-1]) | starts[1:num_entries]
            if not bool(ascending.all()):
                raise ValueError(f"{op}: col must be strictly ascending within each row (sorted, no duplicates)")

    @classmethod
    def from_edge_index(cls, edge_index: Tensor, num_nodes: int | None = None, undirected: bool = True) -> "Adjacency":
        """Rows ``edge_index[0]``, neighbours ``edge_index[1]``; duplicates are merged.

        Args:
            num_nodes: number of nodes (default ``max index + 1``).
            undirected: add the reverse of every edge (``N(u)`` then holds both directions).

        Raises:
            ValueError: malformed ``edge_index`` or entries outside ``[0, num_nodes)``.
        """
        if num_nodes is None:
            num_nodes = int(edge_index.max()) + 1 if edge_index.numel() else 0
        _reference.check_edge_index(edge_index, num_nodes)
        ei = edge_index.long()
        if undirected:
            ei = torch.cat([ei, ei.flip(0)], dim=1)
        keys = torch.unique(ei[0] * max(num_nodes, 1) + ei[1])  # sorted: by row, then by neighbour
        row, col = keys // max(num_nodes, 1), keys % max(num_nodes, 1)
        rowptr = torch.zeros(num_nodes + 1, dtype=torch.long, device=ei.device)
        rowptr[1:] = torch.cumsum(torch.bincount(row, minlength=num_nodes), 0)
        return cls(rowptr, col, num_nodes)

    @property
    def num_entries(self) -> int:
        """Number of stored (directed) entries ``E``."""
        return self.col.numel()

    def degree(self, edge_mask: Tensor | None = None) -> Tensor:
        """``[N]`` int64 number of (live) neighbours of every node.

        Raises:
            ValueError: ``edge_mask`` is not a bool/uint8 ``[E]`` tensor.
        """
        _check_edge_mask(self, edge_mask, "degree")
        if edge_mask is None:
            return self.rowptr.diff()
        return torch.bincount(self.edge_index()[0][edge_mask.bool()], minlength=self.num_nodes)

    def edge_index(self) -> Tensor:
        """The ``[2, E]`` entries as COO (row, neighbour), sorted; built once and cached (do not modify it)."""
        if "edge_index" not in self._derived:
            row = torch.repeat_interleave(torch.arange(self.num_nodes, device=self.col.device), self.rowptr.diff())
            self._derived["edge_index"] = torch.stack([row, self.col])
        return self._derived["edge_index"]

    def entry_keys(self) -> Tensor:
        """``[E]`` int64 keys ``row * N + neighbour`` of the entries, ascending (for ``searchsorted``); cached."""
        if "keys" not in self._derived:
            ei = self.edge_index()
            self._derived["keys"] = ei[0] * max(self.num_nodes, 1) + ei[1]
        return self._derived["keys"]

    def target_link_mask(self, pairs: Tensor) -> Tensor:
        """``[E]`` bool mask that hides the entries ``(i, j)`` and ``(j, i)`` of every pair in ``pairs`` ``[2, B]``.

        Pass it as ``edge_mask`` so a batch's own target links are invisible to the ops, as when the
        adjacency is rebuilt without them (NCN's target-link removal), at the cost of one
        ``searchsorted`` over the sorted entries instead of a sort per batch.

        Raises:
            ValueError: ``pairs`` is not an integer ``[2, B]`` tensor with entries in ``[0, num_nodes)``
                (an entry outside would hide the entry of another pair with the same key ``i * N + j``).
        """
        if not isinstance(pairs, Tensor) or pairs.dim() != 2 or pairs.size(0) != 2:
            shape = list(pairs.shape) if isinstance(pairs, Tensor) else type(pairs).__name__
            raise ValueError(f"target_link_mask: pairs must have shape [2, B], got {shape}")
        if pairs.dtype not in (torch.int32, torch.int64):
            raise ValueError(f"target_link_mask: pairs must be int32 or int64, got {pairs.dtype}")
        if pairs.numel():
            lo, hi = torch.stack(torch.aminmax(pairs.long())).tolist()
            if lo < 0 or hi >= self.num_nodes:
                raise ValueError(
                    f"target_link_mask: pairs has entry {lo if lo < 0 else hi} out of range [0, {self.num_nodes})"
                )
        keys = self.entry_keys()
        n = max(self.num_nodes, 1)
        p = pairs.long()
        query = torch.cat([p[0] * n + p[1], p[1] * n + p[0]])
        pos = torch.searchsorted(keys, query).clamp(max=max(keys.numel() - 1, 0))
        mask = torch.ones(keys.numel(), dtype=torch.bool, device=keys.device)
        if keys.numel():
            mask[pos[keys[pos] == query]] = False
        return mask

    def message_graph(self) -> Graph:
        """The same entries as a :class:`Graph` for message passing ``out[u] = Σ_{v ∈ N(u)} w_uv · x[v]``.

        Edge ``e`` of the graph is entry ``e`` of the adjacency, so an ``edge_mask`` (or any
        per-entry weight) passes to :func:`gnnlab.ops.aggregate` as ``edge_weight`` unchanged.
        Built once and cached.
        """
        if "message_graph" not in self._derived:
            self._derived["message_graph"] = Graph.from_edge_index(self.edge_index().flip(0), self.num_nodes)
        return self._derived["message_graph"]

    def to(self, device) -> "Adjacency":
        return Adjacency(self.rowptr.to(device), self.col.to(device), self.num_nodes)


def _query(adj: Adjacency, src: Tensor, dst: Tensor, edge_mask: Tensor | None):
    if not isinstance(adj, Adjacency):
        raise TypeError(f"adj must be a gnnlab.ops.Adjacency, got {type(adj).__name__}")
    if not isinstance(src, Tensor) or not isinstance(dst, Tensor):
        raise ValueError("src and dst must be tensors of node ids")
    if src.dtype not in (torch.int32, torch.int64) or dst.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"src and dst must be integer tensors, got {src.dtype} and {dst.dtype}")
    _check_edge_mask(adj, edge_mask, "common neighbours")
    return src.long().contiguous(), dst.long().contiguous(), edge_mask


def _count(adj: Adjacency, src: Tensor, dst: Tensor, node_weight, edge_mask, mode: int):
    src, dst, mask = _query(adj, src, dst, edge_mask)
    if _use_extension(adj.col):
        return torch.ops.gnnlab.common_neighbor_count(adj.rowptr, adj.col, src, dst, node_weight, mask, mode)
    return _reference.common_neighbor_count(adj.rowptr, adj.col, src, dst, node_weight, mask, mode)


def common_neighbor_count(
    adj: Adjacency, src: Tensor, dst: Tensor, edge_mask: Tensor | None = None, mode: str = "common"
) -> Tensor:
    """``[B]`` int64 size of ``N(src[p]) ∩ N(dst[p])`` (or of a one-sided set, see ``mode``).

    Args:
        adj: the graph.
        src, dst: ``[B]`` node ids of the query pairs.
        edge_mask: optional ``[E]`` bool/uint8, ``0`` hides an entry (:meth:`Adjacency.target_link_mask`).
        mode: ``"common"`` (∩), ``"src_only"`` (``N(src) \\ N(dst)``) or ``"dst_only"``.

    Raises:
        ValueError: query ids out of range, mismatched shapes, a mask of the wrong length or dtype.
    """
    return _count(adj, src, dst, None, edge_mask, _mode(mode))[0]


def _degree_weight(adj: Adjacency, edge_mask: Tensor | None, fn) -> Tensor:
    deg = adj.degree(None if edge_mask is None else edge_mask.bool()).double()
    return torch.where(deg > 1, fn(deg), torch.zeros_like(deg))


def adamic_adar(adj: Adjacency, src: Tensor, dst: Tensor, edge_mask: Tensor | None = None) -> Tensor:
    """``[B]`` float64 Adamic–Adar index ``Σ_{k ∈ N(i) ∩ N(j)} 1 / log d_k`` (degrees of the live graph)."""
    weight = _degree_weight(adj, edge_mask, lambda d: 1.0 / torch.log(d))
    return _count(adj, src, dst, weight, edge_mask, 0)[1]


def resource_allocation(adj: Adjacency, src: Tensor, dst: Tensor, edge_mask: Tensor | None = None) -> Tensor:
    """``[B]`` float64 resource-allocation index ``Σ_{k ∈ N(i) ∩ N(j)} 1 / d_k`` (degrees of the live graph)."""
    weight = _degree_weight(adj, edge_mask, lambda d: 1.0 / d)
    return _count(adj, src, dst, weight, edge_mask, 0)[1]


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
    adj: Adjacency, src: Tensor, dst: Tensor, mode: str = "common", edge_mask: Tensor | None = None
) -> PairSets:
    """The sets ``N(src[p]) ∩ N(dst[p])`` (``mode="common"``), ``N(src) \\ N(dst)`` (``"src_only"``)
    or ``N(dst) \\ N(src)`` (``"dst_only"``) of every query pair, members ascending.

    See :func:`common_neighbor_count` for the arguments.
    """
    m = _mode(mode)
    src, dst, mask = _query(adj, src, dst, edge_mask)
    if _use_extension(adj.col):
        ptr, nodes = torch.ops.gnnlab.common_neighbor_sets(adj.rowptr, adj.col, src, dst, mask, m)
    else:
        ptr, nodes = _reference.common_neighbor_sets(adj.rowptr, adj.col, src, dst, mask, m)
    return PairSets(ptr, nodes, adj.num_nodes)


def common_neighbor_aggregate(
    h: Tensor,
    adj: Adjacency,
    src: Tensor,
    dst: Tensor,
    mode: str = "common",
    edge_mask: Tensor | None = None,
) -> Tensor:
    """``out[p] = Σ_{k ∈ N(src[p]) ∩ N(dst[p])} h[k]``, ``[B, F]``, with backward to ``h``.

    NCN's common-neighbour term without the ``[M, F]`` gather or a sparse-sparse product.
    """
    return common_neighbor_sets(adj, src, dst, mode, edge_mask).aggregate(h)
