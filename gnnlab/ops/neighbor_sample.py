"""Multi-hop uniform neighbour sampling (GraphSAGE's sampler) over a CSR adjacency.

:func:`neighbor_sample` is the sampling step of :class:`gnnlab.data.sampling.GnnlabNeighborSampler`,
which PyG's ``NeighborLoader`` / ``LinkNeighborLoader`` call when neither ``pyg-lib`` nor
``torch-sparse`` is installed. Its output follows PyG's ``SamplerOutput`` conventions (seeds first,
then hop by hop; edges as local ``(src, dst)`` pairs with messages flowing ``src -> dst``). The compiled
kernel (``torch.ops.gnnlab.neighbor_sample``, CPU) draws every frontier entry from its own
counter-based stream, so a seed gives the same sample for any number of threads; the plain-torch
reference (random keys sorted per segment) is the specification and the fallback, equal in
distribution.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from gnnlab.ops import _loader, _reference

#: Seeds drawn for the kernels lie in ``[0, 2**63 - 1)``.
_SEED_BOUND = 2**63 - 1
#: Whether the loaded ``gnnlab._C`` has this op (an extension built before it was added has not).
_HAS_KERNEL = _loader.extension_available() and hasattr(torch.ops.gnnlab, "neighbor_sample")

if _HAS_KERNEL:

    @torch.library.register_fake("gnnlab::neighbor_sample")
    def _neighbor_sample_fake(rowptr, col, seeds, num_neighbors, replace, seed, check_graph=True):
        ctx = torch.library.get_ctx()
        nodes, edges = ctx.new_dynamic_size(), ctx.new_dynamic_size()
        long = dict(dtype=torch.long)
        return (seeds.new_empty(nodes, **long), seeds.new_empty(edges, **long), seeds.new_empty(edges, **long),
                seeds.new_empty(edges, **long), seeds.new_empty(len(num_neighbors) + 1, **long),
                seeds.new_empty(len(num_neighbors), **long))


class NeighborSample(NamedTuple):
    """The sampled subgraph of :func:`neighbor_sample`.

    Attributes:
        node: ``[M]`` int64 global id of every sampled node: the seeds (as given) first, then the nodes
            new in hop 1, hop 2, ... (each in order of first appearance).
        src: ``[S]`` int64 local index (into ``node``) of each sampled neighbour.
        dst: ``[S]`` int64 local index of the node it was drawn for; ``stack([src, dst])`` is the
            subgraph's ``edge_index`` (PyG's ``row``/``col``).
        edge: ``[S]`` int64 CSR position of each sampled edge (map it through the CSR's permutation
            to get the original edge id).
        num_sampled_nodes: ``hops + 1`` counts (seeds, then the new nodes of each hop).
        num_sampled_edges: ``hops`` counts of the edges drawn in each hop.
    """

    node: Tensor
    src: Tensor
    dst: Tensor
    edge: Tensor
    num_sampled_nodes: list[int]
    num_sampled_edges: list[int]


def neighbor_sample(rowptr: Tensor, col: Tensor, seeds: Tensor, num_neighbors: list[int], replace: bool = False,
                    generator: torch.Generator | None = None, seed: int | None = None,
                    check_graph: bool = True) -> NeighborSample:
    """Sample ``num_neighbors[h]`` neighbours per node in hop ``h``, starting from ``seeds``.

    The neighbours node ``v`` may draw are ``col[rowptr[v]:rowptr[v+1]]``: for message passing
    ``j -> v``, ``v``'s in-neighbours (a CSR over targets, PyG's CSC). Without ``replace`` each node draws
    a uniformly random set of ``min(k, deg)`` distinct adjacency entries; with ``replace``, ``k``
    independent uniform draws (none for an isolated node); ``k = -1`` takes every entry once. The
    nodes first reached in one hop form the next hop's frontier (directed, non-disjoint sampling, as
    PyG's ``NeighborSampler`` with ``disjoint=False``).

    Args:
        rowptr: ``[N + 1]`` int64 CSR offsets (start 0, end ``len(col)``, non-decreasing).
        col: ``[E]`` int32/int64 neighbour ids in ``[0, N)``.
        seeds: ``[B]`` int32/int64 start nodes in ``[0, N)`` (may be empty; a repeated seed keeps
            each of its entries, later references map to its first one).
        num_neighbors: fan-out per hop, each ``-1`` (all) or ``>= 0``.
        replace: draw with replacement.
        generator: source of the call's random seed (torch's default generator when ``None``), so a
            seeded generator gives the same sample on every run.
        seed: the call's random seed itself (overrides ``generator``).
        check_graph: check the values of ``rowptr`` and ``col`` (``O(N + E)``, more than a small batch's
            sampling on a large graph). ``False`` is for a graph checked once by its owner (as
            :class:`gnnlab.data.sampling.GnnlabNeighborSampler` does at construction); its
            ``seeds`` and fan-outs are still checked, its ``rowptr``/``col`` only for dtype, shape and ends.

    Returns:
        A :class:`NeighborSample`; its order is stated there and in :func:`gnnlab.ops._reference.neighbor_sample`.

    Raises:
        ValueError: malformed CSR offsets, ``col`` or ``seeds`` out of ``[0, N)``, a fan-out below ``-1``.
        TypeError: a fan-out that is not an integer.
    """
    fanouts = _reference.check_fanouts(num_neighbors)
    seed = int(seed) if seed is not None else int(torch.randint(0, _SEED_BOUND, (1,), generator=generator))
    tensors = (rowptr, col, seeds)
    if _HAS_KERNEL and _loader.use_extension() and all(isinstance(t, Tensor) and t.device.type == "cpu" for t in tensors):
        # The kernel checks the tensors (ValueError naming the argument), in one pass each.
        out = torch.ops.gnnlab.neighbor_sample(rowptr, col, seeds, fanouts, bool(replace), seed, bool(check_graph))
    else:
        out = _reference.neighbor_sample(rowptr, col, seeds, fanouts, bool(replace), seed, bool(check_graph))
    node, src, dst, edge, num_nodes, num_edges = out
    return NeighborSample(node, src, dst, edge, num_nodes.tolist(), num_edges.tolist())
