"""FastRP node embeddings: iterated very sparse random projections of the transition matrix."""
from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from gnnlab.transforms._graph import (
    EncodingTransform, adjacency, check_attr, check_graph, check_int, graph_hash, graph_of, safe_power
)

__all__ = ["very_sparse_random_projection", "fastrp_embedding", "FastRP"]


def _check_sparsity(sparsity) -> float | None:
    if sparsity is None:
        return None
    if isinstance(sparsity, bool) or not isinstance(sparsity, numbers.Real) or not sparsity >= 1:
        raise ValueError(f"sparsity must be a number >= 1 or None, got {sparsity!r}")
    if not math.isfinite(sparsity):
        raise ValueError(f"sparsity must be finite, got {sparsity!r}")
    return float(sparsity)


def _check_weights(weights) -> tuple[float, ...]:
    if isinstance(weights, (str, bytes)) or not isinstance(weights, Sequence) or len(weights) == 0:
        raise ValueError(f"weights must be a non-empty sequence of numbers, got {weights!r}")
    out = []
    for w in weights:
        if isinstance(w, bool) or not isinstance(w, numbers.Real) or not math.isfinite(w):
            raise ValueError(f"weights must be finite numbers, got {list(weights)!r}")
        out.append(float(w))
    if not any(out):
        raise ValueError(f"weights must contain a non-zero entry, got {out!r}")
    return tuple(out)


def _check_beta(beta) -> float:
    if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or not math.isfinite(beta):
        raise ValueError(f"beta must be a finite number, got {beta!r}")
    return float(beta)


def _check_options(dim, weights, beta, sparsity, seed) -> tuple[int, tuple[float, ...], float, float | None, int]:
    """``(dim, weights, beta, sparsity, seed)`` checked in this order, as :func:`fastrp_embedding` takes them."""
    return (check_int("dim", dim), _check_weights(weights), _check_beta(beta), _check_sparsity(sparsity),
            check_int("seed", seed, minimum=0))


def very_sparse_random_projection(
    num_rows: int, dim: int, sparsity: float | None = None, seed: int = 0
) -> sp.csr_array:
    r"""A very sparse random projection matrix (Li, Hastie and Church, KDD 2006; Achlioptas, 2003).

    Entries are independent with

    .. math::
        R_{ij} = \sqrt{s} \cdot \begin{cases}
            +1 & \text{with probability } 1 / (2s) \\
            0 & \text{with probability } 1 - 1/s \\
            -1 & \text{with probability } 1 / (2s)
        \end{cases}

    so :math:`E[R_{ij}] = 0` and :math:`E[R_{ij}^2] = 1`. FastRP uses :math:`s = \sqrt{n}`, which keeps
    about :math:`d \sqrt{n}` non-zeros. Each column draws its number of non-zeros (binomial) and then
    their rows without replacement, which is the same distribution at a cost proportional to the
    non-zeros rather than to ``num_rows * dim``.

    Args:
        num_rows: rows ``n`` (nodes).
        dim: columns ``d``.
        sparsity: ``s >= 1``; ``None`` takes :math:`\max(1, \sqrt{n})`. ``s = 1`` gives dense
            :math:`\pm 1` entries.
        seed: seed of the numpy generator; the same seed gives the same matrix.

    Returns:
        float64 ``scipy.sparse.csr_array``.

    Shapes:
        - **output:** :math:`(n, d)`
    """
    num_rows = check_int("num_rows", num_rows, minimum=0)
    dim = check_int("dim", dim)
    sparsity = _check_sparsity(sparsity)
    s = max(1.0, math.sqrt(num_rows)) if sparsity is None else sparsity
    rng = np.random.default_rng(check_int("seed", seed, minimum=0))
    counts = rng.binomial(num_rows, 1.0 / s, size=dim)
    rows = np.concatenate(
        [rng.choice(num_rows, size=c, replace=False) for c in counts] + [np.zeros(0, dtype=np.int64)]
    ).astype(np.int64)
    cols = np.repeat(np.arange(dim), counts)
    values = math.sqrt(s) * rng.choice(np.array([-1.0, 1.0]), size=len(rows))
    return sp.csr_array((values, (rows, cols)), shape=(num_rows, dim))


def _normalize_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def fastrp_embedding(
    edge_index: Tensor,
    num_nodes: int,
    dim: int,
    weights: Sequence[float] = (0.0, 0.0, 1.0, 6.0),
    beta: float = -0.9,
    normalize: bool = True,
    sparsity: float | None = None,
    self_loops: bool = False,
    seed: int = 0,
    projection: sp.sparray | np.ndarray | None = None,
) -> Tensor:
    r"""FastRP embeddings (Chen et al., "Fast and Accurate Network Embeddings via Very Sparse Random
    Projection", CIKM 2019, Algorithm 1).

    With the transition matrix :math:`S = D^{-1} A` of the undirected graph, a very sparse random
    projection :math:`R` (:func:`very_sparse_random_projection`) and the degree normalisation
    :math:`L = \mathrm{diag}(d_1^\beta, \dots, d_n^\beta)`:

    .. math::
        N_1 = S L R, \qquad N_i = S N_{i-1} \;(i = 2, \dots, q), \qquad
        \mathrm{FastRP} = \sum_{i=1}^{q} \alpha_i \, \mathrm{normalize}(N_i),

    where ``normalize`` scales every row to unit L2 norm (the identity with ``normalize=False``).
    The paper writes :math:`L` with :math:`(d_j / 2m)^\beta`; the constant :math:`(2m)^{-\beta}`
    only rescales every :math:`N_i` and cancels under row normalisation, so it is left out.
    :math:`\beta < 0` lowers the weight of high-degree nodes in the projection (the paper searches
    :math:`\beta \in [-1, 0]`). The graph is made undirected and duplicate edges merged; self loops
    are dropped, then one is put on every node when ``self_loops=True`` (so that a node also sees
    itself). Isolated nodes without self loops get zero rows. Everything is sparse (scipy) except
    the ``(N, dim)`` iterates, so ``10^5``-node graphs take seconds.

    Args:
        edge_index: ``[2, E]`` integer tensor.
        num_nodes: number of nodes ``N``.
        dim: embedding width ``d``.
        weights: :math:`(\alpha_1, \dots, \alpha_q)`; the number of iterations is the position of the
            last non-zero weight. The default favours 3- and 4-hop neighbourhoods.
        beta: degree normalisation strength :math:`\beta`.
        normalize: L2-normalise the rows of every :math:`N_i` before the weighted sum.
        sparsity: ``s`` of the projection; ``None`` takes :math:`\sqrt{N}`.
        self_loops: add a self loop on every node before forming :math:`S`.
        seed: seed of the projection.
        projection: use this :math:`(N, d)` matrix as :math:`R` instead of drawing one.

    Returns:
        float64 tensor.

    Shapes:
        - **input:** ``edge_index`` :math:`(2, E)`
        - **output:** :math:`(N, d)`

    Raises:
        ValueError: a bad parameter, an invalid ``edge_index`` or a ``projection`` of the wrong shape.
    """
    dim, weights, beta, sparsity, seed = _check_options(dim, weights, beta, sparsity, seed)
    edges, n = check_graph(edge_index, num_nodes)
    if projection is None:
        projection = very_sparse_random_projection(n, dim, sparsity, seed)
    elif tuple(projection.shape) != (n, dim):
        raise ValueError(f"projection must have shape ({n}, {dim}), got {tuple(projection.shape)}")
    if n == 0:
        return torch.zeros(0, dim, dtype=torch.float64)

    a = adjacency(edges, n, self_loops="add" if self_loops else "remove")
    deg = np.asarray(a.sum(axis=1)).ravel()
    transition = sp.csr_array(sp.diags_array(safe_power(deg, -1.0)) @ a)  # S = D^-1 A
    weighted = sp.diags_array(safe_power(deg, beta)) @ projection  # L R
    x = transition @ weighted  # N_1, (N, d)
    x = x.toarray() if sp.issparse(x) else np.asarray(x, dtype=np.float64)

    num_iter = max(i for i, w in enumerate(weights) if w) + 1
    out = np.zeros((n, dim))
    for i in range(num_iter):
        if i:
            x = transition @ x  # N_{i+1} = S N_i
        if weights[i]:
            out += weights[i] * (_normalize_rows(x) if normalize else x)
    return torch.from_numpy(out)


class FastRP(EncodingTransform):
    r"""Write FastRP embeddings (Chen et al., CIKM 2019) of a graph as a node attribute.

    Writes ``data[attr]``, float32 :math:`(N, \text{dim})`, computed by :func:`fastrp_embedding`:

    .. math::
        \texttt{data[attr]} = \sum_{i=1}^{q} \alpha_i \, \mathrm{normalize}\big(S^{i} L R\big),
        \qquad S = D^{-1} A, \quad L = \mathrm{diag}(d^\beta).

    The projection ``R`` of each graph is seeded from ``seed`` and a digest of the graph (its node
    count and edge set, independent of edge order), so results are reproducible and independent of
    the order in which a dataset's graphs are processed, and identical graphs get identical
    embeddings.

    Args:
        dim, weights, beta, normalize, sparsity, self_loops: as :func:`fastrp_embedding`.
        seed: base seed.
        attr: attribute name.

    Shapes:
        - **input:** graph with ``N`` nodes and ``edge_index`` :math:`(2, E)`
        - **output:** ``data[attr]`` :math:`(N, \text{dim})`
    """

    _params = ("dim", "weights", "beta", "normalize", "sparsity", "self_loops", "seed", "attr")

    def __init__(
        self,
        dim: int,
        weights: Sequence[float] = (0.0, 0.0, 1.0, 6.0),
        beta: float = -0.9,
        normalize: bool = True,
        sparsity: float | None = None,
        self_loops: bool = False,
        seed: int = 0,
        attr: str = "fastrp",
    ) -> None:
        self.dim, self.weights, self.beta, self.sparsity, self.seed = _check_options(
            dim, weights, beta, sparsity, seed
        )
        self.normalize = bool(normalize)
        self.self_loops = bool(self_loops)
        self.attr = check_attr(attr)

    def graph_seed(self, edge_index: Tensor, num_nodes: int) -> int:
        """The projection seed of one graph, derived from :attr:`seed` and the graph's digest."""
        edges, n = check_graph(edge_index, num_nodes)
        digest = graph_hash(edges, n)
        state = np.random.SeedSequence([self.seed, digest & 0xFFFFFFFF, digest >> 32]).generate_state(2)
        return int(state[0]) << 32 | int(state[1])

    def forward(self, data):
        """Compute the embedding of ``data`` and write ``data[attr]``."""
        edge_index, num_nodes = graph_of(data)
        data[self.attr] = fastrp_embedding(
            edge_index, num_nodes, self.dim, weights=self.weights, beta=self.beta,
            normalize=self.normalize, sparsity=self.sparsity, self_loops=self.self_loops,
            seed=self.graph_seed(edge_index, num_nodes),
        ).float()
        return data
