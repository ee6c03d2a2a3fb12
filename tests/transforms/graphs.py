"""Random test graphs with several components, isolated nodes, duplicates and self loops."""
from __future__ import annotations

import networkx as nx
import numpy as np
import torch


def random_edges(
    sizes: list[int], p: float, seed: int, isolated: int = 0, noise: bool = True
) -> tuple[torch.Tensor, int]:
    """Undirected Erdős–Rényi blocks of the given sizes (one component each when dense enough),
    followed by ``isolated`` nodes without edges.

    Edges are listed once per direction in random order; with ``noise`` some duplicates and self
    loops are added, which every transform must ignore (or, for RWSE, keep) as documented.
    """
    rng = np.random.default_rng(seed)
    src, dst, offset = [], [], 0
    for n in sizes:
        i, j = np.triu_indices(n, k=1)
        keep = rng.random(len(i)) < p
        # A spanning path keeps each block connected.
        i = np.concatenate([i[keep], np.arange(n - 1)])
        j = np.concatenate([j[keep], np.arange(1, n)])
        src += [i + offset, j + offset]
        dst += [j + offset, i + offset]
        offset += n
    src, dst = np.concatenate(src), np.concatenate(dst)
    if noise and len(src):
        dup = rng.integers(0, len(src), size=max(1, len(src) // 10))
        loops = rng.integers(0, offset, size=3)
        src = np.concatenate([src, src[dup], loops])
        dst = np.concatenate([dst, dst[dup], loops])
    perm = rng.permutation(len(src))
    edge_index = torch.from_numpy(np.stack([src[perm], dst[perm]]).astype(np.int64))
    return edge_index, offset + isolated


def to_networkx(edge_index: torch.Tensor, num_nodes: int) -> nx.Graph:
    """The simple undirected graph of ``edge_index``: self loops and duplicates dropped."""
    g = nx.Graph()
    g.add_nodes_from(range(num_nodes))
    g.add_edges_from(edge_index.t().tolist())
    g.remove_edges_from(list(nx.selfloop_edges(g)))
    return g
