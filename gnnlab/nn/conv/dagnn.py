"""Adaptive propagation of DAGNN (Liu, Gao & Ji)."""
from __future__ import annotations

import torch
from torch import Tensor

from gnnlab.nn.conv.base import check_inputs
from gnnlab.nn.conv.gcn import gcn_weights
from gnnlab.ops import Graph, aggregate_csr


class DAGNNConv(torch.nn.Module):
    r"""Adaptive propagation from `"Towards Deeper Graph Neural Networks"
    <https://arxiv.org/abs/2007.09296>`_ (Liu, Gao & Ji, KDD 2020): the propagation of its DAGNN model.

    .. math::
        \mathbf{H}_0 = \mathbf{X}, \quad \mathbf{H}_k = \hat{\mathbf{A}} \mathbf{H}_{k-1}, \quad
        \hat{\mathbf{A}} = \hat{\mathbf{D}}^{-1/2} (\mathbf{A} + \mathbf{I}) \hat{\mathbf{D}}^{-1/2},

        s_{i,k} = \sigma\big(\mathbf{H}_k[i] \, \mathbf{s} + b\big), \qquad
        \mathbf{X}^{\prime}[i] = \sum_{k=0}^{K} s_{i,k} \, \mathbf{H}_k[i],

    with a learnable projection :math:`\mathbf{s} \in \mathbb{R}^{C}` (and bias :math:`b`) giving each
    node its own retention score per hop. The propagation has no other parameters, so DAGNN decouples
    it from the feature transformation (an MLP before this layer; :class:`gnnlab.models.DAGNN`).
    :math:`\hat{\mathbf{A}}` is GCN's normalisation (one unit self loop per node), computed once per
    graph and shared with every GCN layer given the same ``graph``; each hop is one fused aggregation.

    Args:
        in_channels (int): Size of each node feature (in the paper the number of classes).
        out_channels (int): Must equal ``in_channels``: the propagation keeps the width (the argument is
            there so that the layer is built like every conv, ``Conv(in_channels, out_channels)``).
        K (int): Number of propagation steps (receptive field), ``K >= 0``.

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, C)`, the batch's :class:`~gnnlab.ops.Graph`
        - **output:** ``(node features, None)``: :math:`(|\mathcal{V}|, C)`
    """

    supports_edge_attr: bool = False

    def __init__(self, in_channels: int, out_channels: int, K: int = 10):
        super().__init__()
        if out_channels != in_channels:
            raise ValueError(f"DAGNNConv: propagation keeps the width; out_channels {out_channels} != in_channels "
                             f"{in_channels} (transform the features before it, as DAGNN's MLP does)")
        if K < 0:
            raise ValueError(f"DAGNNConv: K must be >= 0, got {K}")
        self.in_channels = self.out_channels = in_channels
        self.K = K
        self.proj = torch.nn.Linear(in_channels, 1)

    def reset_parameters(self) -> None:
        """Re-initialise the retention projection (PyTorch's default ``Linear`` initialisation)."""
        self.proj.reset_parameters()

    def hops(self, x: Tensor, graph: Graph) -> Tensor:
        """The propagated features ``[N, K + 1, C]``: :math:`\\mathbf{H}_0, \\dots, \\mathbf{H}_K`."""
        weight, loop_weight = gcn_weights(graph, True, x.dtype)
        out = [x]
        for _ in range(self.K):
            h, _ = aggregate_csr(graph.rowptr, graph.col, graph.rowptr_t, graph.col_t, graph.perm_t, out[-1], weight)
            out.append(h + out[-1] * loop_weight)
        return torch.stack(out, dim=1)

    def forward(self, x: Tensor, graph: Graph, edge_attr: Tensor | None = None) -> tuple[Tensor, None]:
        """Propagate ``K`` hops and mix them by the per-node retention scores."""
        check_inputs(self, x, graph, edge_attr)
        stack = self.hops(x, graph)
        score = torch.sigmoid(self.proj(stack))  # (N, K + 1, 1)
        return (score * stack).sum(dim=1), None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, K={self.K})"
