"""The hop structure of a neighbour-sampled batch, which lets a model compute each layer only where later
layers read it (:class:`gnnlab.models.GNN`'s trimming)."""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class SampledHops(NamedTuple):
    """The hop structure of a neighbour-sampled batch, checked against its edges (:func:`sampled_hops`).

    Attributes:
        num_seeds: the seeds, the first rows of the batch.
        nodes: ``hops + 1`` cumulative node counts: ``nodes[k]`` nodes lie within ``k`` hops of the seeds
            (``nodes[-1]`` is every node of the batch).
        edges: ``hops`` cumulative edge counts: the first ``edges[k]`` edges of ``edge_index`` are all the
            edges into the nodes within ``k`` hops.
    """

    num_seeds: int
    nodes: list[int]
    edges: list[int]

    @property
    def hops(self) -> int:
        """Number of sampled hops."""
        return len(self.edges)

    def within(self, hops: int) -> int:
        """Number of nodes within ``hops`` hops of the seeds (every node beyond the sampled depth)."""
        return self.nodes[min(hops, self.hops)]

    def edges_into(self, hops: int) -> int:
        """Number of leading edges that are all the edges into the nodes within ``hops`` hops."""
        return self.edges[min(hops, self.hops - 1)] if self.hops else 0


def _counts(value) -> list[int] | None:
    """A per-hop count attribute (list or 1-D tensor) as a list of ints; ``None`` when absent."""
    if value is None:
        return None
    if isinstance(value, Tensor):
        return [int(v) for v in value.view(-1).tolist()]
    if isinstance(value, (list, tuple)) and all(isinstance(v, int) or isinstance(v, Tensor) for v in value):
        return [int(v) for v in value]
    return None


def sampled_hops(data) -> tuple[SampledHops | None, str]:
    """The hop structure of a batch from PyG's ``NeighborLoader`` (``num_sampled_nodes``/``num_sampled_edges``),
    or ``(None, reason)`` when the batch does not carry one that trimming may rely on.

    The structure relied on (that of directed neighbour sampling, gnnlab's sampler and PyG's alike): the
    nodes are numbered seeds first, then the nodes new in hop 1, hop 2, ... (``num_sampled_nodes`` of them
    each); the edges are those drawn in hop 0 (into the seeds), then hop 1, ... (``num_sampled_edges``
    each), and an edge of hop ``k`` goes from a node within ``k + 1`` hops into a node new in hop ``k``.
    That is checked here on ``edge_index`` (``O(E)``): then the first ``edges[k]`` edges are all the edges
    into the first ``nodes[k]`` nodes, and their sources lie among the first ``nodes[k + 1]``.
    ``subgraph_type="bidirectional"`` batches carry no counts (PyG drops them), and a batch whose
    edges break the order is refused with the reason.
    """
    counts_n = _counts(getattr(data, "num_sampled_nodes", None))
    counts_e = _counts(getattr(data, "num_sampled_edges", None))
    if counts_n is None or counts_e is None:
        return None, "the batch carries no per-hop counts (num_sampled_nodes, num_sampled_edges)"
    edge_index, x = getattr(data, "edge_index", None), getattr(data, "x", None)
    if not isinstance(edge_index, Tensor) or not isinstance(x, Tensor):
        return None, "the batch has no edge_index or x tensor"
    if len(counts_n) != len(counts_e) + 1 or min(counts_n + counts_e) < 0:
        return None, (f"per-hop counts of different depths or negative: num_sampled_nodes={counts_n}, "
                      f"num_sampled_edges={counts_e}")
    num_nodes, num_edges = x.size(0), edge_index.size(1)
    if sum(counts_n) != num_nodes or sum(counts_e) != num_edges:
        return None, (f"the per-hop counts ({sum(counts_n)} nodes, {sum(counts_e)} edges) do not add up to the "
                      f"batch ({num_nodes} nodes, {num_edges} edges)")
    batch_size = getattr(data, "batch_size", None)
    if isinstance(batch_size, int) and batch_size != counts_n[0]:
        return None, f"batch_size={batch_size} but num_sampled_nodes[0]={counts_n[0]} seeds"
    nodes = [sum(counts_n[: k + 1]) for k in range(len(counts_n))]
    edges = [sum(counts_e[: k + 1]) for k in range(len(counts_e))]
    hops = SampledHops(counts_n[0], nodes, edges)
    # The edges of hop k: targets new in hop k, sources within k + 1 hops (one slice per hop, no per-edge hop id).
    lo_node, lo_edge = 0, 0
    for k, hi_edge in enumerate(edges):
        src, dst = edge_index[0, lo_edge:hi_edge], edge_index[1, lo_edge:hi_edge]
        if src.numel():
            (lo, hi), (src_lo, src_hi) = torch.aminmax(dst), torch.aminmax(src)
            if int(lo) < lo_node or int(hi) >= nodes[k] or int(src_lo) < 0 or int(src_hi) >= nodes[k + 1]:
                return None, (f"the edges of hop {k} (edges {lo_edge}..{hi_edge - 1}) break the hop order of directed "
                              f"neighbour sampling: targets must be the nodes {lo_node}..{nodes[k] - 1}, sources "
                              f"below {nodes[k + 1]} (cumulative nodes {nodes}, edges {edges})")
        lo_node, lo_edge = nodes[k], hi_edge
    return hops, ""
