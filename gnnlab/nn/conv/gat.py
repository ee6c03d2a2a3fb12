"""Graph attention convolution of Veličković et al."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.nn import GATConv as _PyGGATConv

from gnnlab.nn.conv.base import check_inputs
from gnnlab.ops import Graph, aggregate, reduce_messages


class GATConv(torch.nn.Module):
    r"""Graph attention operator from `"Graph Attention Networks"
    <https://arxiv.org/abs/1710.10903>`_ (Veličković et al., ICLR 2018).

    For each head :math:`k` with weights :math:`\mathbf{\Theta}^k` and attention vectors
    :math:`\mathbf{a}^k_s, \mathbf{a}^k_t` (and, with ``edge_dim``, :math:`\mathbf{\Theta}^k_e, \mathbf{a}^k_e`):

    .. math::
        \alpha^k_{i,j} = \operatorname{softmax}_{j \in \mathcal{N}(i)} \Big(
        \mathrm{LeakyReLU}\big( \mathbf{a}^{k\top}_s \mathbf{\Theta}^k \mathbf{x}_j
        + \mathbf{a}^{k\top}_t \mathbf{\Theta}^k \mathbf{x}_i
        + \mathbf{a}^{k\top}_e \mathbf{\Theta}^k_e \mathbf{e}_{j,i} \big) \Big),
        \qquad
        \mathbf{x}^{\prime}_i = \mathop{\Big\Vert}_{k=1}^{H} \sum_{j \in \mathcal{N}(i)}
        \alpha^k_{i,j} \mathbf{\Theta}^k \mathbf{x}_j + \mathbf{b}

    (with ``concat=False`` the heads are averaged instead of concatenated). The softmax runs over
    the edges :math:`j \to i`, so a duplicate edge takes its share once per copy. With
    ``add_self_loops``, self loops already in ``graph.edge_index`` are dropped and each node gets one self
    loop whose edge feature is the mean of the features of its incoming edges (zero if it has none).
    A node with no incoming edge and no self loop receives only the bias.

    Unlike :class:`torch_geometric.nn.GATConv` (held as ``self.conv``, which does the propagation),
    ``out_channels`` is the total output width.

    Args:
        in_channels (int): Size of each input node feature.
        out_channels (int): Size of each output node feature; with ``concat`` it is split evenly
            over the heads, each of width ``out_channels // heads``.
        heads (int, optional): Number of attention heads :math:`H`. (default: :obj:`8`)
        concat (bool, optional): Concatenate the heads; if :obj:`False`, average them, each head
            then having width ``out_channels``. (default: :obj:`True`)
        negative_slope (float, optional): LeakyReLU slope. (default: :obj:`0.2`)
        dropout (float, optional): Dropout probability on the attention coefficients during
            training. (default: :obj:`0.0`)
        add_self_loops (bool, optional): Give every node one self loop. (default: :obj:`True`)
        edge_dim (int, optional): Width of ``edge_attr``; if given, edge features enter the
            attention scores and are required in :meth:`forward`. (default: :obj:`None`)
        bias (bool, optional): Add a learnable bias :math:`\mathbf{b}`. (default: :obj:`True`)

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F_{in})`, the batch's :class:`~gnnlab.ops.Graph`,
          edge features :math:`(|\mathcal{E}|, D)` in ``graph.edge_index`` order when ``edge_dim`` is set
        - **output:** ``(node features, edge_attr)``: :math:`(|\mathcal{V}|, F_{out})` and the given
          ``edge_attr`` unchanged (``None`` without ``edge_dim``) (the layer contract,
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
        heads: int = 8,
        concat: bool = True,
        negative_slope: float = 0.2,
        dropout: float = 0.0,
        add_self_loops: bool = True,
        edge_dim: int | None = None,
        bias: bool = True,
    ):
        super().__init__()
        if heads < 1:
            raise ValueError(f"GATConv: heads must be a positive integer, got {heads}")
        if concat and out_channels % heads != 0:
            raise ValueError(
                f"GATConv: out_channels={out_channels} is not divisible by heads={heads}; with concat=True "
                "out_channels is the total width of the concatenated heads"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.heads = heads
        self.concat = concat
        self.edge_dim = edge_dim
        self.supports_edge_attr = edge_dim is not None
        self.head_channels = out_channels // heads if concat else out_channels
        self.conv = _PyGGATConv(
            in_channels,
            self.head_channels,
            heads=heads,
            concat=concat,
            negative_slope=negative_slope,
            dropout=dropout,
            add_self_loops=add_self_loops,
            edge_dim=edge_dim,
            fill_value="mean",
            bias=bias,
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise weights and attention vectors (Glorot) and the bias (zeros)."""
        self.conv.reset_parameters()

    def forward(self, x: Tensor, graph: Graph, edge_attr: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Apply the convolution; ``edge_attr`` ``[E, edge_dim]`` is required exactly when ``edge_dim`` is set, and
        is returned unchanged next to the node features ``[N, out_channels]``.

        ``x`` holds the sources; the targets are its first ``graph.num_dst`` rows (all of them for a square
        graph), and the output has one row per target."""
        checked = check_inputs(self, x, graph, edge_attr, self.edge_dim, without=" (built without edge_dim)")
        return self._attend(x, checked, graph), edge_attr

    def _attend(self, x: Tensor, edge_attr: Tensor | None, graph: Graph) -> Tensor:
        # Attention through gnnlab.ops: scores per edge and head, a softmax over each target's
        # incoming edges plus (optionally) one self loop handled analytically, then one weighted
        # aggregation per head. Existing self loops are dropped, as PyG's layer does: they stay in
        # the graph with weight 0 (no new graph is built, so every shape is static).
        # The targets are the first num_dst sources (all of them for a square graph).
        conv, num_nodes, num_dst = self.conv, x.size(0), graph.num_dst
        edge_index = graph.edge_index
        heads, channels = conv.heads, conv.out_channels
        h = conv.lin(x).view(num_nodes, heads, channels)  # (N, H, C)
        h_dst = h[:num_dst]  # (N_dst, H, C)
        a_src = (h * conv.att_src).sum(-1)  # (N, H)
        a_dst = (h_dst * conv.att_dst).sum(-1)  # (N_dst, H)
        src, dst = edge_index[0].long(), edge_index[1].long()
        keep = (src != dst).unsqueeze(-1) if conv.add_self_loops else None  # (E, 1) in the original order
        alpha = a_src.index_select(0, src) + a_dst.index_select(0, dst)  # (E, H)
        loop_alpha = a_src[:num_dst] + a_dst if conv.add_self_loops else None  # (N_dst, H)
        if edge_attr is not None:
            att_edge = conv.att_edge

            def edge_score(attr: Tensor) -> Tensor:
                return (conv.lin_edge(attr).view(-1, heads, channels) * att_edge).sum(-1)

            alpha = alpha + edge_score(edge_attr)
            if loop_alpha is not None:  # the loop's feature is the mean of the node's incoming non-loop edge features
                kept = keep.to(edge_attr.dtype)
                total = reduce_messages(edge_attr * kept, graph, "sum")
                count = reduce_messages(kept, graph, "sum").clamp_min(1.0)
                loop_alpha = loop_alpha + edge_score(total / count)
        alpha = F.leaky_relu(alpha, conv.negative_slope)
        # A per-target shift keeps exp() finite; any shift >= the scores gives the same softmax.
        scores = alpha.detach() if keep is None else alpha.detach().masked_fill(~keep, float("-inf"))
        shift = reduce_messages(scores, graph, "max")  # (N, H), 0 for nodes without edges
        if loop_alpha is not None:
            loop_alpha = F.leaky_relu(loop_alpha, conv.negative_slope)
            shift = torch.maximum(shift, loop_alpha.detach())
        ex = torch.exp(alpha - shift.index_select(0, dst))
        if keep is not None:
            ex = ex * keep  # the graph's own self loops take no part
        denom = reduce_messages(ex, graph, "sum")
        if loop_alpha is not None:
            loop_ex = torch.exp(loop_alpha - shift)
            denom = denom + loop_ex
        denom = denom.clamp_min(1e-16)
        coef = F.dropout(ex / denom.index_select(0, dst), p=conv.dropout, training=self.training)  # (E, H)
        out = torch.stack(
            [aggregate(h[:, k], graph, coef[:, k].contiguous(), "sum") for k in range(heads)], dim=1
        )  # (N, H, C)
        if loop_alpha is not None:
            loop_coef = F.dropout(loop_ex / denom, p=conv.dropout, training=self.training)
            out = out + loop_coef.unsqueeze(-1) * h_dst
        out = out.reshape(num_dst, heads * channels) if conv.concat else out.mean(dim=1)
        if conv.bias is not None:
            out = out + conv.bias
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, heads={self.heads})"
