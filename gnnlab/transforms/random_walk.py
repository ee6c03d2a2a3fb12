"""Random-walk structural encoding (RWSE): return probabilities of random walks of length 1..k."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from gnnlab.transforms._graph import (
    EncodingTransform, adjacency, check_attr, check_graph, check_int, diag_scale, graph_of, safe_power
)

__all__ = ["random_walk_diagonals", "random_walk_diagonals_dense", "RandomWalkSE"]

# Below this size a dense matrix product beats scipy's sparse one (call overhead dominates).
_DENSE_MAX_NODES = 128
# Entries of one N x b block (float64): 2^23 entries are 64 MiB per block array.
_BLOCK_ENTRIES = 2**23


def _check_block_size(block_size) -> int | None:
    return None if block_size is None else check_int("block_size", block_size)


def _diagonals_blocked(op: sp.csr_array | np.ndarray, k: int, block_size: int, symmetric: bool) -> np.ndarray:
    """``diag(op^t)`` for ``t = 1..k``, ``block_size`` identity columns ``E`` at a time (memory
    ``O(nnz + N * block_size)``): ``Y = op^t E`` advances by one product per step and row ``j`` of
    column ``j`` is the wanted entry. For a symmetric ``op`` about ``k / 2`` products per block do:
    with ``Y_m = op^m E``, ``(op^{2m})_{jj} = |Y_m e_j|^2`` and ``(op^{2m+1})_{jj} = <Y_m e_j, Y_{m+1} e_j>``.
    """
    n = op.shape[0]
    out = np.empty((n, k))
    for start in range(0, n, block_size):
        cols = np.arange(start, min(start + block_size, n))
        y = np.zeros((n, len(cols)))  # (N, b): Y_0 = E
        y[cols, np.arange(len(cols))] = 1.0
        if not symmetric:
            for t in range(k):
                y = op @ y
                out[cols, t] = y[cols, np.arange(len(cols))]
            continue
        for m in range((k + 1) // 2):
            y_next = op @ y  # Y_{m+1}
            if 2 * m + 1 <= k:
                out[cols, 2 * m] = np.einsum("ij,ij->j", y, y_next)  # t = 2m + 1
            if 2 * m + 2 <= k:
                out[cols, 2 * m + 1] = np.einsum("ij,ij->j", y_next, y_next)  # t = 2m + 2
            y = y_next
    return out


def random_walk_diagonals(
    edge_index: Tensor, num_nodes: int, k: int, block_size: int | None = None
) -> Tensor:
    r"""Return probabilities of random walks: the diagonals of the first ``k`` powers of ``P = D^{-1} A``.

    The random-walk structural encoding (RWSE) of Dwivedi et al., "Graph Neural Networks with
    Learnable Structural and Positional Representations", ICLR 2022, used by GraphGPS (Rampášek et
    al., NeurIPS 2022):

    .. math::
        \mathrm{RWSE}_i = \big[(P)_{ii}, (P^2)_{ii}, \dots, (P^k)_{ii}\big], \qquad P = D^{-1} A.

    ``A`` is the binary adjacency of ``edge_index`` as given: directed edges are walked in their
    direction, ``D`` holds out-degrees, duplicate edges count once and self loops are kept. A node
    without out-edges has a zero row in ``P`` (its walks stop), so its entries are 0.

    Computed sparsely, ``b`` columns at a time: for each block ``E`` of ``b`` identity columns,
    ``Y = P^t E`` advances by one sparse product per step and the block's diagonal entries are read
    off, so memory stays ``O(nnz + N b)``, never ``O(N^2)`` (unless ``b = N``). Small graphs are one
    block. On undirected graphs the symmetric ``S = D^{-1/2} A D^{-1/2}`` (same diagonals as ``P``)
    halves the work: with ``Y_m = S^m E``, :math:`(S^{2m})_{jj} = \lVert Y_m e_j \rVert^2` and
    :math:`(S^{2m+1})_{jj} = \langle Y_m e_j, Y_{m+1} e_j \rangle`. The total cost is about
    ``k * nnz * N`` multiply-adds, so exact RWSE is costly on graphs with ``10^5`` or more nodes.

    Args:
        edge_index: ``[2, E]`` integer tensor.
        num_nodes: number of nodes ``N``.
        k: number of walk lengths.
        block_size: columns per block ``b``; ``None`` takes about ``2^23 / N`` (64 MiB per block array,
            the whole graph at once below ~2900 nodes).

    Returns:
        float64 tensor, column ``t - 1`` holding :math:`\mathrm{diag}(P^t)`.

    Shapes:
        - **input:** ``edge_index`` :math:`(2, E)`
        - **output:** :math:`(N, k)`

    Raises:
        ValueError: ``k < 1``, ``block_size < 1`` or an invalid ``edge_index``.
    """
    k = check_int("k", k)
    block_size = _check_block_size(block_size)
    edges, n = check_graph(edge_index, num_nodes)
    if n == 0:
        return torch.zeros(0, k, dtype=torch.float64)
    a = adjacency(edges, n, symmetric=False, self_loops="keep")
    deg = np.asarray(a.sum(axis=1)).ravel()
    block_size = min(block_size or max(1, _BLOCK_ENTRIES // n), n)
    if n <= _DENSE_MAX_NODES:
        a = a.toarray()
        symmetric = bool(np.array_equal(a, a.T))
    else:
        symmetric = (a != a.T).nnz == 0
    if symmetric:
        inv_sqrt = safe_power(deg, -0.5)
        op = diag_scale(a, inv_sqrt, inv_sqrt)  # S = D^-1/2 A D^-1/2
    else:
        op = diag_scale(a, safe_power(deg, -1.0), np.ones(n))  # P = D^-1 A
    return torch.from_numpy(_diagonals_blocked(op, k, block_size, symmetric))


def random_walk_diagonals_dense(edge_index: Tensor, num_nodes: int, k: int) -> Tensor:
    r"""Dense reference of :func:`random_walk_diagonals`: ``torch.linalg.matrix_power`` on a dense ``P``.

    Same definition (binary ``A`` of the edges as given, ``P = D^{-1} A`` with zero rows for nodes
    without out-edges), computed in float64 with ``O(N^2)`` memory. Meant for tests and benchmarks.

    Args:
        edge_index, num_nodes, k: as :func:`random_walk_diagonals`.

    Shapes:
        - **input:** ``edge_index`` :math:`(2, E)`
        - **output:** :math:`(N, k)` float64

    Raises:
        ValueError: ``k < 1`` or an invalid ``edge_index``.
    """
    k = check_int("k", k)
    edges, n = check_graph(edge_index, num_nodes)
    edges = torch.from_numpy(edges)
    a = torch.zeros(n, n, dtype=torch.float64)
    a[edges[0], edges[1]] = 1.0
    deg = a.sum(dim=1, keepdim=True)  # (N, 1)
    p = a / deg.clamp(min=1.0)  # rows of nodes without out-edges stay zero
    out = torch.zeros(n, k, dtype=torch.float64)
    for t in range(1, k + 1):
        out[:, t - 1] = torch.linalg.matrix_power(p, t).diagonal()
    return out


class RandomWalkSE(EncodingTransform):
    r"""Write the random-walk structural encoding (RWSE) of a graph as a node attribute.

    Writes ``data[attr]``, float32 :math:`(N, k)`, with column ``t - 1`` the probability that a
    ``t``-step random walk from a node returns to it (see :func:`random_walk_diagonals`;
    Dwivedi et al., ICLR 2022).

    .. math::
        \texttt{data[attr]}_{i, t-1} = (P^t)_{ii}, \qquad P = D^{-1} A, \quad t = 1, \dots, k.

    Args:
        k: number of walk lengths (GraphGPS uses 20 on ZINC).
        attr: attribute name.
        block_size: columns per block of the blocked sparse path; ``None`` picks by graph size.

    Shapes:
        - **input:** graph with ``N`` nodes and ``edge_index`` :math:`(2, E)`
        - **output:** ``data[attr]`` :math:`(N, k)`
    """

    _params = ("k", "attr", "block_size")

    def __init__(self, k: int, attr: str = "rwse", block_size: int | None = None) -> None:
        self.k = check_int("k", k)
        self.attr = check_attr(attr)
        self.block_size = _check_block_size(block_size)

    def forward(self, data):
        """Compute the encoding of ``data`` and write ``data[attr]``."""
        edge_index, num_nodes = graph_of(data)
        data[self.attr] = random_walk_diagonals(edge_index, num_nodes, self.k, self.block_size).float()
        return data
