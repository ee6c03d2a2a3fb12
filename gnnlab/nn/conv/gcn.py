"""Graph convolution of Kipf & Welling."""
from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.nn import GCNConv as _PyGGCNConv

from gnnlab.nn.conv.base import check_inputs
from gnnlab.ops import Graph, aggregate_csr, csr_targets


def _loop_mask(graph: Graph, dtype: torch.dtype) -> Tensor:
    """``[E]`` in CSR order: 1 for an edge ``j -> i`` with ``j != i``, 0 for a self loop."""
    return graph.derive(("gcn_loop_mask", dtype), lambda: (graph.col.long() != csr_targets(graph)).to(dtype))


def _gcn_norm(graph: Graph, add_self_loops: bool, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """Edge weights ``d_i^-1/2 d_j^-1/2`` in CSR order and the self loop's ``1 / d_i`` as ``(N, 1)``.

    With ``add_self_loops`` the graph's own self loops get weight 0 and do not count in the degree:
    the single unit loop per node is added by the caller (``add_remaining_self_loops``).
    """
    targets = csr_targets(graph)
    if add_self_loops:
        keep = _loop_mask(graph, dtype)
        deg = torch.zeros(graph.num_dst, dtype=dtype, device=keep.device).index_add_(0, targets, keep) + 1.0
    else:
        deg = graph.in_degree().to(dtype)
    dinv = deg.pow(-0.5).masked_fill(deg == 0, 0.0)
    weight = dinv[graph.col.long()] * dinv[targets]
    if add_self_loops:
        weight = weight * keep
    return weight, dinv.pow(2).unsqueeze(-1)


def gcn_weights(graph: Graph, add_self_loops: bool, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """GCN's normalised edge weights and self-loop weights (:func:`_gcn_norm`), computed once per graph
    (:meth:`Graph.derive`) and shared by every layer that propagates with them in a forward pass."""
    return graph.derive(("gcn_norm", add_self_loops, dtype), lambda: _gcn_norm(graph, add_self_loops, dtype))


class GCNConv(torch.nn.Module):
    r"""Graph convolution from `"Semi-Supervised Classification with Graph Convolutional Networks"
    <https://arxiv.org/abs/1609.02907>`_ (Kipf & Welling, ICLR 2017).

    .. math::
        \mathbf{X}^{\prime} = \mathbf{\hat{D}}^{-1/2} \mathbf{\hat{A}}
        \mathbf{\hat{D}}^{-1/2} \mathbf{X} \mathbf{\Theta} + \mathbf{b},
        \qquad \hat{D}_{ii} = \sum_{j} \hat{A}_{ij},

    where :math:`\hat{A}_{ij}` counts the edges :math:`j \to i` (duplicate edges add up) and, with
    ``add_self_loops``, the diagonal of :math:`\hat{A}` is set to one: every node gets exactly one
    unit self loop, replacing any self loops already present in ``edge_index``.

    The sparse propagation is :class:`torch_geometric.nn.GCNConv`, held as ``self.conv``.

    Args:
        in_channels (int): Size of each input node feature.
        out_channels (int): Size of each output node feature.
        bias (bool, optional): Add a learnable bias :math:`\mathbf{b}`. (default: :obj:`True`)
        normalize (bool, optional): Apply the symmetric normalisation
            :math:`\mathbf{\hat{D}}^{-1/2} \cdot \mathbf{\hat{D}}^{-1/2}`; if :obj:`False` the output is
            :math:`\mathbf{\hat{A}} \mathbf{X} \mathbf{\Theta} + \mathbf{b}`. (default: :obj:`True`)
        add_self_loops (bool, optional): Give every node a single unit self loop. (default: :obj:`True`)

    The normalised edge weights are computed once per graph structure (:meth:`Graph.derive`) and
    shared by every GCN layer that receives the same ``graph``; there is no per-layer cache (PyG's
    ``cached=True``), so a layer always aggregates over the graph it is given.

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F_{in})`, the batch's :class:`~gnnlab.ops.Graph`
        - **output:** ``(node features, None)``: :math:`(|\mathcal{V}|, F_{out})` (the layer contract,
          :mod:`gnnlab.nn.conv.base`)
    """

    supports_edge_attr: bool = False
    # Not computable on the 1-hop subgraph of a chunk of targets: the weight of an edge j -> i reads
    # the in-degree of the neighbour j, which that subgraph does not hold (GNN.layerwise_inference).
    layerwise: bool = False

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        bias: bool = True,
        normalize: bool = True,
        add_self_loops: bool = True,
    ):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.normalize = normalize
        self.add_self_loops = add_self_loops
        self.conv = _PyGGCNConv(
            in_channels,
            out_channels,
            add_self_loops=add_self_loops and normalize,
            normalize=normalize,
            bias=bias,
        )
        self.reset_parameters()

    @property
    def lin(self) -> torch.nn.Module:
        """The weight-only linear map :math:`\\mathbf{\\Theta}` (``lin.weight`` is ``[out, in]``)."""
        return self.conv.lin

    @property
    def bias(self) -> Tensor | None:
        """The output bias :math:`\\mathbf{b}`, or ``None``."""
        return self.conv.bias

    def reset_parameters(self) -> None:
        """Re-initialise the weights (Glorot) and the bias (zeros)."""
        self.conv.reset_parameters()

    def forward(self, x: Tensor, graph: Graph, edge_attr: Tensor | None = None) -> tuple[Tensor, None]:
        """Apply the convolution; ``edge_attr`` must be ``None`` (this layer has no edge features)."""
        check_inputs(self, x, graph, edge_attr)
        h = self.conv.lin(x)  # (N, out)
        # Existing self loops get weight 0 (no new graph is built, so shapes stay static) and one
        # unit loop per node is added analytically below (the term h_i / deg_i), as
        # add_remaining_self_loops would.
        weight = loop_weight = None
        if self.normalize:
            weight, loop_weight = gcn_weights(graph, self.add_self_loops, h.dtype)
        elif self.add_self_loops:
            weight = _loop_mask(graph, h.dtype)
        out, _ = aggregate_csr(graph.rowptr, graph.col, graph.rowptr_t, graph.col_t, graph.perm_t, h, weight, "sum")
        if self.add_self_loops:
            out = out + (h * loop_weight if self.normalize else h)
        if self.conv.bias is not None:
            out = out + self.conv.bias
        return out, None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels})"
