r"""Hierarchical affinity clustering (HAC) of a graph: the tree GSM++ tokenizes with, stored per node.

GSM++ (Behrouz, Parviz, Karami, Sanford, Perozzi, Mirrokni, "Best of Both Worlds: Advantages of
Hybrid Graph Sequence Models", ICML 2025, arXiv 2411.15671) tokenizes a graph with the tree of
Hierarchical Affinity Clustering (abstract; Fig. 2). Affinity clustering (Bateni et al., "Affinity
Clustering: Hierarchical Clustering at Scale", NeurIPS 2017) is Borůvka's minimum-spanning-tree
algorithm read as a clustering: in every round each cluster picks its most similar *neighbouring*
cluster and every chain of picks merges into one cluster. The clusters after round ``ℓ`` form level
``ℓ`` of the tree (level 0: one node per cluster); a cluster with at least one neighbouring cluster
merges in every round, so each connected component is one cluster after at most
``ceil(log2(component size))`` rounds.

The tree is a function of the graph alone, so it is computed once per graph and cached with the
dataset (:func:`gnnlab.transforms.precompute`). What is stored (``attr = 'hac'`` by default):

- ``hac_index`` ``(L, N)`` int64: row ``ℓ - 1`` names the level-``ℓ`` cluster of every node by its
  representative, the smallest node id in the cluster. The name contains ``index`` on purpose: PyG
  concatenates such attributes along their last dimension and adds the running node offset when
  batching, so in a ``Batch`` the representatives stay node ids of the batch and clusters of
  different graphs never share an id.
- ``hac_pe`` ``(N, 2L)`` float32: the hierarchical positional encoding, see :func:`hac_positional_encoding`.

Graphs whose clustering ends before ``L`` rounds repeat their last partition; graphs that need more
than ``L`` rounds keep the first (finest) ``L`` levels. Choices the paper leaves open (its full text
could not be consulted here; see the GSM++ model docstring) are marked *choice* below.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import connected_components
from torch import Tensor

from gnnlab.transforms._graph import EncodingTransform, adjacency, check_attr, check_graph, check_int, graph_of

__all__ = [
    "SIMILARITIES",
    "edge_similarity",
    "affinity_clustering",
    "hac_positional_encoding",
    "HACTree",
]

#: Edge similarities :func:`affinity_clustering` can cluster by.
SIMILARITIES = ("jaccard", "cosine")


def _undirected_pairs(edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique unordered node pairs ``u < v`` of the edges (direction, duplicates and self loops dropped)."""
    u, v = np.minimum(edges[0], edges[1]), np.maximum(edges[0], edges[1])
    keep = u != v
    pairs = np.unique(np.stack([u[keep], v[keep]]), axis=1) if keep.any() else np.zeros((2, 0), dtype=np.int64)
    return pairs[0], pairs[1]


def edge_similarity(edge_index: Tensor, num_nodes: int, similarity: str = "jaccard", x: Tensor | None = None):
    r"""Similarity weight of every undirected edge, the affinity that :func:`affinity_clustering` maximises.

    - ``'jaccard'`` (structure only): :math:`w(u, v) = |N[u] \cap N[v]| \,/\, |N[u] \cup N[v]|` over
      closed neighbourhoods :math:`N[u] = N(u) \cup \{u\}`, edges read as undirected;
    - ``'cosine'`` (features): :math:`w(u, v) = \langle x_u, x_v \rangle / (\lVert x_u \rVert \lVert x_v \rVert)`,
      0 where a feature row is all zeros.

    Args:
        edge_index: ``[2, E]`` integer tensor (direction, duplicates and self loops are ignored).
        num_nodes: ``N``.
        similarity: ``'jaccard'`` or ``'cosine'``.
        x: ``(N, F)`` node features, needed by ``'cosine'``.

    Returns:
        ``(u, v, w)`` numpy arrays over the unique pairs ``u < v``; ``w`` float64.
    """
    if similarity not in SIMILARITIES:
        raise ValueError(f"similarity must be one of {', '.join(SIMILARITIES)}, got {similarity!r}")
    edges, n = check_graph(edge_index, num_nodes)
    u, v = _undirected_pairs(edges)
    if similarity == "jaccard":
        a = adjacency(edges, n, symmetric=True, self_loops="add")  # closed neighbourhoods
        common = np.asarray((a[u].multiply(a[v])).sum(axis=1)).ravel() if len(u) else np.zeros(0)
        size = np.asarray(a.sum(axis=1)).ravel()
        w = common / (size[u] + size[v] - common) if len(u) else np.zeros(0)
        return u, v, w.astype(np.float64)
    if x is None:
        raise ValueError("similarity='cosine' needs node features x")
    if not isinstance(x, Tensor) or x.dim() not in (1, 2) or x.size(0) != n:
        raise ValueError(f"x must be a tensor with {n} rows (one per node), got "
                         f"{list(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
    feats = x.detach().cpu().reshape(n, -1).to(torch.float64).numpy()
    if not np.isfinite(feats).all():
        raise ValueError("x holds NaN or infinite values; cosine similarity needs finite features")
    norm = np.linalg.norm(feats, axis=1)
    dot = np.einsum("ij,ij->i", feats[u], feats[v])
    denom = norm[u] * norm[v]
    w = np.divide(dot, denom, out=np.zeros_like(dot), where=denom > 0)
    return u, v, w


def affinity_clustering(
    edge_index: Tensor,
    num_nodes: int,
    similarity: str = "jaccard",
    x: Tensor | None = None,
    max_levels: int | None = None,
) -> np.ndarray:
    r"""Levels of affinity clustering (Borůvka rounds), each node named by its cluster's smallest node id.

    One round, on the current clusters: every cluster :math:`C` that has a neighbouring cluster picks

    .. math::
        \mathrm{best}(C) = \arg\max_{C' \ne C} \; \max_{(u, v) \in E,\, u \in C,\, v \in C'} w(u, v)

    (single linkage, as Borůvka's MST step; ties go to the candidate with the smaller representative),
    and the connected components of the picked pairs become the clusters of the next level. Rounds
    repeat until no edge joins two clusters, i.e. every connected component is one cluster.

    Args:
        edge_index: ``[2, E]`` integer tensor.
        num_nodes: ``N``.
        similarity: edge affinity, see :func:`edge_similarity`.
        x: node features for ``'cosine'``.
        max_levels: stop after this many rounds (``None``: run to the end).

    Returns:
        ``(R, N)`` int64 array, row ``r`` the representative (smallest member id) of each node's
        cluster after round ``r + 1``; ``R = 0`` for a graph without edges.
    """
    if max_levels is not None:
        max_levels = check_int("max_levels", max_levels)
    u, v, w = edge_similarity(edge_index, num_nodes, similarity, x)
    n = int(num_nodes)
    nodes = np.arange(n)
    # Both directions: every cluster looks at all its outgoing inter-cluster edges.
    src, dst, weight = np.concatenate([u, v]), np.concatenate([v, u]), np.concatenate([w, w])
    label = nodes.copy()
    levels = []
    while max_levels is None or len(levels) < max_levels:
        a, b = label[src], label[dst]
        cross = a != b
        if not cross.any():
            break
        a, b, wt = a[cross], b[cross], weight[cross]
        # Best neighbour per cluster: sort by cluster, then weight descending, then neighbour id.
        order = np.lexsort((b, -wt, a))
        a, b = a[order], b[order]
        first = np.ones(len(a), dtype=bool)
        first[1:] = a[1:] != a[:-1]
        picks = sp.coo_array((np.ones(int(first.sum())), (a[first], b[first])), shape=(n, n))
        _, component = connected_components(picks, directed=False)
        comp_of_node = component[label]
        rep = np.full(component.max() + 1, n, dtype=np.int64)
        np.minimum.at(rep, comp_of_node, nodes)
        label = rep[comp_of_node]
        levels.append(label.copy())
    return np.stack(levels) if levels else np.zeros((0, n), dtype=np.int64)


def _pad_levels(levels: np.ndarray, num_nodes: int, num_levels: int) -> np.ndarray:
    """Exactly ``num_levels`` rows: the last partition repeated (level 0, the nodes, when there is none)."""
    if len(levels) >= num_levels:
        return levels[:num_levels]
    last = levels[-1] if len(levels) else np.arange(num_nodes)
    return np.concatenate([levels, np.repeat(last[None], num_levels - len(levels), axis=0)])


def hac_positional_encoding(levels: np.ndarray) -> np.ndarray:
    r"""Hierarchical positional encoding of every node from its path in the tree ``levels`` ``(L, N)``.

    For level :math:`\ell = 1..L`, let :math:`C_\ell(v)` be the level-:math:`\ell` cluster of
    :math:`v` (:math:`C_0(v) = \{v\}`), :math:`k_\ell(v)` the number of its children (distinct
    level-:math:`(\ell-1)` clusters inside it) and :math:`a_\ell(v) \in \{0, \dots, k_\ell(v) - 1\}` the
    rank of :math:`C_{\ell-1}(v)` among them by representative. The encoding is

    .. math::
        \mathrm{HPE}(v) = \Big[\tfrac{a_1(v)}{k_1(v)}, \dots, \tfrac{a_L(v)}{k_L(v)},\;
            \log_2 k_1(v), \dots, \log_2 k_L(v)\Big] \in \mathbb{R}^{2L},

    the node's root-to-leaf address (a Dewey code, normalised per level) and the branching along it;
    two nodes share a prefix of ``a`` exactly as far as they share ancestors. *Choice*: the paper's
    exact formula for its hierarchical PE could not be consulted; this one is computed from the
    same tree and is deterministic per graph.

    Returns:
        ``(N, 2L)`` float64 array.
    """
    num_levels, n = levels.shape
    out = np.zeros((n, 2 * num_levels))
    child = np.arange(n)
    for lvl in range(num_levels):
        parent = levels[lvl]
        # Distinct (parent, child) pairs, sorted by parent then child representative.
        pairs = np.unique(np.stack([parent, child]), axis=1)
        first = np.ones(pairs.shape[1], dtype=bool)
        first[1:] = pairs[0, 1:] != pairs[0, :-1]
        start = np.maximum.accumulate(np.where(first, np.arange(pairs.shape[1]), 0))
        rank_of_pair = np.arange(pairs.shape[1]) - start
        count = np.bincount(pairs[0], minlength=n)
        # Look up each node's (parent, child) pair.
        pair_id = np.searchsorted(pairs[0] * n + pairs[1], parent * n + child)
        k = count[parent]
        out[:, lvl] = rank_of_pair[pair_id] / k
        out[:, num_levels + lvl] = np.log2(k)
        child = parent
    return out


class HACTree(EncodingTransform):
    r"""Store the affinity-clustering tree of a graph: ``{attr}_index`` and ``{attr}_pe``.

    See the module docstring for the layout and :func:`affinity_clustering` and
    :func:`hac_positional_encoding` for the definitions; the depth-first traversal of the tree
    (the node order of GSM++'s node-level sequence) is read from ``{attr}_index`` at run time by
    :func:`gnnlab.nn.tokenizers.hac_tokens`. GSM++
    (arXiv 2411.15671) reads the tree through :mod:`gnnlab.nn.tokenizers.hac`; the positional
    encoding alone serves any model through ``pe=hac``
    (:class:`gnnlab.nn.pe.HierarchicalPEEncoder`).

    Args:
        num_levels: number of levels ``L`` stored (rows of ``{attr}_index``); a component of up to
            ``2^L`` nodes always fits. (default: :obj:`8`)
        similarity: ``'jaccard'`` (closed-neighbourhood overlap, structure only) or ``'cosine'``
            (of ``data.x``). *Choice*: structure by default, since the benchmark features are
            categorical codes (atoms, bonds) or near-empty (CLUSTER/PATTERN). (default: :obj:`'jaccard'`)
        attr: prefix of the attribute names. (default: :obj:`'hac'`)

    Shapes:
        - **input:** graph with ``N`` nodes and ``edge_index`` :math:`(2, E)`
        - **output:** ``{attr}_index`` :math:`(L, N)` int64, ``{attr}_pe`` :math:`(N, 2L)` float32
    """

    _params = ("num_levels", "similarity", "attr")

    def __init__(self, num_levels: int = 8, similarity: str = "jaccard", attr: str = "hac") -> None:
        self.num_levels = check_int("num_levels", num_levels)
        if similarity not in SIMILARITIES:
            raise ValueError(f"similarity must be one of {', '.join(SIMILARITIES)}, got {similarity!r}")
        self.similarity, self.attr = similarity, check_attr(attr)

    def forward(self, data):
        """Cluster ``data`` and write ``{attr}_index`` and ``{attr}_pe``."""
        edge_index, num_nodes = graph_of(data)
        x = getattr(data, "x", None) if self.similarity == "cosine" else None
        levels = affinity_clustering(edge_index, num_nodes, self.similarity, x, max_levels=self.num_levels)
        levels = _pad_levels(levels, num_nodes, self.num_levels)
        data[f"{self.attr}_index"] = torch.from_numpy(levels.astype(np.int64))
        data[f"{self.attr}_pe"] = torch.from_numpy(hac_positional_encoding(levels)).float()
        return data
