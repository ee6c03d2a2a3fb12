r"""Token sequences read off a graph's hierarchical affinity clustering (HAC) tree, for a whole batch.

GSM++ (Behrouz et al., "Best of Both Worlds: Advantages of Hybrid Graph Sequence Models", ICML 2025,
arXiv 2411.15671) tokenizes a graph with its HAC tree (abstract, Fig. 2; the tree is precomputed by
:class:`gnnlab.transforms.HACTree`). Two readings of the tree are built here:

- **node-level sequence** (one per graph): the nodes in the depth-first order of the tree, children
  visited in increasing representative order, so every cluster of every level is a contiguous run
  and similar nodes sit close together;
- **hierarchical sequences** (one per node): the clusters on the path from the root of the node's
  tree down to the node, coarsest first, the node itself last. A level at which the node's cluster
  did not merge (one child) is the same tree node as the level below and appears once. A cluster
  token carries the mean of its members' current features, so the sequence summarises the graph
  around the node at every scale.

The index bookkeeping depends on the graph only and is built once per forward pass
(:func:`hac_tokens`); the features are gathered per layer (:func:`hierarchical_sequences`,
:func:`node_sequence`).

    tokens = hac_tokens(data.hac_index, data.batch)
    seq, offsets, level = hierarchical_sequences(x, tokens)     # (T, D), (N + 1,), (T,)
    out = seq_model(seq, offsets)[offsets[1:] - 1]                # (N, D): each node's last token
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from gnnlab.nn.ssm.sequence import sequence_offsets
from gnnlab.ops import scatter

__all__ = ["HACTokens", "hac_tokens", "hierarchical_sequences", "node_sequence"]


class HACTokens(NamedTuple):
    """Index bookkeeping of the HAC tokenizations of a batch (see :func:`hac_tokens`).

    Attributes:
        perm: ``(N,)`` node ids in depth-first tree order, graph by graph.
        graph_offsets: ``(B + 1,)`` offsets of each graph's run in ``perm`` (``cu_seqlens``).
        graph_of_position: ``(N,)`` graph id at each position of ``perm`` (sorted).
        token_node: ``(T,)`` the node whose hierarchical sequence holds each token (sorted).
        token_cluster: ``(T,)`` compact id of the tree node (cluster) each token stands for.
        token_level: ``(T,)`` level of that tree node, ``0`` for the node itself.
        offsets: ``(N + 1,)`` offsets of each node's hierarchical sequence (``cu_seqlens``).
        num_clusters: number of distinct tree nodes among the tokens.
        num_levels: ``L``, the levels stored.
    """

    perm: Tensor
    graph_offsets: Tensor
    graph_of_position: Tensor
    token_node: Tensor
    token_cluster: Tensor
    token_level: Tensor
    offsets: Tensor
    num_clusters: int
    num_levels: int


def _check_levels(levels: Tensor) -> Tensor:
    if not isinstance(levels, Tensor):
        raise ValueError(f"hac_tokens: hac_index must be a tensor, got {type(levels).__name__} "
                         "(precompute it with gnnlab.transforms.HACTree, `pe=hac`)")
    if levels.dim() != 2 or levels.dtype not in (torch.int64, torch.int32) or levels.size(0) < 1:
        raise ValueError(f"hac_tokens: hac_index must be an integer [L >= 1, N] tensor, got {levels.dtype} "
                         f"{list(levels.shape)}")
    levels = levels.long()
    n = levels.size(1)
    if n == 0:
        return levels
    node = torch.arange(n, device=levels.device)
    if int(levels.min()) < 0 or bool((levels > node).any()):
        raise ValueError("hac_tokens: hac_index must name each cluster by its smallest node id (0 <= rep <= node)")
    below = torch.cat([node[None], levels[:-1]])  # (L, N): the cluster one level down, level 0 = the node
    # Every representative belongs to its own cluster, and clusters nest: the level-l cluster of a
    # node's level-(l-1) representative is the node's level-l cluster.
    if bool((levels.gather(1, levels) != levels).any()) or bool((levels.gather(1, below) != levels).any()):
        raise ValueError("hac_tokens: hac_index is not a nested clustering (a representative outside its "
                         "cluster, or a level that splits a cluster of the level below)")
    return levels


def hac_tokens(levels: Tensor, batch: Tensor | None = None, num_graphs: int | None = None) -> HACTokens:
    """Build the node-level and hierarchical tokenizations of a batch from its HAC tree.

    Args:
        levels: ``(L, N)`` cluster representative of every node at levels ``1..L`` (a batch's
            ``hac_index``, node ids of the batch).
        batch: ``(N,)`` sorted graph id of each node (:obj:`None`: one graph).
        num_graphs: number of graphs ``B`` (default: read from ``batch``).

    Returns:
        :class:`HACTokens`.

    Raises:
        ValueError: ``levels`` is not a nested clustering named by smallest members, or ``batch``
            does not match it.
    """
    levels = _check_levels(levels)
    num_levels, n = levels.shape
    device = levels.device
    if batch is None:
        batch = torch.zeros(n, dtype=torch.long, device=device)
    elif batch.shape != (n,):
        raise ValueError(f"hac_tokens: batch must have shape [{n}], got {list(batch.shape)}")
    if n and bool((batch.gather(0, levels.reshape(-1)) != batch.repeat(num_levels)).any()):
        raise ValueError("hac_tokens: a cluster of hac_index spans several graphs of the batch")
    node = torch.arange(n, device=device)

    # Depth-first order = lexicographic order of (graph, rep_L, ..., rep_1, node): stable sorts from the
    # least significant key up.
    perm = node
    for key in [*levels, batch]:
        perm = perm[torch.argsort(key[perm], stable=True)]
    graph_offsets = sequence_offsets(batch, n, num_graphs)

    # Cluster sizes per level; a level whose cluster did not grow repeats the tree node below it.
    size = torch.stack([torch.bincount(lvl, minlength=n)[lvl] for lvl in levels])  # (L, N)
    grew = size > torch.cat([torch.ones_like(size[:1]), size[:-1]])  # (L, N)
    # Token table, node-major, coarsest level first and the node itself last: (N, L + 1).
    keep = torch.cat([grew.flip(0), torch.ones_like(grew[:1])]).t()  # (N, L + 1)
    tree_key = torch.cat([levels.flip(0) + torch.arange(num_levels, 0, -1, device=device)[:, None] * n,
                          node[None]]).t()  # level * N + rep, (N, L + 1)
    token_level = torch.arange(num_levels, -1, -1, device=device).expand(n, -1)[keep]
    token_node = node[:, None].expand(-1, num_levels + 1)[keep]
    clusters, token_cluster = torch.unique(tree_key[keep], return_inverse=True)
    offsets = torch.cat([keep.new_zeros(1, dtype=torch.long), keep.sum(1).cumsum(0)])
    return HACTokens(perm, graph_offsets, batch[perm], token_node, token_cluster, token_level, offsets,
                     int(clusters.numel()), num_levels)


def hierarchical_sequences(x: Tensor, tokens: HACTokens) -> tuple[Tensor, Tensor, Tensor]:
    r"""Features of every node's hierarchical sequence: cluster means along its root-to-leaf path.

    The token of tree node :math:`C` is :math:`\frac{1}{|C|}\sum_{u \in C} x_u` (the node's own token
    is :math:`x_v`).

    Args:
        x: ``(N, D)`` node features.
        tokens: from :func:`hac_tokens`.

    Returns:
        ``(seq, offsets, level)``: packed tokens ``(T, D)``, per-node offsets ``(N + 1,)`` and the
        tree level of each token ``(T,)``.
    """
    if x.dim() != 2 or x.size(0) != tokens.offsets.numel() - 1:
        raise ValueError(f"hierarchical_sequences: x must be [N={tokens.offsets.numel() - 1}, D], got {list(x.shape)}")
    # Each token's node is a member of the token's cluster, and every member of a kept cluster holds
    # one token of it, so the mean over the tokens of a cluster is the mean over its members.
    means = scatter(x.index_select(0, tokens.token_node), tokens.token_cluster, dim=0,
                    dim_size=tokens.num_clusters, reduce="mean")  # (C, D)
    return means.index_select(0, tokens.token_cluster), tokens.offsets, tokens.token_level


def node_sequence(x: Tensor, tokens: HACTokens) -> tuple[Tensor, Tensor, Tensor]:
    """The nodes of each graph in depth-first tree order: ``(x[perm], graph offsets, graph id per row)``."""
    if x.dim() != 2 or x.size(0) != tokens.perm.numel():
        raise ValueError(f"node_sequence: x must be [N={tokens.perm.numel()}, D], got {list(x.shape)}")
    return x.index_select(0, tokens.perm), tokens.graph_offsets, tokens.graph_of_position
