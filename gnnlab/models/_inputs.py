"""The inputs of graph classifiers that read float node features directly (no node encoder)."""
from __future__ import annotations

from torch import Tensor

from gnnlab.nn.pe.base import graph_index


def float_graph_batch(owner: str, data, in_channels: int) -> tuple[Tensor, Tensor, int]:
    """``(x, batch, num_graphs)`` of a graph or a PyG batch; ``ValueError`` (named after ``owner``) unless ``x`` is
    float ``[N, in_channels]``."""
    x = data.x
    if x is None or not x.is_floating_point() or x.dim() != 2 or x.size(1) != in_channels:
        shape = None if x is None else f"{list(x.shape)} {x.dtype}"
        raise ValueError(f"{owner}: node features must be float [N, {in_channels}], got {shape}")
    return x, graph_index(data, x.size(0), x.device), int(getattr(data, "num_graphs", 1) or 1)
