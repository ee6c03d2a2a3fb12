r"""Topological Concentration (TC) of nodes and per-node link-prediction performance.

Wang, Zhao, Zhao, Liu, Cheng, Shah, Derr, "A Topological Perspective on Demystifying GNN-Based Link
Prediction Performance", ICLR 2024 (arXiv:2310.04612; authors' code: github.com/YuWVandy/Topo_LP_GNN).

TC measures how much the K-hop computation tree of a node overlaps with the computation trees of its
neighbours; the paper finds that it tracks a GNN's per-node link-prediction performance better than
degree does. This module computes it on the *training* graph (the paper's Train-TC):

.. math::

    \mathrm{TC}^K_i = \frac{1}{|\mathcal N(i)|} \sum_{j \in \mathcal N(i)}
        \frac{\sum_{k_1=1}^K \sum_{k_2=1}^K \beta^{k_1+k_2-2}\, |H^{k_1}_i \cap H^{k_2}_j|}
             {\sum_{k_1=1}^K \sum_{k_2=1}^K \beta^{k_1+k_2-2}\, g(H^{k_1}_i, H^{k_2}_j)}

- :math:`H^k_i` is the set of nodes on layer ``k`` of the computation tree of ``i`` (``hops="walk"``:
  the nodes at the end of some length-``k`` walk from ``i``, ``{v : (A^k)_{iv} > 0}``; ``i`` itself is
  on layer 2), or the nodes at shortest-path distance exactly ``k`` (``hops="distance"``). The root is
  not on any layer: :math:`H^1_i = \mathcal N(i)` is the *open* neighbourhood (no self-inclusion).
- :math:`g` turns the overlap into "the ratio of observed intersections to all possible
  intersections" (paper, Fig. 2): ``normalization="union"`` (default) uses
  :math:`|H^{k_1}_i \cup H^{k_2}_j|`, so ``K = 1`` gives the mean Jaccard similarity of the open
  neighbourhoods of ``i`` and each neighbour; ``"source"`` uses :math:`|H^{k_1}_i|` (minus 1 for
  ``k_1 = k_2 = 1``, as ``j \in N(i)`` can never be in ``N(j)``), the normaliser of the authors' code.
- :math:`\beta` discounts deeper layers (default ``1 / mean degree``, the authors' choice); it does
  not matter for ``K = 1``.

Conventions: the graph is simple and undirected (every edge is taken in both directions, duplicates
merged, self-loops dropped). A node without neighbours has no TC and gets ``NaN``. Because of the
open neighbourhoods, ``i`` and ``j`` are always in the union but never in the intersection at
``K = 1``: an edge in a triangle scores ``1/3`` and a node of the clique ``K_n`` scores
``(n-2)/n``.

How the authors' code (``cal_tc`` in ``TC-expr-*/dataprocess.py``) differs from the formula above:

- its layers are *multisets* of walk endpoints: an intersection counts ``v`` as many times as there
  are length-``k_1`` walks from ``i`` to ``v``, and the denominator is the number of such walks
  (the same as the sets for ``K = 1`` on a simple graph, not for ``K >= 2``);
- it normalises by ``i``'s side only (``normalization="source"``), and gives ``0``, not ``NaN``, to
  nodes of degree 0 and 1 (degree 1 makes its ``K = 1`` denominator ``|N(i)| - 1`` zero);
- the TC it logs while training on ogbl-collab (``update_tc``) is a ``K = 1`` variant again:
  :math:`\sum_j w_{ij} |N(i) \cap N(j)| / |N(i)|` with the GCN edge weights ``w_ij`` renormalised
  over ``j``, not the uniform mean over neighbours.

:func:`approximate_topological_concentration` (ATC) replaces the set intersections by similarities
of propagated random embeddings, which costs ``O(K·|E|·dim)`` instead of the set sizes.
:mod:`gnnlab.analysis.per_node` turns a model's scores into performance per node and per TC bin.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from gnnlab.ops import Graph, common_neighbor_count, validate_edge_index

HOPS = ("walk", "distance")
NORMALIZATIONS = ("union", "source")
PROPAGATIONS = ("row", "sym")
SIMILARITIES = ("cosine", "dot")


# ------------------------------------------------------------------------------------------ checks


def _check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_choice(value: str, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def _simple_graph(edge_index: Tensor, num_nodes: int) -> Graph:
    """The undirected, duplicate-free, self-loop-free graph of ``edge_index`` (on the CPU)."""
    num_nodes = _check_int(num_nodes, "num_nodes", 0)
    validate_edge_index(edge_index, num_nodes)
    ei = edge_index.detach().long().cpu()
    ei = ei[:, ei[0] != ei[1]]
    return Graph.undirected(ei, num_nodes)


def _resolve_beta(beta: float | None, graph: Graph) -> float:
    if beta is None:
        mean_degree = graph.num_edges / max(graph.num_nodes, 1)
        return 1.0 / mean_degree if mean_degree > 0 else 1.0
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not math.isfinite(beta) or beta <= 0:
        raise ValueError(f"beta must be a positive finite number (or None for 1 / mean degree), got {beta!r}")
    return float(beta)


# -------------------------------------------------------------------------------------- exact TC


def _support(m) -> sp.csr_matrix:
    """``m`` as a 0/1 CSR matrix with sorted indices and no stored zeros."""
    m = sp.csr_matrix(m)
    m.eliminate_zeros()
    m.data[:] = 1.0
    m.sum_duplicates()
    m.sort_indices()
    return m


def _hop_sets(graph: Graph, k: int, hops: str) -> list[sp.csr_matrix]:
    """``[H^1, ..., H^k]``: row ``i`` of ``H^l`` holds the layer-``l`` set of ``i`` (see the module doc)."""
    n = graph.num_nodes
    a = sp.csr_matrix((np.ones(graph.num_edges), graph.col.numpy(), graph.rowptr.numpy()), shape=(n, n))
    sets = [_support(a)]
    if hops == "walk":
        for _ in range(1, k):
            sets.append(_support(sets[-1] @ a))
    else:
        step = _support(a + sp.identity(n, format="csr"))
        reach_prev = step
        for _ in range(1, k):
            reach = _support(reach_prev @ step)
            sets.append(_support(reach - reach_prev))
            reach_prev = reach
    return sets


def _pair_intersections(h1: sp.csr_matrix, h2: sp.csr_matrix, src: Tensor, dst: Tensor) -> Tensor:
    """``[E]`` ``|row src[e] of h1 ∩ row dst[e] of h2|`` by the common-neighbour kernel.

    The two set families are stacked into one graph with sorted rows over ``2N`` nodes (rows
    ``N..2N-1`` hold ``h2``), so ``common_neighbor_count(stacked, src, dst + N)`` intersects the right
    pair of rows.
    """
    n = h1.shape[0]
    rows = np.repeat(np.arange(2 * n), np.diff(np.concatenate([h1.indptr, h2.indptr[1:] + h1.indptr[-1]])))
    col = np.concatenate([h1.indices, h2.indices]).astype(np.int64)
    stacked = Graph.from_edge_index(torch.from_numpy(np.stack([col, rows])), 2 * n)  # source col -> target row
    return common_neighbor_count(stacked, src, dst + n)


def topological_concentration(
    edge_index: Tensor,
    num_nodes: int,
    k: int = 1,
    *,
    beta: float | None = None,
    hops: str = "walk",
    normalization: str = "union",
) -> Tensor:
    r"""``[num_nodes]`` float64 exact Topological Concentration of every node of the training graph.

    ``TC^K_i`` as the module docstring defines it: its formula, the layer sets ``H^k_i`` (with the open
    neighbourhood ``H^1_i = N(i)``, ``i`` not included), the normalisers ``g`` and how the authors' code
    differs. ``normalization="union"`` with ``K = 1`` gives the mean Jaccard similarity
    ``|N(i) ∩ N(j)| / (|N(i)| + |N(j)| - |N(i) ∩ N(j)|)`` over the neighbours ``j``; with ``"source"``
    (``g = |H^{k_1}_i| - [k_1 = k_2 = 1]``, the authors' code) a pair whose denominator is 0 scores 0.

    ``K = 1`` runs the common-neighbour kernel over all ``2|E|`` directed edges, ``O(Σ_e min-merge)``.
    ``K >= 2`` builds the layer sets as sparse matrix powers (scipy), ``O(nnz(A^K))`` memory: meant for
    small and medium graphs (use :func:`approximate_topological_concentration` beyond).

    Args:
        edge_index: ``[2, E]`` int32/int64 training edges; taken as undirected (both directions),
            duplicates merged, self-loops dropped.
        num_nodes: number of nodes ``N``.
        k: number of hops ``K >= 1``.
        beta: layer discount ``β > 0``; ``None`` (default) uses ``1 / mean degree`` (``N / 2|E|``).
        hops: ``"walk"`` (layer ``k`` of the computation tree: ends of length-``k`` walks) or
            ``"distance"`` (nodes at shortest-path distance exactly ``k``).
        normalization: ``"union"`` or ``"source"`` (see above).

    Returns:
        ``[N]`` float64 on ``edge_index``'s device; ``NaN`` for nodes of degree 0.

    Raises:
        ValueError: ``edge_index`` not an integer ``[2, E]`` tensor, an index outside ``[0, N)``,
            ``num_nodes < 0``, ``k < 1``, a bad ``beta``, ``hops`` or ``normalization``.
    """
    graph = _simple_graph(edge_index, num_nodes)
    k = _check_int(k, "k", 1)
    _check_choice(hops, "hops", HOPS)
    _check_choice(normalization, "normalization", NORMALIZATIONS)
    b = _resolve_beta(beta, graph)
    n = graph.num_nodes
    degree = graph.in_degree().double()
    dst, src = graph.edge_index  # every edge once per direction, ordered by src (the CSR rows)
    tc = torch.full((n,), float("nan"), dtype=torch.float64)
    if src.numel() == 0:
        return tc.to(edge_index.device)

    # K = 1 intersects the neighbourhoods on the graph itself; K >= 2 builds the layer sets.
    sets = _hop_sets(graph, k, hops) if k > 1 else None
    sizes = [torch.from_numpy(np.diff(h.indptr).astype(np.float64)) for h in sets] if sets else [degree]
    num = torch.zeros(src.numel(), dtype=torch.float64)
    den = torch.zeros(src.numel(), dtype=torch.float64)
    for k1 in range(k):
        for k2 in range(k):
            weight = b ** (k1 + k2)  # β^{k1+k2-2} with 1-based hops
            inter = (_pair_intersections(sets[k1], sets[k2], src, dst) if sets
                     else common_neighbor_count(graph, src, dst)).double()
            num += weight * inter
            if normalization == "union":
                den += weight * (sizes[k1][src] + sizes[k2][dst] - inter)
            else:
                den += weight * (sizes[k1][src] - (1.0 if k1 == k2 == 0 else 0.0))
    ratio = torch.where(den > 0, num / den.clamp_min(torch.finfo(torch.float64).tiny), torch.zeros_like(num))
    total = torch.zeros(n, dtype=torch.float64).index_add_(0, src, ratio)
    has = degree > 0
    tc[has] = total[has] / degree[has]
    return tc.to(edge_index.device)


# -------------------------------------------------------------------------------------------- ATC


def approximate_topological_concentration(
    edge_index: Tensor,
    num_nodes: int,
    k: int = 1,
    dim: int = 256,
    seed: int = 0,
    *,
    beta: float | None = None,
    propagation: str = "row",
    similarity: str = "cosine",
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    r"""``[num_nodes]`` float64 Approximated Topological Concentration (ATC), linear in the edges.

    Random Gaussian node vectors are propagated over the graph and neighbours are compared by the
    similarity of their propagated vectors:

    .. math::

        R \in \mathbb R^{N \times d},\; R_{vc} \sim \mathcal N(0, 1/d), \qquad
        Z = \sum_{l=1}^{K} \beta^{l-1} \hat A^l R, \qquad
        \mathrm{ATC}^K_i = \frac{1}{|N(i)|} \sum_{j \in N(i)} f(Z_i, Z_j).

    Why it approximates TC: :math:`\mathbb E[Z_i \cdot Z_j] = \sum_{l_1,l_2} \beta^{l_1+l_2-2}
    (\hat A^{l_1} (\hat A^{l_2})^\top)_{ij}` (as ``E[R Rᵀ] = I``), a β-weighted overlap
    of the layer-``l_1`` tree of ``i`` with the layer-``l_2`` tree of ``j``. With ``Â = D⁻¹A``
    (``propagation="row"``) and ``K = 1`` it is exactly :math:`|N(i) \cap N(j)| / (d_i d_j)`, the
    intersection normalised by the product of the set sizes; ``similarity="cosine"`` divides by
    :math:`\|Z_i\| \|Z_j\| \approx 1/\sqrt{d_i d_j}`, which gives :math:`|N(i) \cap N(j)| / \sqrt{d_i d_j}`
    (Salton), a much closer stand-in for the union-normalised TC than the raw dot product, whose
    ``1/(d_i d_j)`` favours low-degree nodes. For ``K >= 2`` the overlaps count walks, not set members.

    The paper defines ATC as a similarity ``f`` of hop-weighted random Gaussian embeddings propagated
    over the training graph; ``Â`` and ``f`` are parameters here, with the defaults argued above.

    Cost: ``K + 1`` sparse-dense products, ``O((K + 1)·2|E|·d)`` time and ``O(N·d)`` memory. The
    estimate's noise falls like ``1/sqrt(d)``: on a 600-node stochastic block model whose blocks have
    the same degree but different densities, the Spearman correlation with the exact TC is about
    0.83 at ``d = 256`` and 0.92–0.96 at ``d = 1024`` (0.9997 in the ``d → ∞`` limit).

    Args:
        edge_index: ``[2, E]`` int32/int64 training edges (undirected, duplicates merged, self-loops
            dropped, as in :func:`topological_concentration`).
        num_nodes: number of nodes ``N``.
        k: number of propagation hops ``K >= 1``.
        dim: random projection dimension ``d >= 1``.
        seed: seed of the random matrix ``R`` (same seed, same result).
        beta: hop discount ``β > 0``; ``None`` uses ``1 / mean degree`` as in
            :func:`topological_concentration`.
        propagation: ``"row"`` (``Â = D⁻¹A``) or ``"sym"`` (``Â = D^{-1/2} A D^{-1/2}``).
        similarity: ``"cosine"`` or ``"dot"`` for ``f``.
        dtype: ``torch.float32`` (default, half the memory) or ``torch.float64`` for the embeddings.

    Returns:
        ``[N]`` float64 on ``edge_index``'s device; ``NaN`` for nodes of degree 0.

    Raises:
        ValueError: malformed ``edge_index`` or an index outside ``[0, N)``, ``k < 1``, ``dim < 1``,
            a bad ``seed``, ``beta``, ``propagation``, ``similarity`` or ``dtype``.
    """
    graph = _simple_graph(edge_index, num_nodes)
    k = _check_int(k, "k", 1)
    dim = _check_int(dim, "dim", 1)
    seed = _check_int(seed, "seed", 0)
    _check_choice(propagation, "propagation", PROPAGATIONS)
    _check_choice(similarity, "similarity", SIMILARITIES)
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
    b = _resolve_beta(beta, graph)
    n = graph.num_nodes
    degree = graph.in_degree()
    dst, src = graph.edge_index
    atc = torch.full((n,), float("nan"), dtype=torch.float64)
    if src.numel() == 0:
        return atc.to(edge_index.device)

    inv_deg = np.where(degree.numpy() > 0, 1.0 / np.maximum(degree.numpy(), 1), 0.0)
    row, col = src.numpy(), dst.numpy()
    value = inv_deg[row] if propagation == "row" else np.sqrt(inv_deg[row] * inv_deg[col])
    np_dtype = torch.empty(0, dtype=dtype).numpy().dtype
    a_hat = sp.csr_matrix((value.astype(np_dtype), graph.col.numpy(), graph.rowptr.numpy()), shape=(n, n))
    a_01 = sp.csr_matrix((np.ones(row.size, dtype=np_dtype), graph.col.numpy(), graph.rowptr.numpy()), shape=(n, n))

    generator = torch.Generator().manual_seed(seed)
    h = (torch.randn(n, dim, generator=generator, dtype=dtype) / math.sqrt(dim)).numpy()
    z = np.zeros((n, dim), dtype=np_dtype)
    for hop in range(k):
        h = a_hat @ h
        z += np_dtype.type(b**hop) * h
    if similarity == "cosine":
        z = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), np.finfo(np_dtype).tiny)
    # Σ_{j ∈ N(i)} f(Z_i, Z_j) = Z_i · (A Z)_i: one more product instead of an [E, d] gather.
    pair_sum = torch.from_numpy(np.einsum("ij,ij->i", z, a_01 @ z).astype(np.float64))
    has = degree > 0
    atc[has] = pair_sum[has] / degree[has].double()
    return atc.to(edge_index.device)
