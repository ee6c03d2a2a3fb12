"""The one graph object: the structure every encoder and layer of gnnlab reads, built once per batch.

A model builds one :class:`Graph` per batch at its entry (:meth:`Graph.from_data`) and hands it to
every encoder and layer as an argument; there is no module-level cache. Everything a layer derives
from the structure (a self-loop-free copy, normalised edge weights) is memoised on the graph
(:meth:`Graph.derive`), so the layers of one forward pass share it.
"""
from __future__ import annotations

from dataclasses import InitVar, dataclass, field
from typing import Callable, TypeVar

import torch
from torch import Tensor

from gnnlab.ops import _reference
from gnnlab.ops.csr import coo_to_csr

_T = TypeVar("_T")


@dataclass(frozen=True)
class Graph:
    """The structure of a graph or a batch of graphs: its edges in both CSR orientations, for message
    passing ``j -> i``, the original ``edge_index`` and, for a batch, the graph of every node.

    Build it once per graph or batch (:meth:`from_data`, :meth:`from_edge_index`) and hand it to every
    layer: no layer sorts edges again. Rows of the forward CSR are targets ``i = edge_index[1]`` (what
    aggregation reduces over); rows of the transposed CSR are sources ``j = edge_index[0]`` (what the
    backward pass of an aggregation reduces over). Per-edge tensors (``edge_attr``) stay in the order
    of :attr:`edge_index`; ``perm`` and ``position`` map between that order and the CSR order. What layers
    derive from it (a self-loop-free copy, normalised edge weights) is memoised by :meth:`derive`.

    Attributes:
        rowptr: ``[num_dst + 1]`` int64 offsets of each target's incoming edges.
        col: ``[E]`` source of each edge, in CSR order.
        perm: ``[E]`` int64, original edge id of each CSR position (``edge_attr[perm]`` is in CSR order).
        rowptr_t: ``[num_src + 1]`` offsets of each source's outgoing edges.
        col_t: ``[E]`` target of each edge, in transposed order.
        perm_t: ``[E]`` int64, CSR position of each transposed position.
        num_src, num_dst: node counts of the two sides (equal for ordinary graphs).
        position: ``[E]`` int64, CSR position of each original edge (the inverse of ``perm``).
        batch: ``[num_dst]`` int64 graph of every node, sorted (``None``: one graph).
        num_graphs: number of graphs (1 without ``batch``).

    Construction checks the ranges in O(E) and raises ``ValueError`` naming the attribute:
    ``rowptr``/``rowptr_t`` are int64 offsets from 0 to ``E`` with ``num_dst + 1``/``num_src + 1``
    entries, ``col`` lies in ``[0, num_src)``, ``col_t`` in ``[0, num_dst)``, and ``perm``,
    ``perm_t``, ``position`` (int64) in ``[0, E)``. That the arrays describe one graph is not
    checked (:meth:`from_edge_index` builds them so, and skips the checks: its input was checked).
    """

    rowptr: Tensor
    col: Tensor
    perm: Tensor
    rowptr_t: Tensor
    col_t: Tensor
    perm_t: Tensor
    num_src: int
    num_dst: int
    position: Tensor
    batch: Tensor | None = None
    num_graphs: int = 1
    _derived: dict = field(default_factory=dict, compare=False, repr=False)
    #: ``False`` only where the arrays come from a checked build (:meth:`from_edge_index`, :meth:`to`).
    validate: InitVar[bool] = True

    def __post_init__(self, validate: bool):
        if not validate:
            return
        op = "Graph"
        for name in ("num_src", "num_dst"):
            _reference.check_count(getattr(self, name), name, op)
        if not isinstance(self.col, Tensor) or self.col.dim() != 1:
            raise ValueError(f"{op}: col must be a 1-D tensor")
        num_edges = self.col.numel()
        for name, rows in (("rowptr", self.num_dst), ("rowptr_t", self.num_src)):
            rowptr = getattr(self, name)
            if not isinstance(rowptr, Tensor) or rowptr.dim() != 1 or rowptr.numel() != rows + 1:
                raise ValueError(f"{op}: {name} must have {rows + 1} entries, got shape {_reference.shape_of(rowptr)}")
            _reference.check_offsets(rowptr, num_edges, name, op)
        _reference.check_indices(self.col, num_edges, self.num_src, "col", "num_src", op)
        _reference.check_indices(self.col_t, num_edges, self.num_dst, "col_t", "num_dst", op)
        for name in ("perm", "perm_t", "position"):
            _reference.check_indices(getattr(self, name), num_edges, num_edges, name, "edges", op, allow_int32=False)
        _check_batch(self.batch, self.num_graphs, self.num_dst, op)

    @classmethod
    def from_data(cls, data) -> "Graph":
        """The graph of a PyG ``Data`` or ``Batch``: its ``edge_index`` over ``num_nodes`` nodes and, for a
        batch, its ``batch`` vector and ``num_graphs``."""
        edge_index = getattr(data, "edge_index", None)
        if not isinstance(edge_index, Tensor):
            raise ValueError(f"Graph.from_data: the graph has no edge_index tensor (got {type(edge_index).__name__})")
        x = getattr(data, "x", None)
        num_nodes = x.size(0) if isinstance(x, Tensor) else data.num_nodes
        batch = getattr(data, "batch", None)
        num_graphs = getattr(data, "num_graphs", None) if batch is not None else 1
        return cls.from_edge_index(edge_index, num_nodes, batch=batch,
                                   num_graphs=None if num_graphs is None else int(num_graphs))

    @classmethod
    def from_edge_index(cls, edge_index: Tensor, num_nodes: int | None = None, num_dst: int | None = None,
                        batch: Tensor | None = None, num_graphs: int | None = None) -> "Graph":
        """Build both orientations from a ``[2, E]`` COO ``edge_index`` (source row 0, target row 1).

        Args:
            num_nodes: number of source nodes (default ``max index + 1``).
            num_dst: number of target nodes (default ``num_nodes``).
            batch: optional ``[num_dst]`` sorted graph id of every node; num_graphs: their number
                (default ``batch.max() + 1``, or 1 without ``batch``).

        Raises:
            ValueError: malformed ``edge_index``, entries out of range, or a ``batch`` that does not fit.
        """
        if not isinstance(edge_index, Tensor):
            raise ValueError(f"edge_index must be a [2, num_edges] tensor, got {type(edge_index).__name__}")
        if num_nodes is None:
            num_nodes = int(edge_index.max()) + 1 if edge_index.numel() else 0
        num_dst = num_nodes if num_dst is None else num_dst
        if edge_index.dim() != 2 or edge_index.size(0) != 2:
            raise ValueError(f"edge_index must have shape [2, num_edges], got {list(edge_index.shape)}")
        src = edge_index[0]
        if num_dst != num_nodes and src.numel() and (int(src.min()) < 0 or int(src.max()) >= num_nodes):
            raise ValueError(f"edge_index sources out of range [0, {num_nodes})")
        # One square conversion per orientation covers both sides (sized for the larger), then the rowptrs are cut.
        size = max(num_dst, num_nodes)
        rowptr, col, perm = coo_to_csr(edge_index.flip(0), size)
        rowptr_t, col_t, perm_src = coo_to_csr(edge_index, size)
        rowptr, rowptr_t = rowptr[: num_dst + 1], rowptr_t[: num_nodes + 1]
        position = _reference.inverse_permutation(perm)
        if num_graphs is None:
            num_graphs = int(batch.max()) + 1 if batch is not None and batch.numel() else 1
        _check_batch(batch, num_graphs, num_dst, "Graph")
        # coo_to_csr checked edge_index, and the arrays it returns are in range by construction.
        graph = cls(rowptr, col, perm, rowptr_t, col_t, position[perm_src], num_nodes, num_dst, position,
                    None if batch is None else batch.long(), num_graphs, validate=False)
        # A copy: the graph must not change when the caller edits its tensor in place afterwards.
        graph._derived["edge_index"] = edge_index.clone()
        return graph

    @classmethod
    def undirected(cls, edge_index: Tensor, num_nodes: int | None = None) -> "Graph":
        """The undirected graph of ``edge_index``: every edge in both directions, duplicates merged.

        Edges are ordered by (target, source), so edge order is CSR order (``perm`` is the identity)
        and the neighbours of every node are strictly ascending, as the common-neighbour ops
        (:mod:`gnnlab.ops.common_neighbors`) need; a per-edge mask or weight then serves both those
        ops and :func:`gnnlab.ops.aggregate`. Self-loops are kept (once).

        Raises:
            ValueError: malformed ``edge_index`` or entries outside ``[0, num_nodes)``.
        """
        if num_nodes is None:
            num_nodes = int(edge_index.max()) + 1 if isinstance(edge_index, Tensor) and edge_index.numel() else 0
        _reference.check_edge_index(edge_index, num_nodes)
        ei, n = edge_index.long(), max(num_nodes, 1)
        keys = torch.unique(torch.cat([ei[1] * n + ei[0], ei[0] * n + ei[1]]))  # by target, then source
        return cls.from_edge_index(torch.stack([keys % n, keys // n]), num_nodes)

    @property
    def num_nodes(self) -> int:
        """Number of nodes (of the target side; the two sides agree for ordinary graphs)."""
        return self.num_dst

    @property
    def edge_index(self) -> Tensor:
        """The ``[2, E]`` edges in their original order (the order of ``edge_attr`` rows)."""
        return self.derive("edge_index", lambda: self.csr_edge_index().index_select(1, self.position))

    @property
    def num_edges(self) -> int:
        """Number of edges ``E``."""
        return self.col.numel()

    def in_degree(self) -> Tensor:
        """``[num_dst]`` int64 number of incoming edges of each target."""
        return self.rowptr.diff()

    def out_degree(self) -> Tensor:
        """``[num_src]`` int64 number of outgoing edges of each source."""
        return self.rowptr_t.diff()

    def derive(self, key, build: Callable[[], _T]) -> _T:
        """Return ``build()``, computed on the first call for ``key`` and reused afterwards.

        ``key`` must name everything the result depends on besides this graph (options, dtype).
        """
        if key not in self._derived:
            self._derived[key] = build()
        return self._derived[key]

    def without_self_loops(self) -> "Graph":
        """This graph with every edge ``i -> i`` removed (computed once, then shared).

        Edge ids of the result (``perm``, ``position``) number the kept edges in their original
        order: per-edge tensors for it are ``t[edge_index[0] != edge_index[1]]``.
        """

        def build() -> Graph:
            ei = self.edge_index
            keep = ei[0] != ei[1]
            if bool(keep.all()):
                return self
            return Graph.from_edge_index(ei[:, keep], self.num_src, self.num_dst, self.batch, self.num_graphs)

        return self.derive("without_self_loops", build)

    def to(self, device) -> "Graph":
        """Copy to ``device``."""
        moved = (t.to(device) for t in (self.rowptr, self.col, self.perm, self.rowptr_t, self.col_t, self.perm_t))
        batch = None if self.batch is None else self.batch.to(device)
        return Graph(*moved, self.num_src, self.num_dst, self.position.to(device), batch, self.num_graphs,
                     validate=False)

    def csr_edge_index(self) -> Tensor:
        """The ``[2, E]`` COO edges in CSR order (source row 0, target row 1)."""
        dst = torch.repeat_interleave(torch.arange(self.num_dst, device=self.rowptr.device), self.in_degree())
        return torch.stack([self.col.long(), dst])


def _check_batch(batch: Tensor | None, num_graphs: int, num_nodes: int, op: str) -> None:
    if isinstance(num_graphs, bool) or not isinstance(num_graphs, int) or num_graphs < 0:
        raise ValueError(f"{op}: num_graphs must be a non-negative int, got {num_graphs!r}")
    if batch is None:
        return
    if not isinstance(batch, Tensor) or batch.dim() != 1 or batch.numel() != num_nodes:
        raise ValueError(f"{op}: batch must be a 1-D tensor with one graph id per node ({num_nodes}), "
                         f"got {_reference.shape_of(batch)}")
    if batch.dtype.is_floating_point or batch.dtype == torch.bool:
        raise ValueError(f"{op}: batch must hold integer graph ids, got {batch.dtype}")
    if batch.numel() and (int(batch.min()) < 0 or int(batch.max()) >= num_graphs):
        raise ValueError(f"{op}: batch holds graph ids outside [0, {num_graphs})")
    if batch.numel() > 1 and bool((batch[1:] < batch[:-1]).any()):
        raise ValueError(f"{op}: batch must be sorted (the nodes of each graph contiguous, as PyG batches them)")


def csr_targets(graph: Graph) -> Tensor:
    """``[E]`` int64 target node of each CSR position (computed once per graph, with static shapes)."""
    return graph.derive("csr_targets", lambda: graph.edge_index[1].long().index_select(0, graph.perm))


def resolve_graph(layer: str, edge_index: Tensor, num_nodes: int, graph: Graph | None = None) -> Graph:
    """``graph`` checked against ``edge_index`` over ``num_nodes`` nodes, or built from them when ``None``.

    For modules that read a PyG ``Data`` and may be called on their own (the SignNet and SPE
    encoders); models pass the batch's graph.

    Raises:
        TypeError: ``graph`` is not a :class:`Graph`.
        ValueError: ``graph`` does not describe ``edge_index`` over ``num_nodes`` nodes.
    """
    if graph is None:
        return Graph.from_edge_index(edge_index, num_nodes)
    if not isinstance(graph, Graph):
        raise TypeError(f"{layer}: graph must be a gnnlab.ops.Graph, got {type(graph).__name__}")
    if graph.num_edges != edge_index.size(1) or graph.num_src != num_nodes or graph.num_dst != num_nodes:
        raise ValueError(
            f"{layer}: graph has {graph.num_src}/{graph.num_dst} nodes and {graph.num_edges} edges, but the input "
            f"has {num_nodes} nodes and {edge_index.size(1)} edges; build it from the same edge_index"
        )
    return graph
