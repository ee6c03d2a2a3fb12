"""The Graph Transformer layer of Dwivedi & Bresson: neighbourhood attention, then a feed-forward block."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gnnlab.nn.conv.base import check_inputs
from gnnlab.nn.conv.graph_transformer import GraphTransformerAttention
from gnnlab.nn.mlp import FeedForward, check_dropout, norm_layer, reset
from gnnlab.ops import Graph


class _Norms(torch.nn.Sequential):
    """Layer norm, then batch norm, each optional (the order of the authors' implementation)."""

    def __init__(self, channels: int, layer_norm: bool, batch_norm: bool):
        super().__init__()
        self.layer_norm = norm_layer("layer", channels) if layer_norm else None  # None: not applied
        self.batch_norm = norm_layer("batch", channels) if batch_norm else None

    def reset_parameters(self) -> None:
        reset(*self)


class GraphTransformerLayer(torch.nn.Module):
    r"""The Graph Transformer layer with edge features from `"A Generalization of Transformer
    Networks to Graphs" <https://arxiv.org/abs/2012.09699>`_ (Dwivedi & Bresson, AAAI-21 DLG
    workshop).

    With :math:`(\hat{\mathbf{h}}, \hat{\mathbf{e}})` the output of
    :class:`gnnlab.nn.conv.GraphTransformerAttention`:

    .. math::
        \hat{\mathbf{h}}^{\prime}_i &= \mathrm{Norm}\big(\mathbf{h}_i
            + \mathbf{O}_h \, \mathrm{Dropout}(\hat{\mathbf{h}}_i)\big),
        \qquad
        \mathbf{h}^{\prime}_i = \mathrm{Norm}\big(\hat{\mathbf{h}}^{\prime}_i
            + \mathbf{W}_{h,2} \, \mathrm{Dropout}(\mathrm{ReLU}(
            \mathbf{W}_{h,1} \hat{\mathbf{h}}^{\prime}_i))\big) \\
        \hat{\mathbf{e}}^{\prime}_{ij} &= \mathrm{Norm}\big(\mathbf{e}_{ij}
            + \mathbf{O}_e \, \mathrm{Dropout}(\hat{\mathbf{e}}_{ij})\big),
        \qquad
        \mathbf{e}^{\prime}_{ij} = \mathrm{Norm}\big(\hat{\mathbf{e}}^{\prime}_{ij}
            + \mathbf{W}_{e,2} \, \mathrm{Dropout}(\mathrm{ReLU}(
            \mathbf{W}_{e,1} \hat{\mathbf{e}}^{\prime}_{ij}))\big)

    where :math:`\mathbf{W}_{\cdot,1}` doubles the width and :math:`\mathbf{W}_{\cdot,2}` halves it
    back, and each :math:`\mathrm{Norm}` is a layer norm (``layer_norm``) followed by a batch norm
    (``batch_norm``), each with its own parameters; either or both may be dropped. The residual
    terms are dropped with ``residual=False``; the first one (around the attention) also whenever
    ``in_channels != out_channels``. With ``use_edges=False`` the attention ignores edge features,
    the edge branch is absent and ``edge_attr`` is returned unchanged (the paper's layer without
    edge features).

    Args:
        in_channels (int): Width of the node features and of the edge features.
        out_channels (int): Width of the updated node and edge features; split evenly over the heads.
        num_heads (int, optional): Number of attention heads. (default: :obj:`8`)
        dropout (float, optional): Dropout probability after the attention and inside the
            feed-forward blocks. (default: :obj:`0.0`)
        batch_norm (bool, optional): Apply batch norms. (default: :obj:`True`)
        layer_norm (bool, optional): Apply layer norms. (default: :obj:`False`)
        residual (bool, optional): Add the residual terms. (default: :obj:`True`)
        use_edges (bool, optional): Use and update edge features. (default: :obj:`True`)
        bias (bool, optional): Learn biases for the attention's :math:`\mathbf{Q}, \mathbf{K},
            \mathbf{V}, \mathbf{E}`. (default: :obj:`False`)

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F_{in})`, the batch's :class:`~gnnlab.ops.Graph`,
          edge features :math:`(|\mathcal{E}|, F_{in})` in the order of ``graph.edge_index``
          (required with ``use_edges``)
        - **output:** ``(node features, edge features)``: :math:`(|\mathcal{V}|, F_{out})` and
          :math:`(|\mathcal{E}|, F_{out})` in the order of ``graph.edge_index`` (or the edge
          features as given, without ``use_edges``) (the layer contract, :mod:`gnnlab.nn.conv.base`)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_heads: int = 8,
        dropout: float = 0.0,
        batch_norm: bool = True,
        layer_norm: bool = False,
        residual: bool = True,
        use_edges: bool = True,
        bias: bool = False,
    ):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.dropout = check_dropout("GraphTransformerLayer", dropout)
        self.residual = residual
        # Only the residual around the attention changes width; the one around the FFN never does.
        self.attention_residual = residual and in_channels == out_channels
        self.use_edges = use_edges
        self.supports_edge_attr = use_edges
        self.attention = GraphTransformerAttention(in_channels, out_channels, num_heads, use_edges=use_edges, bias=bias)
        self.O_h = torch.nn.Linear(out_channels, out_channels)
        self.norm1_h = _Norms(out_channels, layer_norm, batch_norm)
        self.ffn_h = FeedForward(out_channels, 2, dropout, out_dropout=False)
        self.norm2_h = _Norms(out_channels, layer_norm, batch_norm)
        if use_edges:
            self.O_e = torch.nn.Linear(out_channels, out_channels)
            self.norm1_e = _Norms(out_channels, layer_norm, batch_norm)
            self.ffn_e = FeedForward(out_channels, 2, dropout, out_dropout=False)
            self.norm2_e = _Norms(out_channels, layer_norm, batch_norm)
        else:
            self.O_e = self.norm1_e = self.ffn_e = self.norm2_e = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise the attention, output projections, feed-forward blocks and norms."""
        reset(*self.children())

    def _update(self, x: Tensor, attended: Tensor, out_proj: torch.nn.Module, norm1, ffn, norm2) -> Tensor:
        # One branch (nodes or edges): projection and residual, norm, feed-forward and residual, norm.
        out = out_proj(F.dropout(attended, p=self.dropout, training=self.training))
        if self.attention_residual:
            out = x + out
        out = norm1(out)
        update = ffn(out)
        out = out + update if self.residual else update
        return norm2(out)

    def forward(self, x: Tensor, graph: Graph, edge_attr: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Update node (and edge) features; ``edge_attr`` ``[E, in_channels]`` is required with ``use_edges``."""
        read = edge_attr if self.use_edges else None  # without use_edges, edge_attr is only handed back as given
        attr = check_inputs(self, x, graph, read, self.in_channels if self.use_edges else None)
        h_hat, e_hat = self.attention._attend(x, attr, graph)
        h = self._update(x, h_hat, self.O_h, self.norm1_h, self.ffn_h, self.norm2_h)
        if not self.use_edges:
            return h, edge_attr
        e = self._update(attr, e_hat, self.O_e, self.norm1_e, self.ffn_e, self.norm2_e)
        return h, e

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
            f"num_heads={self.attention.num_heads}, use_edges={self.use_edges})"
        )
