"""The base of graph classifiers that read float node features directly (no node encoder)."""
from __future__ import annotations

import torch
from torch import Tensor

from gnnlab.nn.mlp import reset
from gnnlab.nn.pe.base import graph_index


class FloatFeatureClassifier(torch.nn.Module):
    """A graph classifier over float node features ``[N, in_channels]`` (DGCNN, DiffPool, ECC): the width check at
    construction, :meth:`reset_parameters` and the checked inputs of a batch (:meth:`graph_batch`)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        if not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f"{type(self).__name__} reads float node features of a fixed width; got "
                             f"in_channels={in_channels!r}")
        self.in_channels, self.out_channels = in_channels, out_channels

    def reset_parameters(self) -> None:
        """Re-initialise every parameter (PyTorch's and PyG's defaults)."""
        reset(*list(self.modules())[1:])

    def graph_batch(self, data) -> tuple[Tensor, Tensor, int]:
        """``(x, batch, num_graphs)`` of a graph or a PyG batch; ``ValueError`` unless ``x`` is float
        ``[N, in_channels]``."""
        x = data.x
        if x is None or not x.is_floating_point() or x.dim() != 2 or x.size(1) != self.in_channels:
            shape = None if x is None else f"{list(x.shape)} {x.dtype}"
            raise ValueError(f"{type(self).__name__}: node features must be float [N, {self.in_channels}], got {shape}")
        return x, graph_index(data, x.size(0), x.device), int(getattr(data, "num_graphs", 1) or 1)
