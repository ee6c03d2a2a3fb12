"""GraphSAGE convolution of Hamilton et al."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gnnlab.nn.conv.base import check_inputs
from gnnlab.nn.mlp import reset
from gnnlab.ops import Graph, aggregate

SAGE_AGGREGATIONS = ("mean", "max", "min", "sum")


class SAGEConv(torch.nn.Module):
    r"""GraphSAGE operator from `"Inductive Representation Learning on Large Graphs"
    <https://arxiv.org/abs/1706.02216>`_ (Hamilton et al., NeurIPS 2017).

    .. math::
        \mathbf{x}^{\prime}_i = \mathbf{W}_1 \mathbf{x}_i + \mathbf{W}_2 \cdot
        \operatorname{aggr}_{j \in \mathcal{N}(i)} \mathbf{x}_j + \mathbf{b}

    with :math:`\operatorname{aggr}` the feature-wise mean, max, min or sum over the edges
    :math:`j \to i` (a duplicate edge counts once per copy, a self loop in ``edge_index`` makes
    :math:`\mathbf{x}_i` one of its own neighbours). A node without incoming edges aggregates to
    zero and so receives :math:`\mathbf{W}_1 \mathbf{x}_i + \mathbf{b}`. With ``normalize`` the
    output rows are divided by their :math:`\ell_2` norm.

    The parameters mirror :class:`torch_geometric.nn.SAGEConv`: ``lin_l`` is :math:`\mathbf{W}_2`
    with the bias :math:`\mathbf{b}`, ``lin_r`` is :math:`\mathbf{W}_1` (no bias), so a state dict
    loads into either layer. The aggregation runs through :func:`gnnlab.ops.aggregate` without
    forming per-edge messages. For ``mean``/``sum`` with ``out_channels < in_channels`` the map
    :math:`\mathbf{W}_2` is applied before aggregating (it commutes with a linear aggregation, and
    the narrower features are cheaper to move); ``max``/``min`` always aggregate first.

    Args:
        in_channels (int): Size of each input node feature.
        out_channels (int): Size of each output node feature.
        aggr (str, optional): The neighbourhood aggregation, ``"mean"``, ``"max"``, ``"min"`` or
            ``"sum"``. (default: :obj:`"mean"`)
        normalize (bool, optional): :math:`\ell_2`-normalise each output row. (default: :obj:`False`)
        root_weight (bool, optional): Add the root term :math:`\mathbf{W}_1 \mathbf{x}_i`.
            (default: :obj:`True`)
        bias (bool, optional): Add a learnable bias :math:`\mathbf{b}`. (default: :obj:`True`)

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
        aggr: str = "mean",
        normalize: bool = False,
        root_weight: bool = True,
        bias: bool = True,
    ):
        super().__init__()
        aggr = {"add": "sum"}.get(aggr, aggr)
        if aggr not in SAGE_AGGREGATIONS:
            raise ValueError(f"SAGEConv: aggr must be one of {SAGE_AGGREGATIONS}, got {aggr!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.aggr = aggr
        self.normalize = normalize
        self.root_weight = root_weight
        self.lin_l = torch.nn.Linear(in_channels, out_channels, bias=bias)
        self.lin_r = torch.nn.Linear(in_channels, out_channels, bias=False) if root_weight else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise both linear maps (``torch.nn.Linear`` defaults)."""
        reset(self.lin_l, self.lin_r)

    def forward(self, x: Tensor, graph: Graph, edge_attr: Tensor | None = None) -> tuple[Tensor, None]:
        """Apply the convolution; ``edge_attr`` must be ``None`` (this layer has no edge features).

        ``x`` holds the sources; the targets are its first ``graph.num_dst`` rows (all of them for a square
        graph), and the output has one row per target."""
        check_inputs(self, x, graph, edge_attr)
        if self.aggr in ("mean", "sum") and self.out_channels < self.in_channels:
            # W (sum_j x_j) = sum_j W x_j: transform first, aggregate the narrower features.
            out = aggregate(F.linear(x, self.lin_l.weight), graph, reduce=self.aggr)
            if self.lin_l.bias is not None:
                out = out + self.lin_l.bias
        else:
            out = self.lin_l(aggregate(x, graph, reduce=self.aggr))
        if self.lin_r is not None:
            out = out + self.lin_r(x[: graph.num_dst])
        if self.normalize:
            out = F.normalize(out, p=2.0, dim=-1)
        return out, None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, aggr={self.aggr})"
