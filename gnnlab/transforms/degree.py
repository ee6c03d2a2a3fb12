"""In-degree statistics of a set of graphs: PNA's scaler constants, computed from the training data.

PNA's scalers divide by :math:`\\delta`, the mean of :math:`\\log(d + 1)` over the in-degrees of the
training nodes (and the linear scalers by the mean degree :math:`\\bar d`). A model config cannot know
them: :class:`gnnlab.data.DataModule` computes both from its training split and hands them to the
model as the dataset facts ``data.avg_log_degree`` and ``data.avg_degree``.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def degree_histogram(graphs: Any) -> Tensor:
    """Histogram of the in-degrees over a set of graphs: ``hist[d]`` = number of nodes with ``d`` incoming edges.

    The same as :meth:`torch_geometric.nn.PNAConv.get_degree_histogram`; :func:`degree_statistics`
    turns it into the two averages the scalers use.

    Args:
        graphs: one graph or an iterable of graphs (a dataset, a list, a ``DataLoader``: batches
            give the same histogram as their graphs). A graph is either an object with
            ``edge_index`` and ``num_nodes`` (a PyG ``Data``/``Batch``), a tuple
            ``(edge_index, num_nodes)``, or a bare ``[2, E]`` ``edge_index`` tensor, whose node
            count is then taken as ``max index + 1`` (pass a tuple if the graph has trailing
            isolated nodes).

    Returns:
        1-D int64 tensor of length ``max degree + 1``.

    Raises:
        ValueError: an item is not one of the forms above, or no graph was given.
    """
    single_pair = isinstance(graphs, tuple) and len(graphs) == 2 and isinstance(graphs[1], int)
    if isinstance(graphs, Tensor) or single_pair or (not _is_collection(graphs) and hasattr(graphs, "edge_index")):
        graphs = [graphs]
    hist = torch.zeros(1, dtype=torch.long)
    seen = False
    for item in graphs:
        edge_index, num_nodes = _edge_index_and_nodes(item)
        seen = True
        counts = torch.bincount(torch.bincount(edge_index[1].long().cpu(), minlength=num_nodes), minlength=1)
        if counts.numel() > hist.numel():
            counts[: hist.numel()] += hist
            hist = counts
        else:
            hist[: counts.numel()] += counts
    if not seen:
        raise ValueError("degree_histogram: no graphs were given")
    return hist


def _is_collection(obj: Any) -> bool:
    # PyG datasets expose attributes of their stored data, so test for a dataset first.
    from torch_geometric.data import Dataset

    return isinstance(obj, (Dataset, torch.utils.data.DataLoader, list, tuple))


def _edge_index_and_nodes(item: Any) -> tuple[Tensor, int]:
    if isinstance(item, Tensor):
        edge_index, num_nodes = item, None
    elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], Tensor):
        edge_index, num_nodes = item
    elif hasattr(item, "edge_index"):
        edge_index, num_nodes = item.edge_index, getattr(item, "num_nodes", None)
    else:
        raise ValueError(
            "degree_histogram: each graph must be a Data-like object with edge_index, a tuple "
            f"(edge_index, num_nodes) or an edge_index tensor, got {type(item).__name__}"
        )
    if not isinstance(edge_index, Tensor) or edge_index.dim() != 2 or edge_index.size(0) != 2:
        shape = list(edge_index.shape) if isinstance(edge_index, Tensor) else type(edge_index).__name__
        raise ValueError(f"degree_histogram: edge_index must have shape [2, num_edges], got {shape}")
    if num_nodes is None:
        num_nodes = int(edge_index.max()) + 1 if edge_index.numel() else 0
    return edge_index, int(num_nodes)


def degree_statistics(deg: Tensor) -> tuple[float, float]:
    r"""The averages :math:`(\bar d, \delta)` of a degree histogram, as used by the PNA scalers.

    :math:`\bar d = \frac{1}{N}\sum_d d \cdot \mathrm{hist}[d]` (for the ``linear`` scalers) and
    :math:`\delta = \frac{1}{N}\sum_d \log(d + 1) \cdot \mathrm{hist}[d]` (for ``amplification`` and
    ``attenuation``), with :math:`N` the number of nodes counted: :class:`gnnlab.nn.conv.PNAConv`'s
    ``avg_degree`` and ``avg_log_degree``.

    Raises:
        ValueError: ``deg`` is not a 1-D non-negative histogram counting at least one node.
    """
    if not isinstance(deg, Tensor) or deg.dim() != 1 or deg.numel() == 0:
        raise ValueError(f"deg must be a non-empty 1-D histogram tensor (see degree_histogram), got {deg!r}")
    deg = deg.detach().to("cpu", torch.float64)
    if bool((deg < 0).any()) or float(deg.sum()) <= 0:
        raise ValueError("deg must be a histogram of node counts: non-negative, counting at least one node")
    bins = torch.arange(deg.numel(), dtype=torch.float64)
    total = float(deg.sum())
    return float((bins * deg).sum()) / total, float(((bins + 1).log() * deg).sum()) / total
