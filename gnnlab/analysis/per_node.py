r"""Per-node link-prediction performance against Topological Concentration (TC).

:func:`per_node_hits` turns a model's pair scores into Hits@K per node; :func:`tc_report` bins the
nodes by their TC (:mod:`gnnlab.analysis.topological_concentration`, which cites the paper) and writes
per-node and per-bin tables and a plot, as the paper does.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
import torch
from torch import Tensor

from gnnlab.analysis.topological_concentration import _check_int

# ---------------------------------------------------------------------------------- per-node Hits


def _score_vector(scores, name: str) -> Tensor:
    if not isinstance(scores, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(scores).__name__}")
    if scores.dim() == 2 and scores.size(1) == 1:
        scores = scores.reshape(-1)
    if scores.dim() != 1:
        raise ValueError(f"{name} must have shape [n] (or [n, 1]), got {list(scores.shape)}")
    if scores.is_complex():
        raise ValueError(f"{name} must be real, got {scores.dtype}")
    if scores.dtype == torch.bool:
        scores = scores.long()
    if scores.is_floating_point() and bool(torch.isnan(scores).any()):
        raise ValueError(f"{name} contains NaN")
    return scores.detach().cpu()


def per_node_hits(
    pos_pairs: Tensor,
    pos_scores: Tensor,
    neg_scores: Tensor,
    k: int,
    num_nodes: int | None = None,
) -> tuple[Tensor, Tensor]:
    r"""Per-node Hits@K: the share of a node's positive pairs that beat the ``k``-th best negative.

    With ``t`` the ``k``-th highest negative score (tied negatives counted separately,
    ``torch.topk(neg, k).values[-1]``), a positive pair ``p`` is a hit when ``pos_scores[p] > t``
    (strictly, as ``ogb.linkproppred.Evaluator``); every positive is a hit when there are fewer than
    ``k`` negatives (OGB's rule). A pair ``(u, v)`` counts for both endpoints (once if ``u == v``):

    .. math::

        \mathrm{Hits@K}(i) = \frac{\#\{p \ni i : s_p > t\}}{\#\{p \ni i\}}

    so the pair-weighted mean over nodes is not the global Hits@K (a pair counts twice). The negatives
    form one shared pool, as in OGB's ogbl-collab/ppa/ddi protocol. (The authors' code instead ranks,
    for each test node, all nodes not already linked to it in training and reports whether a test
    neighbour is in its top K — a recommendation-style hit ratio that needs the model itself, not
    saved pair scores.)

    Args:
        pos_pairs: ``[2, P]`` int32/int64 positive (e.g. test) pairs.
        pos_scores: ``[P]`` (or ``[P, 1]``) scores of those pairs.
        neg_scores: ``[Nneg]`` (or ``[Nneg, 1]``) scores of the negative pairs, ``Nneg >= 1``.
        k: ``K >= 1``.
        num_nodes: optional; when given, node ids must lie in ``[0, num_nodes)``.

    Returns:
        ``(nodes, hits)``: ``nodes`` ``[M]`` int64, ascending, the nodes with at least one positive
        pair (nodes without one are absent); ``hits`` ``[M]`` float64 in ``[0, 1]``.

    Raises:
        ValueError: wrong shapes or dtypes, ``P`` mismatch, NaN scores, no negatives, a negative node id
            or one ``>= num_nodes``, ``k < 1``.
    """
    k = _check_int(k, "k", 1)
    if not isinstance(pos_pairs, Tensor):
        raise ValueError(f"pos_pairs must be a torch.Tensor, got {type(pos_pairs).__name__}")
    if pos_pairs.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"pos_pairs must have dtype int32 or int64, got {pos_pairs.dtype}")
    if pos_pairs.dim() != 2 or pos_pairs.size(0) != 2:
        raise ValueError(f"pos_pairs must have shape [2, P], got {list(pos_pairs.shape)}")
    pos = _score_vector(pos_scores, "pos_scores")
    neg = _score_vector(neg_scores, "neg_scores")
    num_pairs = pos_pairs.size(1)
    if pos.numel() != num_pairs:
        raise ValueError(f"pos_scores must have one score per positive pair ({num_pairs}), got {pos.numel()}")
    if neg.numel() == 0:
        raise ValueError("neg_scores is empty: Hits@K needs at least one negative")
    pairs = pos_pairs.detach().long().cpu()
    if num_pairs and int(pairs.min()) < 0:
        raise ValueError(f"pos_pairs has a negative node id {int(pairs.min())}")
    if num_nodes is not None:
        num_nodes = _check_int(num_nodes, "num_nodes", 0)
        if num_pairs and int(pairs.max()) >= num_nodes:
            raise ValueError(f"pos_pairs has node id {int(pairs.max())} out of range for num_nodes={num_nodes}")
    if num_pairs == 0:
        return torch.empty(0, dtype=torch.long), torch.empty(0, dtype=torch.float64)

    # float64 holds every float16/32 score exactly, int64 every integer one: comparisons stay exact.
    as_float = pos.is_floating_point() or neg.is_floating_point()
    pos = pos.double() if as_float else pos.long()
    neg = neg.double() if as_float else neg.long()
    if neg.numel() < k:
        hit = torch.ones(num_pairs, dtype=torch.float64)
    else:
        threshold = torch.topk(neg, k).values[-1]
        hit = (pos > threshold).double()

    src, dst = pairs[0], pairs[1]
    distinct = dst != src
    ends = torch.cat([src, dst[distinct]])
    ends_hit = torch.cat([hit, hit[distinct]])
    nodes, inverse = torch.unique(ends, return_inverse=True)
    count = torch.bincount(inverse, minlength=nodes.numel()).double()
    total = torch.zeros(nodes.numel(), dtype=torch.float64).index_add_(0, inverse, ends_hit)
    return nodes, total / count


# ----------------------------------------------------------------------------------------- report


class TCReport(NamedTuple):
    """Paths written by :func:`tc_report`."""

    per_node: Path
    bins: Path
    plot: Path


def _as_1d(values, name: str, dtype) -> np.ndarray:
    if isinstance(values, Tensor):
        values = values.detach().cpu().numpy()
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {list(arr.shape)}")
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    return arr.astype(dtype)


def _dense_hits(node_hits, n: int) -> np.ndarray:
    """``[n]`` float64 per-node hits, ``NaN`` for nodes without test positives."""
    if isinstance(node_hits, (tuple, list)):
        if len(node_hits) != 2:
            raise ValueError("node_hits must be (nodes, hits) as returned by per_node_hits, or a dense [N] vector")
        nodes = _as_1d(node_hits[0], "node_hits nodes", np.float64)
        hits = _as_1d(node_hits[1], "node_hits hits", np.float64)
        if nodes.shape != hits.shape:
            raise ValueError(f"node_hits: nodes and hits differ in length ({nodes.size} vs {hits.size})")
        if nodes.size and (np.any(nodes != np.floor(nodes)) or nodes.min() < 0 or nodes.max() >= n):
            raise ValueError(f"node_hits: node ids must be integers in [0, {n})")
        nodes = nodes.astype(np.int64)
        if np.unique(nodes).size != nodes.size:
            raise ValueError("node_hits: a node appears more than once")
        if not np.all(np.isfinite(hits)):
            raise ValueError("node_hits: hits must be finite")
        dense = np.full(n, np.nan)
        dense[nodes] = hits
        return dense
    dense = _as_1d(node_hits, "node_hits", np.float64)
    if dense.size != n:
        raise ValueError(f"node_hits as a dense vector must have one entry per node ({n}), got {dense.size}")
    return dense


def _bin_edges(bins, values: np.ndarray) -> np.ndarray:
    if isinstance(bins, (int, np.integer)) and not isinstance(bins, bool):
        count = _check_int(bins, "bins", 1)
        lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
        if hi <= lo:
            hi = lo + 1.0
        return np.linspace(lo, hi, count + 1)
    edges = _as_1d(bins, "bins", np.float64)
    if edges.size < 2 or not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
        raise ValueError("bins must be an integer >= 1 or a strictly increasing sequence of >= 2 finite edges")
    return edges


def _fmt(x: float) -> str:
    """Shortest text that reads back as the same float64 (``repr``); empty for NaN."""
    return "" if not math.isfinite(x) else repr(float(x))


def tc_report(
    tc,
    degree,
    node_hits,
    out_dir,
    bins: int | Sequence[float] = 10,
    *,
    metric: str = "Hits@K",
    title: str | None = None,
) -> TCReport:
    """Write per-node and per-TC-bin link-prediction performance tables and a plot to ``out_dir``.

    Files (created or overwritten; ``out_dir`` is created if missing):

    - ``per_node.csv``: ``node,degree,tc,hits`` for every node; an empty field is a missing value
      (``tc`` of an isolated node, ``hits`` of a node without test positives).
    - ``tc_bins.csv``: ``bin,tc_range,tc_low,tc_high,num_nodes,mean_hits,mean_degree``, one row per
      bin; the bins count only evaluated nodes (finite ``tc`` and a ``hits`` value). Bins are
      half-open ``[low, high)`` except the last, ``[low, high]``; nodes outside all bins are left out.
      ``mean_hits``/``mean_degree`` are empty for an empty bin.
    - ``performance_vs_tc.png``: mean per-node ``metric`` per TC bin (top) and the number of evaluated
      nodes per bin (bottom), drawn with matplotlib's Agg canvas (no display, no global backend switch).

    Args:
        tc: ``[N]`` TC (or ATC) per node, ``NaN`` where undefined (tensor or array).
        degree: ``[N]`` node degrees (training graph).
        node_hits: ``(nodes, hits)`` from :func:`per_node_hits`, or a dense ``[N]`` vector with ``NaN``
            for nodes without test positives.
        out_dir: folder to write to.
        bins: number of equal-width bins over the ``[min, max]`` TC of the evaluated nodes (widened to
            ``[min, min + 1]`` when all are equal), or the bin edges themselves, strictly increasing.
        metric: label of the performance axis in the plot.
        title: plot title.

    Returns:
        :class:`TCReport` ``(per_node, bins, plot)`` of the three paths.

    Raises:
        ValueError: lengths that differ, non-1-D or non-numeric inputs, node ids outside ``[0, N)`` or
            repeated, non-finite hits, bad ``bins``.
    """
    tc_arr = _as_1d(tc, "tc", np.float64)
    n = tc_arr.size
    deg_arr = _as_1d(degree, "degree", np.float64)
    if deg_arr.size != n:
        raise ValueError(f"degree must have one entry per node ({n}), got {deg_arr.size}")
    hits = _dense_hits(node_hits, n)

    evaluated = np.isfinite(tc_arr) & np.isfinite(hits)
    edges = _bin_edges(bins, tc_arr[evaluated])
    num_bins = edges.size - 1
    idx = np.searchsorted(edges, tc_arr, side="right") - 1
    idx[tc_arr == edges[-1]] = num_bins - 1
    in_bin = evaluated & (idx >= 0) & (idx < num_bins)

    counts = np.bincount(idx[in_bin], minlength=num_bins)
    sum_hits = np.bincount(idx[in_bin], weights=hits[in_bin], minlength=num_bins)
    sum_deg = np.bincount(idx[in_bin], weights=deg_arr[in_bin], minlength=num_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_hits = np.where(counts > 0, sum_hits / np.maximum(counts, 1), np.nan)
        mean_deg = np.where(counts > 0, sum_deg / np.maximum(counts, 1), np.nan)
    labels = [
        f"[{edges[b]:.4g}, {edges[b + 1]:.4g}{']' if b == num_bins - 1 else ')'}" for b in range(num_bins)
    ]

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = TCReport(out / "per_node.csv", out / "tc_bins.csv", out / "performance_vs_tc.png")

    with paths.per_node.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["node", "degree", "tc", "hits"])
        for node in range(n):
            d = deg_arr[node]
            writer.writerow([node, int(d) if d == int(d) else _fmt(d), _fmt(tc_arr[node]), _fmt(hits[node])])

    with paths.bins.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["bin", "tc_range", "tc_low", "tc_high", "num_nodes", "mean_hits", "mean_degree"])
        for b in range(num_bins):
            writer.writerow([
                b, labels[b], _fmt(edges[b]), _fmt(edges[b + 1]),
                int(counts[b]), _fmt(mean_hits[b]), _fmt(mean_deg[b]),
            ])

    _plot(paths.plot, labels, mean_hits, counts, metric, title)
    return paths


def _plot(
    path: Path, labels: list[str], mean_hits: np.ndarray, counts: np.ndarray, metric: str, title: str | None
) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    x = np.arange(len(labels))
    fig = Figure(figsize=(max(6.0, 0.55 * len(labels) + 2.5), 6.0), layout="constrained")
    FigureCanvasAgg(fig)
    ax_hits, ax_count = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.3]})
    filled = np.isfinite(mean_hits)
    ax_hits.bar(x[filled], mean_hits[filled], color="tab:blue", width=0.8)
    for xi in x[~filled]:
        ax_hits.text(xi, 0.0, "n/a", ha="center", va="bottom", fontsize=8, color="gray")
    top = float(np.nanmax(mean_hits)) if filled.any() else 1.0
    ax_hits.set_ylim(0.0, max(1.0, top) * 1.05)
    ax_hits.set_ylabel(f"mean per-node {metric}")
    ax_hits.grid(axis="y", alpha=0.3)
    ax_count.bar(x, counts, color="tab:gray", width=0.8)
    ax_count.set_ylabel("# nodes")
    ax_count.set_xlabel("Topological Concentration bin")
    ax_count.set_xticks(x, labels, rotation=45, ha="right", fontsize=8)
    ax_count.grid(axis="y", alpha=0.3)
    fig.suptitle(title or f"Link prediction {metric} vs Topological Concentration")
    fig.savefig(path, dpi=120)
