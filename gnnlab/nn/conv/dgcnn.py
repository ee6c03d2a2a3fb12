"""The graph convolution of DGCNN (Zhang et al.)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gnnlab.nn.conv.base import check_inputs
from gnnlab.nn.mlp import reset
from gnnlab.ops import Graph, aggregate


class DGCNNConv(torch.nn.Module):
    r"""The graph convolution of `"An End-to-End Deep Learning Architecture for Graph Classification"
    <https://www.cse.wustl.edu/~muhan/papers/AAAI_2018_DGCNN.pdf>`_ (Zhang, Cui, Neumann, Chen, AAAI 2018),
    without its activation:

    .. math::
        \mathbf{X}^{\prime} = \tilde{\mathbf{D}}^{-1} \tilde{\mathbf{A}} \mathbf{X} \mathbf{W} + \mathbf{b},
        \qquad \tilde{\mathbf{A}} = \mathbf{A} + \mathbf{I}

    i.e. the mean of :math:`\mathbf{W}\mathbf{x}_j` over the edges :math:`j \to i` and :math:`i` itself. A self
    loop is added to every node even where the graph has one (as :math:`\mathbf{A} + \mathbf{I}` does), and a
    duplicate edge counts once per copy. The model applies ``tanh`` (:class:`gnnlab.models.DGCNN`).

    Args:
        in_channels (int): Size of each input node feature.
        out_channels (int): Size of each output node feature.
        bias (bool, optional): Add a learnable bias :math:`\mathbf{b}`. (default: :obj:`True`)

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F_{in})`, the batch's :class:`~gnnlab.ops.Graph`
        - **output:** ``(node features, None)``: :math:`(|\mathcal{V}|, F_{out})` (the layer contract,
          :mod:`gnnlab.nn.conv.base`)
    """

    supports_edge_attr: bool = False
    # Output at node i depends only on x_i and the in-edges of i.
    layerwise: bool = True
    supports_prefix_targets: bool = True

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.lin = torch.nn.Linear(in_channels, out_channels, bias=bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise the linear map (``torch.nn.Linear`` defaults)."""
        reset(self.lin)

    def forward(self, x: Tensor, graph: Graph, edge_attr: Tensor | None = None) -> tuple[Tensor, None]:
        """Apply the convolution; ``edge_attr`` must be ``None``."""
        check_inputs(self, x, graph, edge_attr)
        h = F.linear(x, self.lin.weight)  # W is linear: transform first, average the transformed rows
        summed = aggregate(h, graph, reduce="sum") + h[: graph.num_dst]
        out = summed / (graph.in_degree() + 1).to(h.dtype).unsqueeze(-1)
        if self.lin.bias is not None:
            out = out + self.lin.bias
        return out, None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels})"
