"""Residual gated graph convolution with edge features (GatedGCN)."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from gnnlab.nn.conv.base import check_inputs
from gnnlab.nn.mlp import check_dropout, reset
from gnnlab.ops import Graph, gated_aggregate


class GatedGCNConv(torch.nn.Module):
    r"""Residual gated graph convolution from `"Residual Gated Graph ConvNets"
    <https://arxiv.org/abs/1711.07553>`_ (Bresson & Laurent, 2017), with the explicit edge
    features, normalised gates and batch norm of `"Benchmarking Graph Neural Networks"
    <https://arxiv.org/abs/2003.00982>`_ (Dwivedi et al., JMLR 2023).

    For an edge :math:`j \to i` (:math:`j` = ``graph.edge_index[0]``, :math:`i` = ``graph.edge_index[1]``):

    .. math::
        \hat{\mathbf{e}}_{ij} &= \mathbf{C} \mathbf{e}_{ij} + \mathbf{D} \mathbf{h}_i
            + \mathbf{E} \mathbf{h}_j \\
        \eta_{ij} &= \frac{\sigma(\hat{\mathbf{e}}_{ij})}
            {\sum_{j' \in \mathcal{N}(i)} \sigma(\hat{\mathbf{e}}_{ij'}) + \varepsilon} \\
        \hat{\mathbf{h}}_i &= \mathbf{A} \mathbf{h}_i
            + \sum_{j \in \mathcal{N}(i)} \eta_{ij} \odot \mathbf{B} \mathbf{h}_j \\
        \mathbf{h}^{\prime}_i &= \mathbf{h}_i + \mathrm{Dropout}(\mathrm{ReLU}(\mathrm{BN}(\hat{\mathbf{h}}_i))),
        \qquad
        \mathbf{e}^{\prime}_{ij} = \mathbf{e}_{ij}
            + \mathrm{Dropout}(\mathrm{ReLU}(\mathrm{BN}(\hat{\mathbf{e}}_{ij})))

    with :math:`\varepsilon = 10^{-6}`, :math:`\sigma` the logistic sigmoid, and
    :math:`\mathbf{A}, \dots, \mathbf{E}` linear maps with bias. The batch norms (one for nodes,
    one for edges) are dropped with ``batch_norm=False``, and the residual terms with
    ``residual=False`` or whenever ``in_channels != out_channels``. A node with no incoming edge
    gets :math:`\hat{\mathbf{h}}_i = \mathbf{A} \mathbf{h}_i`. Unlike the other gnnlab
    convolutions this is a complete layer and returns updated node *and* edge features.

    Args:
        in_channels (int): Width of the node features and of the edge features.
        out_channels (int): Width of the updated node and edge features.
        dropout (float, optional): Dropout probability on both outputs. (default: :obj:`0.0`)
        batch_norm (bool, optional): Batch-normalise :math:`\hat{\mathbf{h}}` and
            :math:`\hat{\mathbf{e}}`. (default: :obj:`True`)
        residual (bool, optional): Add the inputs to the outputs (only when the widths match).
            (default: :obj:`True`)
        act (callable, optional): Factory of the activation module, called with no arguments;
            :obj:`None` for none. (default: :class:`torch.nn.ReLU`)

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F_{in})`, the batch's :class:`~gnnlab.ops.Graph`,
          edge features :math:`(|\mathcal{E}|, F_{in})` in ``graph.edge_index`` order
        - **output:** ``(node features, edge features)``: :math:`(|\mathcal{V}|, F_{out})` and
          :math:`(|\mathcal{E}|, F_{out})` (the layer contract, :mod:`gnnlab.nn.conv.base`)
    """

    supports_edge_attr: bool = True

    gate_eps: float = 1e-6

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        dropout: float = 0.0,
        batch_norm: bool = True,
        residual: bool = True,
        act: Callable[[], torch.nn.Module] | None = torch.nn.ReLU,
    ):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.dropout = check_dropout("GatedGCNConv", dropout)
        self.batch_norm = batch_norm
        # As in Benchmarking-GNNs, a width change silently disables the residual path.
        self.residual = residual and in_channels == out_channels
        self.A, self.B, self.C, self.D, self.E = (torch.nn.Linear(in_channels, out_channels) for _ in range(5))
        self.bn_node = torch.nn.BatchNorm1d(out_channels) if batch_norm else None
        self.bn_edge = torch.nn.BatchNorm1d(out_channels) if batch_norm else None
        self.act = act() if act is not None else torch.nn.Identity()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise the five linear maps and the batch norms."""
        reset(self.A, self.B, self.C, self.D, self.E, self.bn_node, self.bn_edge)

    def forward(self, x: Tensor, graph: Graph, edge_attr: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Update node and edge features; ``edge_attr`` ``[E, in_channels]`` is required. Returns ``(h, e)``, node
        features ``[N, out_channels]`` and edge features ``[E, out_channels]`` in ``graph.edge_index`` order."""
        edge_attr = check_inputs(self, x, graph, edge_attr, self.in_channels)

        # One fused pass (gnnlab.ops.gated_aggregate): the gates and the gated messages stay in registers.
        e_hat, weighted, gate_sum = gated_aggregate(self.C(edge_attr), self.D(x), self.E(x), self.B(x), graph)
        # Without incoming edges both sums are zero, so the quotient vanishes and h = A h.
        h = self.A(x) + weighted / (gate_sum + self.gate_eps)
        e = e_hat

        if self.bn_node is not None:
            h = self.bn_node(h)
            e = self.bn_edge(e)
        h = F.dropout(self.act(h), p=self.dropout, training=self.training)
        e = F.dropout(self.act(e), p=self.dropout, training=self.training)
        if self.residual:
            h = x + h
            e = edge_attr + e
        return h, e

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels})"
