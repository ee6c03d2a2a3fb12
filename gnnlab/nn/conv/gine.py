"""GIN convolution with edge features (GINE) of Hu et al."""
from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.nn import GINEConv as _PyGGINEConv

from gnnlab.nn.conv.base import check_inputs
from gnnlab.nn.conv.gin import GINParts
from gnnlab.nn.mlp import mlp as build_mlp, reset
from gnnlab.ops import Graph, gather_src, reduce_messages


class GINEConv(GINParts, torch.nn.Module):
    r"""GIN operator with edge features from `"Strategies for Pre-training Graph Neural Networks"
    <https://arxiv.org/abs/1905.12265>`_ (Hu et al., ICLR 2020).

    .. math::
        \mathbf{x}^{\prime}_i = h_{\mathbf{\Theta}} \left( (1 + \epsilon) \cdot
        \mathbf{x}_i + \sum_{j \in \mathcal{N}(i)} \mathrm{ReLU}
        ( \mathbf{x}_j + \mathbf{e}_{j,i} ) \right)

    :math:`\mathbf{e}_{j,i}` is the feature of edge :math:`j \to i` (``edge_attr`` rows follow the order
    of ``graph.edge_index``), first mapped by a learnable linear layer (``self.edge_lin``) when
    ``edge_dim`` differs from ``in_channels``. The propagation is :class:`torch_geometric.nn.GINEConv`,
    held as ``self.conv``.

    Args:
        in_channels (int): Size of each input node feature.
        out_channels (int): Size of each output node feature.
        eps (float, optional): (Initial) value of :math:`\epsilon`. (default: :obj:`0.0`)
        train_eps (bool, optional): Make :math:`\epsilon` a learnable parameter. (default: :obj:`False`)
        mlp (torch.nn.Module, optional): The update :math:`h_{\mathbf{\Theta}}`, mapping
            ``[N, in_channels]`` to ``[N, out_channels]``. If :obj:`None`, the GIN default
            ``Linear -> BatchNorm1d -> ReLU -> Linear`` is used. (default: :obj:`None`)
        edge_dim (int, optional): Width of ``edge_attr``. If :obj:`None`, edge features must already
            have ``in_channels`` columns. (default: :obj:`None`)
        mlp_batch_norm (bool, optional): Batch norm inside the default MLP (``False``: ``Linear ->
            ReLU -> Linear``, GraphGPS's GINE). Ignored when ``mlp`` is given. (default: :obj:`True`)

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F_{in})`, the batch's :class:`~gnnlab.ops.Graph`,
          edge features :math:`(|\mathcal{E}|, D)` with :math:`D` = ``edge_dim`` or :math:`F_{in}`
        - **output:** ``(node features, edge features)``: :math:`(|\mathcal{V}|, F_{out})` and the given
          ``edge_attr``, unchanged (the layer contract, :mod:`gnnlab.nn.conv.base`)
    """

    supports_edge_attr: bool = True

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        eps: float = 0.0,
        train_eps: bool = False,
        mlp: torch.nn.Module | None = None,
        edge_dim: int | None = None,
        mlp_batch_norm: bool = True,
    ):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.edge_dim = in_channels if edge_dim is None else edge_dim
        if mlp is None:
            mlp = build_mlp([in_channels, out_channels, out_channels], norm="batch" if mlp_batch_norm else None)
        # The projection lives here rather than in PyG's layer, which would add it even when the
        # widths already match.
        self.edge_lin = torch.nn.Linear(self.edge_dim, in_channels) if self.edge_dim != in_channels else None
        self.conv = _PyGGINEConv(mlp, eps=eps, train_eps=train_eps)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise the MLP and the edge projection, and reset :math:`\\epsilon`."""
        reset(self.conv, self.edge_lin)

    def forward(self, x: Tensor, graph: Graph, edge_attr: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Apply the convolution; ``edge_attr`` ``[E, edge_dim]`` is required and returned unchanged."""
        edge_feats = check_inputs(self, x, graph, edge_attr, self.edge_dim)
        if self.edge_lin is not None:
            edge_feats = self.edge_lin(edge_feats)
        messages = torch.relu(gather_src(x, graph) + edge_feats)  # (E, F)
        out = self.conv.nn((1 + self.conv.eps) * x + reduce_messages(messages, graph))
        return out, edge_attr

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, edge_dim={self.edge_dim})"
