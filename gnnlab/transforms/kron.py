r"""The graph pyramid of ECC: vertex decimation by the sign of the top Laplacian eigenvector, Kron reduction.

Simonovsky & Komodakis (ECC, CVPR 2017) pool graphs on a pyramid that Errica et al.'s fair comparison
(ICLR 2020) builds per graph before training. From the normalised Laplacian
:math:`L_0 = I - D^{-1/2} A D^{-1/2}` (isolated nodes get a zero row), each level keeps the nodes where the
eigenvector of the largest eigenvalue of :math:`L_{k-1}` is non-negative (:math:`V_+`) and connects them by
the Kron reduction (the Schur complement that eliminates the others, :math:`V_-`):

.. math::
    L_k = L_{++} - L_{+-} L_{--}^{+} L_{-+}

(:math:`L_{--}^{+}` the pseudo-inverse: a component that lies wholly in :math:`V_-` makes
:math:`L_{--}` singular). A level of one node stays as it is; so does a level where every node is kept.

*Choices*: the eigenvector is exact (``numpy.linalg.eigh``, the authors run 30 power iterations from a random
start) and its sign, which an eigensolver leaves open, is fixed by making its largest-magnitude entry
positive, so the pyramid is a function of the graph alone, up to the node order where the spectrum leaves it
open: a repeated largest eigenvalue (say two bipartite components) or a tie for the largest magnitude.

Stored for every level ``k = 1 .. L`` (``attr = 'kron'``):

- ``kron_keep{k}`` ``(N_{k-1},)`` bool: which nodes of level ``k - 1`` (level 0: the graph) level ``k`` keeps;
- ``kron_edges{k}`` ``(E_k, 2)`` int64: the non-zero entries of :math:`L_k` (its diagonal included) as
  ``(source, target)`` rows in local ids of level ``k``; not called ``*index`` and stored row-wise, so PyG
  concatenates them along the edges and does not offset them by the graph's node count when batching
  (:class:`gnnlab.models.ECC` offsets them by the level's own counts);
- ``kron_weight{k}`` ``(E_k,)`` float32: those entries;
- ``kron_sizes{k}`` ``(1, 2)`` int64: ``[N_k, E_k]`` (one row per graph in a batch).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from gnnlab.transforms._graph import EncodingTransform, adjacency, check_attr, check_graph, check_int, graph_of, \
    safe_power

__all__ = ["KronReduction", "kron_reduction", "normalized_laplacian_dense"]

#: Entries of a reduced Laplacian below this magnitude are numerical zeros, not edges.
_ZERO = 1e-10


def normalized_laplacian_dense(edge_index: Tensor, num_nodes: int) -> np.ndarray:
    """``I - D^{-1/2} A D^{-1/2}`` as a float64 array (edges read as undirected, self loops and duplicates
    dropped); an isolated node has a zero row and column."""
    edges, n = check_graph(edge_index, num_nodes)
    a = adjacency(edges, n, symmetric=True, self_loops="remove").toarray()
    degree = a.sum(1)
    d = safe_power(degree, -0.5)
    return np.diag((degree > 0).astype(np.float64)) - d[:, None] * a * d[None, :]


def kron_reduction(lap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One level of the pyramid: ``(keep, L_next)`` for the Laplacian ``lap`` (see the module docstring)."""
    n = lap.shape[0]
    if n <= 1:
        return np.ones(n, dtype=bool), lap.copy()
    _, vectors = np.linalg.eigh(lap)
    top = vectors[:, -1]
    if top[np.argmax(np.abs(top))] < 0:
        top = -top
    keep = top >= 0
    if keep.all():
        return keep, lap.copy()
    plus, minus = np.flatnonzero(keep), np.flatnonzero(~keep)
    schur = lap[np.ix_(plus, minus)] @ np.linalg.pinv(lap[np.ix_(minus, minus)]) @ lap[np.ix_(minus, plus)]
    reduced = lap[np.ix_(plus, plus)] - schur
    return keep, (reduced + reduced.T) / 2  # symmetric up to rounding


class KronReduction(EncodingTransform):
    r"""Store the ECC graph pyramid of ``num_levels`` levels (see the module docstring for the layout).

    Args:
        num_levels: number of reduced levels ``L``. (default: :obj:`2`)
        attr: prefix of the attribute names. (default: :obj:`'kron'`)
    """

    _params = ("num_levels", "attr")

    def __init__(self, num_levels: int = 2, attr: str = "kron") -> None:
        self.num_levels = check_int("num_levels", num_levels)
        self.attr = check_attr(attr)

    def forward(self, data):
        """Build the pyramid of ``data`` and write its ``{attr}_keep{k}``, ``_edges{k}``, ``_weight{k}``, ``_sizes{k}``."""
        edge_index, num_nodes = graph_of(data)
        lap = normalized_laplacian_dense(edge_index, num_nodes)
        for k in range(1, self.num_levels + 1):
            keep, lap = kron_reduction(lap)
            rows, cols = np.nonzero(np.abs(lap) > _ZERO)
            data[f"{self.attr}_keep{k}"] = torch.from_numpy(keep)
            data[f"{self.attr}_edges{k}"] = torch.from_numpy(np.stack([cols, rows], 1).astype(np.int64))  # j -> i
            data[f"{self.attr}_weight{k}"] = torch.from_numpy(lap[rows, cols]).float()
            data[f"{self.attr}_sizes{k}"] = torch.tensor([[lap.shape[0], len(rows)]], dtype=torch.int64)
        return data
