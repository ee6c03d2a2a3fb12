"""Graph isomorphism network convolution of Xu et al."""
from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.nn import GINConv as _PyGGINConv

from gnnlab.nn.conv.base import check_inputs
from gnnlab.nn.mlp import mlp as build_mlp
from gnnlab.ops import Graph, aggregate_csr


class GINParts:
    """The ``mlp`` and ``eps`` properties of a layer holding PyG's GIN or GINE propagation as ``self.conv``."""

    @property
    def mlp(self) -> torch.nn.Module:
        """The update network :math:`h_{\\mathbf{\\Theta}}`."""
        return self.conv.nn

    @property
    def eps(self) -> Tensor:
        """The current :math:`\\epsilon` (a parameter when ``train_eps``, else a buffer)."""
        return self.conv.eps


class GINConv(GINParts, torch.nn.Module):
    r"""Graph isomorphism operator from `"How Powerful are Graph Neural Networks?"
    <https://arxiv.org/abs/1810.00826>`_ (Xu et al., ICLR 2019).

    .. math::
        \mathbf{x}^{\prime}_i = h_{\mathbf{\Theta}} \left( (1 + \epsilon) \cdot
        \mathbf{x}_i + \sum_{j \in \mathcal{N}(i)} \mathbf{x}_j \right)

    The sum runs over the edges :math:`j \to i`: a duplicate edge contributes once per copy and a
    self loop in the graph adds :math:`\mathbf{x}_i` on top of the :math:`(1 + \epsilon)` term.
    The propagation is :class:`torch_geometric.nn.GINConv`, held as ``self.conv``.

    Args:
        in_channels (int): Size of each input node feature.
        out_channels (int): Size of each output node feature.
        eps (float, optional): (Initial) value of :math:`\epsilon`. (default: :obj:`0.0`)
        train_eps (bool, optional): Make :math:`\epsilon` a learnable parameter. (default: :obj:`False`)
        mlp (torch.nn.Module, optional): The update :math:`h_{\mathbf{\Theta}}`, mapping
            ``[N, in_channels]`` to ``[N, out_channels]``. If :obj:`None`, the update of the GIN paper and
            of Benchmarking-GNNs, :func:`gnnlab.nn.mlp.mlp` ``Linear -> BatchNorm1d -> ReLU -> Linear``.
            (default: :obj:`None`)

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F_{in})`, the batch's :class:`~gnnlab.ops.Graph`
        - **output:** ``(node features, None)``: :math:`(|\mathcal{V}|, F_{out})` (the layer contract,
          :mod:`gnnlab.nn.conv.base`)
    """

    supports_edge_attr: bool = False
    # Output at node i depends only on x_i and the in-edges of i (no degree of a neighbour, no global
    # term): GNN.layerwise_inference may compute it on the 1-hop subgraph of a chunk of targets.
    layerwise: bool = True
    # A graph with fewer targets than sources (the first rows of x) gives one output row per target.
    supports_prefix_targets: bool = True

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        eps: float = 0.0,
        train_eps: bool = False,
        mlp: torch.nn.Module | None = None,
    ):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        if mlp is None:
            mlp = build_mlp([in_channels, out_channels, out_channels], norm="batch")
        self.conv = _PyGGINConv(mlp, eps=eps, train_eps=train_eps)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise the MLP and reset :math:`\\epsilon` to its initial value."""
        self.conv.reset_parameters()

    def forward(self, x: Tensor, graph: Graph, edge_attr: Tensor | None = None) -> tuple[Tensor, None]:
        """Apply the convolution; ``edge_attr`` must be ``None`` (use :class:`GINEConv` for edge features).

        ``x`` holds the sources; the targets are its first ``graph.num_dst`` rows (all of them for a square
        graph), and the output has one row per target."""
        check_inputs(self, x, graph, edge_attr)
        out, _ = aggregate_csr(graph.rowptr, graph.col, graph.rowptr_t, graph.col_t, graph.perm_t, x, None, "sum")
        return self.conv.nn((1 + self.conv.eps) * x[: graph.num_dst] + out), None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, eps={float(self.conv.initial_eps)})"
