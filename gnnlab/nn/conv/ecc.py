"""Edge-conditioned convolution of Simonovsky & Komodakis."""
from __future__ import annotations

import torch
from torch import Tensor

from gnnlab.nn.conv.base import check_inputs
from gnnlab.nn.mlp import reset
from gnnlab.ops import Graph, gather_src, reduce_messages


class ECConv(torch.nn.Module):
    r"""Edge-conditioned convolution from `"Dynamic Edge-Conditioned Filters in Convolutional Neural Networks
    on Graphs" <https://arxiv.org/abs/1704.02901>`_ (Simonovsky & Komodakis, CVPR 2017):

    .. math::
        \mathbf{x}^{\prime}_i = \mathbf{W}_0 \mathbf{x}_i + \sum_{j \to i} \Theta(\mathbf{e}_{ji})^{\top}
        \mathbf{x}_j + \mathbf{b}, \qquad
        \Theta(\mathbf{e}) = \mathrm{Linear}\big(\mathrm{ReLU}(\mathrm{Linear}(\mathbf{e}))\big) \in
        \mathbb{R}^{F_{in} \times F_{out}}

    a filter-generating network maps each edge's features to its own weight matrix (Errica et al.'s ECC:
    one hidden layer of 16 units). The sum runs over the edges :math:`j \to i`, duplicates once per copy.
    No edge's matrix is formed: with :math:`\mathbf{h}_{ji}` the ``K`` hidden units of the filter network
    and :math:`\Theta(\mathbf{e}_{ji}) = \sum_k h_{ji,k} \mathbf{W}_k + \mathbf{B}`, each message is
    :math:`\sum_k h_{ji,k} (\mathbf{W}_k^{\top} \mathbf{x}_j) + \mathbf{B}^{\top} \mathbf{x}_j`, whose node
    products are taken once per node; memory grows as ``E * (K + 1) * F_out``, not ``E * F_in * F_out``.
    The parameters mirror :class:`torch_geometric.nn.NNConv` (``nn``, ``lin`` the root map, ``bias``), so a
    state dict loads into either layer.

    Args:
        in_channels (int): Size of each input node feature.
        out_channels (int): Size of each output node feature.
        edge_dim (int, optional): Width of the edge features. (default: :obj:`1`)
        filter_channels (int, optional): Hidden width of the filter-generating network. (default: :obj:`16`)
        root_weight (bool, optional): Add :math:`\mathbf{W}_0 \mathbf{x}_i`. (default: :obj:`True`)
        bias (bool, optional): Add a learnable bias :math:`\mathbf{b}`. (default: :obj:`True`)

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F_{in})`, the batch's :class:`~gnnlab.ops.Graph`,
          edge features :math:`(|\mathcal{E}|, D)`
        - **output:** ``(node features, edge features)``: :math:`(|\mathcal{V}|, F_{out})` and the edge
          features as given
    """

    supports_edge_attr: bool = True
    layerwise: bool = True

    def __init__(self, in_channels: int, out_channels: int, edge_dim: int = 1, filter_channels: int = 16,
                 root_weight: bool = True, bias: bool = True):
        super().__init__()
        self.in_channels, self.out_channels, self.edge_dim = in_channels, out_channels, edge_dim
        self.nn = torch.nn.Sequential(torch.nn.Linear(edge_dim, filter_channels), torch.nn.ReLU(),
                                      torch.nn.Linear(filter_channels, in_channels * out_channels))
        self.lin = torch.nn.Linear(in_channels, out_channels, bias=False) if root_weight else None
        self.bias = torch.nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise every parameter (``torch.nn.Linear`` defaults, a zero bias as PyG)."""
        reset(self.nn, self.lin)
        if self.bias is not None:
            torch.nn.init.zeros_(self.bias)

    def forward(self, x: Tensor, graph: Graph, edge_attr: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Apply the convolution; ``edge_attr`` ``[E, edge_dim]`` (``[E]`` is read as one feature) is required."""
        features = check_inputs(self, x, graph, edge_attr, self.edge_dim)  # (E, edge_dim)
        first, _, second = self.nn
        hidden = torch.relu(first(features.to(x.dtype)))  # (E, K)
        k, f_in, f_out = hidden.size(1), self.in_channels, self.out_channels
        # second.weight[(i, o), k] is W_k[i, o]; node products x W_k for every k, and x B, in one product
        w_k = second.weight.view(f_in, f_out, k).transpose(1, 2).reshape(f_in, k * f_out)
        products = gather_src(x @ torch.cat([w_k, second.bias.view(f_in, f_out)], dim=1), graph)
        weighted = products[:, : k * f_out].view(-1, k, f_out)  # (E, K, F_out): x_j W_k, then x_j B below
        messages = torch.bmm(hidden.unsqueeze(1), weighted).squeeze(1) + products[:, k * f_out:]  # (E, F_out)
        out = reduce_messages(messages, graph, "sum")
        if self.lin is not None:
            out = out + self.lin(x)
        if self.bias is not None:
            out = out + self.bias
        return out, edge_attr

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, edge_dim={self.edge_dim})"
