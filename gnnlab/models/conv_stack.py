"""The plain convolution stack of the original GCN and GAT papers (no encoder, no head)."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from gnnlab.models.gnn import LayerFactory
from gnnlab.ops import Graph

__all__ = ["ConvStack"]


class ConvStack(torch.nn.Module):
    r"""The plain stack of the original GCN/GAT papers: dropout → conv → act, repeated; no encoder/head.

    .. code-block:: text

        h = x
        for conv in convs[:-1]: h = act(conv(dropout(h), graph)[0])
        out = convs[-1](dropout(h), graph)[0]

    With ``conv=GCNConv``, 2 layers, 16 hidden units and dropout 0.5 this is Kipf & Welling's
    Cora model.

    Args:
        conv: factory ``conv(in, out) -> module`` returning a tensor.
        in_channels: raw feature width.
        hidden_channels: hidden width.
        out_channels: number of classes.
        num_layers: number of convolutions (>= 1).
        dropout: dropout on the input of every convolution.
        act: activation factory. (default: :class:`torch.nn.ReLU`)
        last_conv: factory for the last convolution (default: ``conv``); e.g. GAT's single averaged
            output head.
    """

    def __init__(
        self,
        conv: LayerFactory,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        num_layers: int = 2,
        dropout: float = 0.5,
        act: Callable[[], torch.nn.Module] = torch.nn.ReLU,
        last_conv: LayerFactory | None = None,
    ):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"ConvStack: num_layers must be >= 1, got {num_layers}")
        widths = [in_channels] + [hidden_channels] * (num_layers - 1) + [out_channels]
        factories = [conv] * (num_layers - 1) + [last_conv or conv]
        self.convs = torch.nn.ModuleList(f(a, b) for f, a, b in zip(factories, widths[:-1], widths[1:]))
        self.act = act()
        self.dropout = dropout

    def forward(self, data) -> Tensor:
        """Run on a PyG ``Data``; returns ``(N, out_channels)`` logits in the dtype of float ``data.x``.

        Float features keep their dtype (float64 for gradcheck, bfloat16 for mixed precision);
        integer features (counts, one-hot stored as integers) are cast to the parameters' dtype.
        """
        h = data.x
        if not h.is_floating_point():
            h = h.to(next(self.parameters()).dtype)
        graph = Graph.from_edge_index(data.edge_index, h.size(0))
        for i, conv in enumerate(self.convs):
            h = F.dropout(h, p=self.dropout, training=self.training)
            h, _ = conv(h, graph)
            if i < len(self.convs) - 1:
                h = self.act(h)
        return h
