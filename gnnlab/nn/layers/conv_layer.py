"""A convolution wrapped as a Benchmarking-GNNs layer: conv, batch norm, activation, dropout, residual."""
from __future__ import annotations

import inspect
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor


class ConvLayer(torch.nn.Module):
    r"""One message-passing layer in the shape used by `"Benchmarking Graph Neural Networks"
    <https://arxiv.org/abs/2003.00982>`_ (Dwivedi et al., JMLR 2023) for GCN, GIN and GAT:

    .. math::
        \mathbf{X}^{\prime} = \mathbf{X} + \mathrm{Dropout}\big(\sigma\big(
        \mathrm{BN}(\mathrm{conv}(\mathbf{X}, \mathcal{E}))\big)\big)

    The residual term :math:`\mathbf{X}` is kept only with ``residual=True`` and
    ``in_channels == out_channels``; the batch norm only with ``batch_norm=True``. Edge features are
    handed to the convolution only if its ``supports_edge_attr`` is :obj:`True`, and are returned
    unchanged. A shared :class:`gnnlab.ops.CSRGraph` (``graph=``) is handed on to convolutions whose
    ``forward`` takes a ``graph`` argument, so a model sorts its edges once for all layers. :class:`gnnlab.nn.conv.GatedGCNConv` updates edge features itself and is used as a
    layer directly, not through this class.

    Args:
        in_channels (int): Size of each input node feature.
        out_channels (int): Size of each output node feature.
        conv (callable): Factory ``conv(in_channels, out_channels) -> module``, e.g.
            ``functools.partial(GCNConv, bias=False)``; the module must return a tensor
            ``[N, out_channels]``.
        batch_norm (bool, optional): Apply :class:`torch.nn.BatchNorm1d` to the conv output.
            (default: :obj:`True`)
        residual (bool, optional): Add the input (only when the widths match). (default: :obj:`True`)
        dropout (float, optional): Dropout probability after the activation. (default: :obj:`0.0`)
        act (callable, optional): Factory of the activation module, called with no arguments;
            :obj:`None` for none. (default: :class:`torch.nn.ReLU`)

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F_{in})`,
          edge indices :math:`(2, |\mathcal{E}|)`, optional edge features :math:`(|\mathcal{E}|, D)`
        - **output:** ``(node features, edge features)``: :math:`(|\mathcal{V}|, F_{out})` and the
          edge features as given (or :obj:`None`)
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
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"ConvLayer: dropout must be in [0, 1), got {dropout}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.dropout = dropout
        self.residual = residual and in_channels == out_channels
        self.conv = conv(in_channels, out_channels)
        self.takes_graph = accepts_graph(self.conv)
        self.norm = torch.nn.BatchNorm1d(out_channels) if batch_norm else None
        self.act = act() if act is not None else torch.nn.Identity()
        self.reset_parameters()

    @property
    def uses_edge_attr(self) -> bool:
        """Whether the wrapped convolution receives the edge features."""
        return bool(getattr(self.conv, "supports_edge_attr", False))

    def reset_parameters(self) -> None:
        """Re-initialise the convolution and the batch norm."""
        if hasattr(self.conv, "reset_parameters"):
            self.conv.reset_parameters()
        if self.norm is not None:
            self.norm.reset_parameters()

    def forward(
        self, x: Tensor, edge_index: Tensor, edge_attr: Tensor | None = None, graph=None
    ) -> tuple[Tensor, Tensor | None]:
        """Apply the layer; returns ``(x_out, edge_attr)`` with ``edge_attr`` passed through."""
        kwargs = {"graph": graph} if self.takes_graph and graph is not None else {}
        if self.uses_edge_attr:
            out = self.conv(x, edge_index, edge_attr, **kwargs)
        else:
            out = self.conv(x, edge_index, **kwargs)
        if not isinstance(out, Tensor):
            raise TypeError(
                f"ConvLayer: {type(self.conv).__name__} returned {type(out).__name__}, expected a Tensor; "
                "layers that also update edge features (such as GatedGCNConv) are used without ConvLayer"
            )
        if self.norm is not None:
            out = self.norm(out)
        out = F.dropout(self.act(out), p=self.dropout, training=self.training)
        if self.residual:
            out = x + out
        return out, edge_attr

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.conv!r}, residual={self.residual})"


def accepts_argument(module: torch.nn.Module, name: str) -> bool:
    """Whether ``module.forward`` takes an argument called ``name``."""
    try:
        params = inspect.signature(module.forward).parameters
    except (TypeError, ValueError):
        return False
    return name in params


def accepts_graph(module: torch.nn.Module) -> bool:
    """Whether ``module.forward`` takes a ``graph`` argument (a shared :class:`gnnlab.ops.CSRGraph`)."""
    return accepts_argument(module, "graph")
