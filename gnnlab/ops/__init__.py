"""Graph ops with a compiled fast path (``gnnlab._C``) and a plain-torch reference path.

``gnnlab.ops.backend()`` tells which path is active. Layers call only these functions,
never the extension directly.
"""
from gnnlab.ops._loader import backend, backend_scope, extension_available, extension_error
from gnnlab.ops.csr import coo_to_csr, validate_edge_index
from gnnlab.ops.graph import Graph, csr_targets, resolve_graph
from gnnlab.ops.aggregate import aggregate, aggregate_csr, reduce_messages
from gnnlab.ops.gather import gather_dst, gather_src, reduce_by_source
from gnnlab.ops.gated_aggregate import gated_aggregate
from gnnlab.ops.scatter import scatter, segment_csr
from gnnlab.ops.neighbor_sample import NeighborSample, neighbor_sample
from gnnlab.ops.selective_scan import selective_scan, selective_scan_carry
from gnnlab.ops.common_neighbors import (
    PairSets,
    adamic_adar,
    common_neighbor_aggregate,
    common_neighbor_count,
    common_neighbor_sets,
    has_edge,
    masked_degree,
    resource_allocation,
    target_link_mask,
)

__all__ = [
    "NeighborSample",
    "PairSets",
    "adamic_adar",
    "common_neighbor_aggregate",
    "common_neighbor_count",
    "common_neighbor_sets",
    "has_edge",
    "masked_degree",
    "neighbor_sample",
    "resource_allocation",
    "target_link_mask",
    "Graph",
    "aggregate",
    "aggregate_csr",
    "csr_targets",
    "backend",
    "backend_scope",
    "coo_to_csr",
    "extension_available",
    "reduce_messages",
    "reduce_by_source",
    "gather_dst",
    "gather_src",
    "gated_aggregate",
    "resolve_graph",
    "scatter",
    "selective_scan",
    "selective_scan_carry",
    "segment_csr",
    "extension_error",
    "validate_edge_index",
]
