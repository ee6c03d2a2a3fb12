"""A convolution wrapped as a Benchmarking-GNNs layer: conv, batch norm, activation, dropout, residual."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from gnnlab.nn.mlp import check_dropout, norm_layer, reset


def call_conv(conv: torch.nn.Module, x: Tensor, graph, edge_attr: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """``conv(x, graph[, edge_attr])`` → ``(x, edge_attr)``, as the layers of this package call a conv: edge
    features go to a conv that reads them (``supports_edge_attr``) and are carried past one that does not."""
    if getattr(conv, "supports_edge_attr", False):
        return conv(x, graph, edge_attr)
    return conv(x, graph)[0], edge_attr


class ConvLayer(torch.nn.Module):
    r"""One message-passing layer in the shape used by `"Benchmarking Graph Neural Networks"
    <https://arxiv.org/abs/2003.00982>`_ (Dwivedi et al., JMLR 2023) for GCN, GIN and GAT:

    .. math::
        \mathbf{X}^{\prime} = \mathbf{X} + \mathrm{Dropout}\big(\sigma\big(
        \mathrm{BN}(\mathrm{conv}(\mathbf{X}, \mathcal{E}))\big)\big)

    Any convolution that follows the layer contract (:mod:`gnnlab.nn.conv.base`) fits; it gets the edge
    features only if it reads them (:func:`call_conv`), and the ones it returns are handed on.
    :class:`gnnlab.nn.conv.GatedGCNConv` has its own normalisation and residual and is used as a
    layer directly.

    Args:
        in_channels (int): Size of each input node feature.
        out_channels (int): Size of each output node feature.
        conv (callable): Factory ``conv(in_channels, out_channels) -> module``, e.g.
            ``functools.partial(GCNConv, bias=False)``, a module following the layer contract.
        batch_norm (bool, optional): Apply :class:`torch.nn.BatchNorm1d` to the conv output.
            (default: :obj:`True`)
        residual (bool, optional): Add the input (only when the widths match). (default: :obj:`True`)
        dropout (float, optional): Dropout probability after the activation. (default: :obj:`0.0`)
        act (callable, optional): Factory of the activation module, called with no arguments;
            :obj:`None` for none. (default: :class:`torch.nn.ReLU`)

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F_{in})`, the batch's
          :class:`~gnnlab.ops.Graph`, optional edge features :math:`(|\mathcal{E}|, D)`
        - **output:** ``(node features, edge features)``: :math:`(|\mathcal{V}|, F_{out})` and the
          edge features (as given, or as the conv updated them)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        conv: Callable[[int, int], torch.nn.Module],
        batch_norm: bool = True,
        residual: bool = True,
        dropout: float = 0.0,
        act: Callable[[], torch.nn.Module] | None = torch.nn.ReLU,
    ):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.dropout = check_dropout("ConvLayer", dropout)
        self.residual = residual and in_channels == out_channels
        self.conv = conv(in_channels, out_channels)
        self.norm = norm_layer("batch" if batch_norm else None, out_channels)
        self.act = act() if act is not None else torch.nn.Identity()
        self.reset_parameters()

    @property
    def uses_edge_attr(self) -> bool:
        """Whether the wrapped convolution receives the edge features."""
        return bool(getattr(self.conv, "supports_edge_attr", False))

    @property
    def layerwise(self) -> bool:
        """Whether the layer's output at a node depends only on the node and its in-edges (in eval mode, where
        batch norm and dropout act per node): true when the wrapped conv says so and reads no edge features."""
        return bool(getattr(self.conv, "layerwise", False)) and not self.uses_edge_attr

    @property
    def supports_prefix_targets(self) -> bool:
        """Whether the layer accepts a graph whose targets are the first ``graph.num_dst`` of its source rows
        (returning one row per target; :mod:`gnnlab.nn.conv.base`): when the wrapped conv does and reads no
        edge features. Batch norm, activation, dropout and the residual act on the target rows."""
        return bool(getattr(self.conv, "supports_prefix_targets", False)) and not self.uses_edge_attr

    def reset_parameters(self) -> None:
        """Re-initialise the convolution and the batch norm."""
        reset(self.conv, self.norm)

    def forward(self, x: Tensor, graph, edge_attr: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Apply the layer; returns ``(x_out, edge_attr)``, one row of ``x_out`` per target of ``graph`` (the
        first ``graph.num_dst`` rows of ``x`` when the conv supports fewer targets than sources)."""
        out, edge_attr = call_conv(self.conv, x, graph, edge_attr)
        out = F.dropout(self.act(self.norm(out)), p=self.dropout, training=self.training)
        if self.residual:
            out = x[: out.size(0)] + out
        return out, edge_attr

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.conv!r}, residual={self.residual})"
