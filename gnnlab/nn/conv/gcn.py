"""Graph convolution of Kipf & Welling, and the input checks shared by the gnnlab convolutions."""
from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.nn import GCNConv as _PyGGCNConv
from gnnlab.ops import CSRGraph, aggregate_csr, csr_targets, resolve_graph, validate_edge_index


def check_conv_inputs(layer: str, x: Tensor, edge_index: Tensor, in_channels: int) -> None:
    """Raise ``ValueError`` unless ``x`` is ``[N, in_channels]`` and ``edge_index`` a valid ``[2, E]`` index into it.

    Args:
        layer: name of the calling layer, used in the messages.
        x: node features.
        edge_index: ``[2, E]`` integer tensor, sources in row 0 and targets in row 1.
        in_channels: feature width the layer was built for.
    """
    if not isinstance(x, Tensor):
        raise ValueError(f"{layer}: x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(f"{layer}: x must be 2-D [num_nodes, {in_channels}], got shape {list(x.shape)}")
    if x.size(1) != in_channels:
        raise ValueError(
            f"{layer}: x has {x.size(1)} features per node but the layer was built with in_channels={in_channels}"
        )
    try:
        validate_edge_index(edge_index, x.size(0))
    except (ValueError, TypeError) as err:
        # A non-tensor edge_index is an input error of the same kind as a bad shape for the caller.
        raise ValueError(f"{layer}: invalid edge_index: {err}") from err


def check_edge_attr(layer: str, edge_attr: Tensor | None, num_edges: int, width: int) -> Tensor:
    """Return ``edge_attr`` as ``[E, width]``, raising ``ValueError`` if it is missing or has another shape.

    A 1-D ``edge_attr`` is accepted when ``width == 1``.

    Args:
        layer: name of the calling layer, used in the messages.
        edge_attr: edge features, one row per column of ``edge_index``.
        num_edges: ``E``, the number of columns of ``edge_index``.
        width: the feature width the layer expects.
    """
    if edge_attr is None:
        raise ValueError(f"{layer} requires edge_attr of shape [num_edges, {width}], got None")
    if not isinstance(edge_attr, Tensor):
        raise ValueError(f"{layer}: edge_attr must be a torch.Tensor, got {type(edge_attr).__name__}")
    if edge_attr.dim() == 1 and width == 1:
        edge_attr = edge_attr.unsqueeze(-1)
    if edge_attr.dim() != 2 or edge_attr.size(0) != num_edges or edge_attr.size(1) != width:
        raise ValueError(
            f"{layer}: edge_attr must have shape [num_edges={num_edges}, {width}], got {list(edge_attr.shape)}"
        )
    return edge_attr


def reject_edge_attr(layer: str, edge_attr: Tensor | None) -> None:
    """Raise ``ValueError`` if edge features were passed to a layer that would silently ignore them."""
    if edge_attr is not None:
        raise ValueError(
            f"{layer} does not use edge features; pass edge_attr=None "
            "(ConvLayer does this for layers whose supports_edge_attr is False)"
        )


def _gcn_norm(graph: CSRGraph, add_self_loops: bool, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """Edge weights ``d_i^-1/2 d_j^-1/2`` in CSR order and the self loop's ``1 / d_i`` as ``(N, 1)``."""
    deg = graph.in_degree().to(dtype) + (1.0 if add_self_loops else 0.0)
    dinv = deg.pow(-0.5).masked_fill(deg == 0, 0.0)
    weight = dinv[graph.col.long()] * dinv[csr_targets(graph)]
    return weight, dinv.pow(2).unsqueeze(-1)


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

    The normalised edge weights are computed once per graph structure (:meth:`CSRGraph.derive`) and
    shared by every GCN layer that receives the same ``graph``; there is no per-layer cache (PyG's
    ``cached=True``), so a layer always aggregates over the graph it is given.

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F_{in})`,
          edge indices :math:`(2, |\mathcal{E}|)`
        - **output:** node features :math:`(|\mathcal{V}|, F_{out})`
    """

    supports_edge_attr: bool = False

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

    def forward(
        self, x: Tensor, edge_index: Tensor, edge_attr: Tensor | None = None, graph: CSRGraph | None = None
    ) -> Tensor:
        """Apply the convolution; ``edge_attr`` must be ``None`` (this layer has no edge features)."""
        check_conv_inputs(type(self).__name__, x, edge_index, self.in_channels)
        reject_edge_attr(type(self).__name__, edge_attr)
        h = self.conv.lin(x)  # (N, out)
        graph = resolve_graph(type(self).__name__, edge_index, x.size(0), graph)
        # Self loops are not stored: existing ones are dropped and one unit loop per node is
        # added analytically below (the term h_i / deg_i), as add_remaining_self_loops would.
        if self.add_self_loops:
            graph = graph.without_self_loops()
        weight = loop_weight = None
        if self.normalize:
            # Computed once per graph and shared by every GCN layer of the forward pass.
            key = ("gcn_norm", self.add_self_loops, h.dtype)
            weight, loop_weight = graph.derive(key, lambda: _gcn_norm(graph, self.add_self_loops, h.dtype))
        out, _ = aggregate_csr(graph.rowptr, graph.col, graph.rowptr_t, graph.col_t, graph.perm_t, h, weight, "sum")
        if self.add_self_loops:
            out = out + (h * loop_weight if self.normalize else h)
        if self.conv.bias is not None:
            out = out + self.conv.bias
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels})"
