"""Neighbourhood attention of the Graph Transformer of Dwivedi & Bresson, with edge features."""
from __future__ import annotations

import math

import torch
from torch import Tensor

from gnnlab.nn.conv.base import check_inputs
from gnnlab.nn.mlp import reset
from gnnlab.ops import Graph, aggregate, gather_dst, gather_src, reduce_messages


class GraphTransformerAttention(torch.nn.Module):
    r"""Multi-head attention over each node's incoming edges from `"A Generalization of
    Transformer Networks to Graphs" <https://arxiv.org/abs/2012.09699>`_ (Dwivedi & Bresson,
    AAAI-21 DLG workshop), in the version with edge features.

    For each head :math:`k` of width :math:`d = F_{out} / H` and an edge :math:`j \to i`
    (:math:`j` = ``graph.edge_index[0]``, :math:`i` = ``graph.edge_index[1]``):

    .. math::
        \hat{\mathbf{w}}^k_{ij} &= \frac{\mathbf{Q}^k \mathbf{h}_i \odot \mathbf{K}^k \mathbf{h}_j}
            {\sqrt{d}} \odot \mathbf{E}^k \mathbf{e}_{ij} \in \mathbb{R}^{d} \\
        w^k_{ij} &= \frac{\exp\big(\mathrm{clamp}(\mathbf{1}^{\top} \hat{\mathbf{w}}^k_{ij}, -5, 5)\big)}
            {\sum_{j' \to i} \exp\big(\mathrm{clamp}(\mathbf{1}^{\top} \hat{\mathbf{w}}^k_{ij'}, -5, 5)\big)
            + \varepsilon} \\
        \hat{\mathbf{h}}_i &= \mathop{\Big\Vert}_{k=1}^{H} \sum_{j \to i} w^k_{ij} \mathbf{V}^k \mathbf{h}_j,
        \qquad
        \hat{\mathbf{e}}_{ij} = \mathop{\Big\Vert}_{k=1}^{H} \hat{\mathbf{w}}^k_{ij}

    with :math:`\varepsilon = 10^{-6}`. The normalisation is the softmax over incoming edges of
    the authors' implementation: scores are clamped to :math:`[-5, 5]` (so no maximum needs to be
    subtracted) and a node without incoming edges gets :math:`\hat{\mathbf{h}}_i = \mathbf{0}`.
    A duplicate edge takes its share once per copy. The output projections
    :math:`\mathbf{O}_h, \mathbf{O}_e` belong to :class:`gnnlab.nn.layers.GraphTransformerLayer`.
    With ``use_edges=False`` the factor :math:`\mathbf{E}^k \mathbf{e}_{ij}` is dropped (the
    paper's layer without edge features), no edge output is returned and passing ``edge_attr``
    raises ``ValueError``.

    The per-edge scores :math:`\hat{\mathbf{w}}` are formed as an :math:`(|\mathcal{E}|, F_{out})`
    tensor, since they are the updated edge features; the weighted sum of values runs through
    :func:`gnnlab.ops.aggregate` without forming the per-edge messages.

    Args:
        in_channels (int): Width of the node features and of the edge features.
        out_channels (int): Total width :math:`F_{out}` of the concatenated heads.
        num_heads (int, optional): Number of heads :math:`H`; must divide ``out_channels``.
            (default: :obj:`8`)
        use_edges (bool, optional): Weight the scores by the edge features and return updated
            edge features. (default: :obj:`True`)
        bias (bool, optional): Learn biases for :math:`\mathbf{Q}, \mathbf{K}, \mathbf{V},
            \mathbf{E}` (the authors' default is without). (default: :obj:`False`)

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F_{in})`, the batch's :class:`~gnnlab.ops.Graph`,
          edge features :math:`(|\mathcal{E}|, F_{in})` in the order of ``graph.edge_index`` (required
          with ``use_edges``, :obj:`None` without)
        - **output:** ``(node features, edge features)``: :math:`(|\mathcal{V}|, F_{out})` and
          :math:`(|\mathcal{E}|, F_{out})` in the order of ``graph.edge_index`` (:obj:`None`
          without ``use_edges``) (the layer contract, :mod:`gnnlab.nn.conv.base`)
    """

    supports_edge_attr: bool = True

    score_clamp: float = 5.0

    norm_eps: float = 1e-6

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_heads: int = 8,
        use_edges: bool = True,
        bias: bool = False,
    ):
        super().__init__()
        name = type(self).__name__
        if num_heads < 1:
            raise ValueError(f"{name}: num_heads must be a positive integer, got {num_heads}")
        if out_channels % num_heads != 0:
            raise ValueError(
                f"{name}: out_channels={out_channels} is not divisible by num_heads={num_heads}; "
                "out_channels is the total width of the concatenated heads"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_heads = num_heads
        self.head_channels = out_channels // num_heads
        self.use_edges = use_edges
        self.supports_edge_attr = use_edges
        self.Q, self.K, self.V = (torch.nn.Linear(in_channels, out_channels, bias=bias) for _ in range(3))
        self.E = torch.nn.Linear(in_channels, out_channels, bias=bias) if use_edges else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise the query, key, value and edge projections."""
        reset(self.Q, self.K, self.V, self.E)

    def forward(self, x: Tensor, graph: Graph, edge_attr: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Attend over incoming edges; returns ``(h_hat, e_hat)`` (``e_hat`` is :obj:`None` without ``use_edges``)."""
        edge_attr = check_inputs(self, x, graph, edge_attr, self.in_channels if self.use_edges else None)
        return self._attend(x, edge_attr, graph)

    def _attend(self, x: Tensor, edge_attr: Tensor | None, graph: Graph) -> tuple[Tensor, Tensor | None]:
        # Inputs already checked; edge_attr is [E, in_channels] exactly when use_edges.
        num_nodes, heads, channels = x.size(0), self.num_heads, self.head_channels

        q = self.Q(x).view(num_nodes, heads, channels)  # (N, H, d)
        k = self.K(x).view(num_nodes, heads, channels)
        v = self.V(x).view(num_nodes, heads, channels)
        score = gather_dst(q, graph) * gather_src(k, graph) / math.sqrt(channels)  # (E, H, d)
        e_hat = None
        if self.E is not None:
            score = score * self.E(edge_attr).view(-1, heads, channels)
            e_hat = score.reshape(-1, self.out_channels)  # (E, F_out)
        weight = torch.exp(score.sum(-1).clamp(-self.score_clamp, self.score_clamp))  # (E, H)
        denom = reduce_messages(weight, graph, "sum")  # (N, H), 0 without incoming edges
        weighted = torch.stack(
            [aggregate(v[:, h], graph, weight[:, h].contiguous(), "sum") for h in range(heads)], dim=1
        )  # (N, H, d)
        h_hat = weighted / (denom.unsqueeze(-1) + self.norm_eps)
        return h_hat.reshape(num_nodes, self.out_channels), e_hat

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, num_heads={self.num_heads})"
