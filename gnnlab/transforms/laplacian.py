"""Laplacian eigenpairs: the spectral positional encoding (LapPE) and the input of SignNet/SPE."""
from __future__ import annotations

import numbers

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import ArpackError, ArpackNoConvergence, LinearOperator, eigsh
from torch import Tensor

from gnnlab.transforms._graph import (
    EncodingTransform, adjacency, check_attr, check_graph, check_int, diag_scale, graph_of, safe_power
)

__all__ = ["NORMALIZATIONS", "laplacian_eigenpairs", "LaplacianEigenpairs"]

#: Accepted values of ``normalization``.
NORMALIZATIONS = ("sym", "rw", None)


def _check_options(k, normalization, dense_max_nodes, tol) -> tuple[int, str | None, int, float]:
    k = check_int("k", k)
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"unknown normalization {normalization!r}; valid values: 'sym', 'rw', None")
    dense_max_nodes = check_int("dense_max_nodes", dense_max_nodes, minimum=0)
    if not isinstance(tol, numbers.Real) or isinstance(tol, bool) or not 0 <= tol < 1:
        raise ValueError(f"tol must be a number in [0, 1), got {tol!r}")
    return k, normalization, dense_max_nodes, float(tol)


def _laplacian(a: sp.csr_array | np.ndarray, deg: np.ndarray, normalization: str | None):
    """``D - A`` for ``None``; ``D^-1/2 (D - A) D^-1/2`` otherwise (``'rw'`` is solved through it).

    Dense or sparse like ``a``.
    """
    scale = safe_power(deg, -0.5) if normalization is not None else np.ones(len(deg))
    degree = np.diag(deg) if isinstance(a, np.ndarray) else sp.diags_array(deg)
    return diag_scale(degree - a, scale, scale)


def _null_basis(labels: np.ndarray, num_components: int, deg: np.ndarray, normalization) -> sp.csc_array:
    """Orthonormal basis of the Laplacian's null space, one column per connected component.

    The combinatorial Laplacian vanishes on each component's indicator; the symmetric one on
    ``D^1/2`` times it (an isolated node, degree 0, has a zero row and keeps its indicator). Stored
    sparse (``N`` non-zeros): a graph may have as many components as nodes.
    """
    n = len(labels)
    weight = np.ones(n)
    if normalization is not None:
        weight = np.sqrt(deg)
        weight[deg == 0] = 1.0
    norms = np.sqrt(np.bincount(labels, weights=weight**2, minlength=num_components))
    return sp.csc_array((weight / norms[labels], (np.arange(n), labels)), shape=(n, num_components))


def _smallest_dense(lap: sp.csr_array | np.ndarray, skip: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    values, vectors = np.linalg.eigh(lap if isinstance(lap, np.ndarray) else lap.toarray())
    return values[skip:skip + count], vectors[:, skip:skip + count]


def _smallest_sparse(
    lap: sp.csr_array, null: sp.csc_array, bound: float, count: int, tol: float
) -> tuple[np.ndarray, np.ndarray]:
    """The ``count`` smallest eigenpairs of ``lap`` orthogonal to its null space ``null``.

    Lanczos finds the largest eigenvalues of ``M = bound * I - lap`` far faster than the smallest of
    ``lap`` with ``which='SM'`` (and needs no shift-invert factorisation). With ``bound`` >= the
    largest eigenvalue, the wanted eigenvalues of ``M`` are the largest and near ``bound``, so
    ARPACK's tolerance, relative to each eigenvalue, is not spent on tiny ones. Projecting out the
    null space first keeps its (repeated) eigenvalue ``bound`` out of the Krylov space, where Lanczos
    could miss copies of it.
    """
    n = lap.shape[0]

    def project(x: np.ndarray) -> np.ndarray:
        return x - null @ (null.T @ x)

    def matvec(x: np.ndarray) -> np.ndarray:
        y = project(np.asarray(x).reshape(n, -1))
        return project(bound * y - lap @ y)

    op = LinearOperator((n, n), matvec=matvec, matmat=matvec, dtype=np.float64)
    # A fixed start vector makes the result (and the cache) reproducible.
    v0 = project(np.random.default_rng(0).standard_normal((n, 1)))[:, 0]
    try:
        theta, vectors = eigsh(op, k=count, which="LA", v0=v0, tol=tol)
    except (ArpackNoConvergence, ArpackError) as err:
        raise RuntimeError(
            f"the sparse eigensolver did not converge on a graph with {n} nodes ({err}); "
            "raise tol or dense_max_nodes"
        ) from err
    order = np.argsort(-theta, kind="stable")
    values = bound - theta[order]
    vectors = project(vectors[:, order])
    vectors /= np.linalg.norm(vectors, axis=0, keepdims=True)
    return values, vectors


def laplacian_eigenpairs(
    edge_index: Tensor,
    num_nodes: int,
    k: int,
    normalization: str | None = "sym",
    skip_trivial: bool = True,
    dense_max_nodes: int = 2000,
    tol: float = 1e-10,
) -> tuple[Tensor, Tensor]:
    r"""The ``k`` smallest eigenpairs of a graph Laplacian, optionally past the trivial ones.

    Spectral positional encodings (Dwivedi et al., "Benchmarking Graph Neural Networks", JMLR 2023;
    Kreuzer et al., "Rethinking Graph Transformers with Spectral Attention", NeurIPS 2021). The graph
    is made undirected, self loops and duplicate edges are dropped, and with degrees ``D``:

    .. math::
        L_\mathrm{sym} = I - D^{-1/2} A D^{-1/2}, \qquad
        L_\mathrm{rw} = I - D^{-1} A, \qquad
        L = D - A \;(\texttt{normalization=None}),

    where an isolated node (degree 0) gets a zero row: ``D^{-1/2}`` and ``D^{-1}`` are read as 0 there,
    i.e. :math:`L_\mathrm{sym} = D^{-1/2}(D - A)D^{-1/2}`. The eigenvalue 0 then has one eigenvector
    per connected component (isolated nodes included), which carries no position inside the
    component: with ``skip_trivial=True`` those pairs are dropped (their number is counted with
    ``scipy.sparse.csgraph.connected_components``) and the next ``k`` are returned. With
    ``skip_trivial=False`` the trivial pairs come first, as the normalised component indicators
    (times ``D^{1/2}`` for ``'sym'``) with eigenvalue exactly 0.

    Eigenvalues are sorted ascending. Eigenvectors have unit norm and, for ``'sym'`` and ``None``,
    are orthonormal. ``'rw'`` is not symmetric: its eigenvectors are ``D^{-1/2}`` times those of
    ``L_sym`` (same eigenvalues), scaled to unit norm, so they are ``D``-orthogonal rather than
    orthogonal. Signs are whatever the solver returns (deterministic, not normalised); random sign
    flips belong to training time, not to this cached precomputation.

    Graphs with at most ``dense_max_nodes`` nodes use ``numpy.linalg.eigh`` in float64. Larger ones
    use Lanczos (``scipy.sparse.linalg.eigsh``) on ``c I - L`` with ``c`` an upper bound of the
    spectrum (2 for the normalised Laplacians, twice the largest degree for ``D - A``), restricted to
    the complement of the known null space, from a fixed start vector. Lanczos may return an
    arbitrary basis of a repeated eigenvalue's eigenspace, like ``eigh``.

    Args:
        edge_index: ``[2, E]`` integer tensor.
        num_nodes: number of nodes ``N``.
        k: number of eigenpairs. A graph with fewer available pairs (``N`` minus the number of
            components when skipping) is padded with NaN columns and NaN eigenvalues.
        normalization: ``'sym'`` (default), ``'rw'`` or ``None`` (combinatorial ``D - A``).
        skip_trivial: drop the eigenvalue-0 pairs, one per connected component.
        dense_max_nodes: largest graph solved densely.
        tol: relative accuracy asked of the sparse solver (0 means machine precision).

    Returns:
        ``(eigenvalues, eigenvectors)`` as float64 tensors.

    Shapes:
        - **input:** ``edge_index`` :math:`(2, E)`
        - **output:** eigenvalues :math:`(k,)`, eigenvectors :math:`(N, k)`

    Raises:
        ValueError: ``k < 1``, an unknown ``normalization``, or an invalid ``edge_index``.
    """
    k, normalization, dense_max_nodes, tol = _check_options(k, normalization, dense_max_nodes, tol)
    edges, n = check_graph(edge_index, num_nodes)
    values = np.full(k, np.nan)
    vectors = np.full((n, k), np.nan)
    if n == 0:
        return torch.from_numpy(values), torch.from_numpy(vectors)

    a = adjacency(edges, n)
    deg = np.asarray(a.sum(axis=1)).ravel()
    num_components, labels = connected_components(a, directed=False)
    dense = n <= dense_max_nodes
    # Small graphs: dense arithmetic, as scipy's per-call overhead outweighs the work.
    lap = _laplacian(a.toarray() if dense else a, deg, normalization)

    # Wanted: positions [skip, skip + k) of the ascending spectrum, whose first num_components entries
    # are the trivial pairs.
    skip = num_components if skip_trivial else 0
    stop = min(skip + k, n)
    num_trivial = max(0, min(stop, num_components) - skip)
    num_rest = max(0, stop - max(skip, num_components))

    null = _null_basis(labels, num_components, deg, normalization)
    parts_val = [np.zeros(num_trivial)]
    parts_vec = [null[:, :num_trivial].toarray()]
    if num_rest:
        # eigsh needs fewer pairs than rows; a request for nearly the whole spectrum is solved densely.
        if dense or num_rest >= n - num_components - 1:
            val, vec = _smallest_dense(lap, num_components, num_rest)
        else:
            bound = 2.0 if normalization is not None else 2.0 * float(deg.max())
            val, vec = _smallest_sparse(lap, null, bound, num_rest, tol)
        parts_val.append(val)
        parts_vec.append(vec)
    found_val = np.concatenate(parts_val)
    found_vec = np.concatenate(parts_vec, axis=1)

    if normalization == "rw" and found_vec.shape[1]:
        # L_rw = D^-1/2 L_sym D^1/2, so D^-1/2 u is an eigenvector of L_rw for each eigenvector u of
        # L_sym. Isolated nodes keep their entry: their row of L_rw is zero as well.
        scale = safe_power(deg, -0.5)
        scale[deg == 0] = 1.0
        found_vec = found_vec * scale[:, None]
        found_vec /= np.linalg.norm(found_vec, axis=0, keepdims=True)

    count = found_val.shape[0]
    values[:count] = found_val
    vectors[:, :count] = found_vec
    return torch.from_numpy(values), torch.from_numpy(vectors)


class LaplacianEigenpairs(EncodingTransform):
    r"""Write the ``k`` smallest (non-trivial) Laplacian eigenpairs of a graph as node attributes.

    See :func:`laplacian_eigenpairs` for the Laplacian, the solvers and the padding. Writes

    - ``data[f'{attr}_vec']``: float32 :math:`(N, k)`, eigenvector ``j`` in column ``j``;
    - ``data[f'{attr}_val']``: float32 :math:`(N, k)`, the eigenvalues repeated on every node row,
      so that PyG batching concatenates them node-wise like the vectors.

    Missing pairs (graphs with fewer than ``k``) are NaN in both; encoders mask them. No random sign
    flip is applied: the output is deterministic and meant to be cached (see
    :func:`gnnlab.transforms.precompute`); flip signs at training time.

    .. code-block:: python

        data = LaplacianEigenpairs(k=8)(data)
        data.lappe_vec.shape, data.lappe_val.shape  # (N, 8), (N, 8)

    Args:
        k, normalization, skip_trivial, dense_max_nodes, tol: as :func:`laplacian_eigenpairs`.
        attr: attribute prefix.

    Shapes:
        - **input:** graph with ``N`` nodes and ``edge_index`` :math:`(2, E)`
        - **output:** ``{attr}_vec`` :math:`(N, k)`, ``{attr}_val`` :math:`(N, k)`
    """

    _params = ("k", "attr", "normalization", "skip_trivial", "dense_max_nodes", "tol")

    def __init__(
        self,
        k: int,
        attr: str = "lappe",
        normalization: str | None = "sym",
        skip_trivial: bool = True,
        dense_max_nodes: int = 2000,
        tol: float = 1e-10,
    ) -> None:
        self.k, self.normalization, self.dense_max_nodes, self.tol = _check_options(
            k, normalization, dense_max_nodes, tol
        )
        self.attr = check_attr(attr)
        self.skip_trivial = bool(skip_trivial)

    def forward(self, data):
        """Compute the eigenpairs of ``data`` and write ``{attr}_vec`` and ``{attr}_val``."""
        edge_index, num_nodes = graph_of(data)
        values, vectors = laplacian_eigenpairs(
            edge_index, num_nodes, self.k, normalization=self.normalization,
            skip_trivial=self.skip_trivial, dense_max_nodes=self.dense_max_nodes, tol=self.tol,
        )
        data[f"{self.attr}_vec"] = vectors.float()
        data[f"{self.attr}_val"] = values.float().expand(num_nodes, -1).contiguous()
        return data
