"""Link-prediction models: a node encoder and a pair predictor (:mod:`gnnlab.nn.link`).

:class:`LinkPredictionModel` wires them::

    h = encoder(x, graph, edge_mask)          # [N, D] node representations (None for heuristics)
    logits = predictor(h, graph, pairs, edge_mask)

``graph`` is the :class:`gnnlab.ops.Graph` of the message-passing graph
(:meth:`~gnnlab.ops.Graph.undirected`) and ``edge_mask`` the edges a training batch hides (its own
target links). Encoders: NCN's :class:`PropagationEncoder`, GAE's :class:`GCNEncoder` and any GNN
(:class:`GNNLinkEncoder`).
"""
from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from gnnlab.models.gnn import GNN
from gnnlab.nn.conv import GCNConv
from gnnlab.nn.dropout import Dropout
from gnnlab.nn.link import _check_h, _drop_edges
from gnnlab.nn.mlp import check_dropout
from gnnlab.ops import Graph, aggregate

__all__ = ["PropagationEncoder", "GCNEncoder", "LinkPredictionModel"]


def _edge_weight(graph: Graph, edge_mask: Tensor | None, edge_dropout: float, training: bool, dtype) -> Tensor | None:
    """Per-edge weights: ``edge_mask`` (0/1), times inverted edge dropout ``keep / (1 - p)`` in training."""
    weight = None if edge_mask is None else edge_mask.to(dtype)
    if training and edge_dropout > 0:
        keep = (torch.rand(graph.num_edges, device=graph.col.device) >= edge_dropout).to(dtype) / (1.0 - edge_dropout)
        weight = keep if weight is None else weight * keep
    return weight


class PropagationEncoder(nn.Module):
    r"""NCN's node encoder (``GCN`` with ``puregcn``/``puresum``/``puremean`` in the reference code).

    .. math::
        h^{(0)} = \mathrm{Dropout}_{p_0}(\mathrm{Dropout}_{p_x}(x) W), \qquad
        h^{(l)} = P\, h^{(l-1)} \;(+\, h^{(l-1)} \text{ with residual}), \qquad
        h = \sum_l \gamma_l\, h^{(l)} \text{ (jumping knowledge) or } h^{(L)}

    with ``P`` one of ``gcn``: :math:`\hat D^{-1/2}(A + I)\hat D^{-1/2}`, :math:`\hat D = D + I`;
    ``sum``: :math:`A`; ``mean``: :math:`D^{-1} A`, over the live edges of the graph. The
    last step is followed by a dropout ``tail_dropout``. ``γ`` starts from a standard normal draw, as
    in the reference code. For a featureless graph (``in_channels=None``) ``h^{(0)}`` is a learned
    embedding per node (orthogonal init), as the code does for ogbl-ddi.

    Args:
        in_channels: input feature width, or ``None`` for a learned embedding of ``num_nodes`` rows.
        hidden_channels: width of ``h``.
        num_layers: number of propagation steps.
        aggr: ``"gcn"``, ``"sum"`` or ``"mean"``.
        input_dropout: dropout on ``x`` (the code's ``--xdp``).
        dropout: dropout after the linear map / embedding (``--gnndp``).
        tail_dropout: dropout after the last step (``--tdp``).
        edge_dropout: training-time dropout of edges, rescaled by ``1/(1-p)`` (``--gnnedp``).
        residual: add each step's input to its output (``--res``).
        jk: learned weighted sum of every step's output (``--jk``).
        num_nodes: rows of the embedding when ``in_channels`` is ``None``.
    """

    AGGRS = ("gcn", "sum", "mean")
    #: Inputs with fewer nonzeros than this fraction go through the sparse input map.
    SPARSE_INPUT_DENSITY = 0.1

    def __init__(self, in_channels: int | None, hidden_channels: int, num_layers: int = 1, aggr: str = "gcn",
                 input_dropout: float = 0.0, dropout: float = 0.0, tail_dropout: float = 0.0,
                 edge_dropout: float = 0.0, residual: bool = False, jk: bool = False, num_nodes: int | None = None):
        super().__init__()
        if aggr not in self.AGGRS:
            raise ValueError(f"PropagationEncoder: aggr must be one of {self.AGGRS}, got {aggr!r}")
        if num_layers < 0:
            raise ValueError(f"PropagationEncoder: num_layers must be >= 0, got {num_layers}")
        self.edge_dropout = check_dropout("PropagationEncoder", edge_dropout, "edge_dropout")
        if in_channels is None:
            if not num_nodes or num_nodes < 1:
                raise ValueError("PropagationEncoder: a featureless graph (in_channels=None) needs num_nodes")
            self.embedding = nn.Embedding(num_nodes, hidden_channels)
            nn.init.orthogonal_(self.embedding.weight)
            self.lin = None
        else:
            self.embedding = None
            self.lin = nn.Linear(in_channels, hidden_channels)
        self.input_dropout = Dropout(input_dropout)
        self.dropout = Dropout(dropout)
        self.tail_dropout = Dropout(tail_dropout)
        self.aggr, self.num_layers, self.residual = aggr, num_layers, residual
        self.jk_weight = nn.Parameter(torch.randn(num_layers)) if jk and num_layers > 0 else None
        self._sparse_input = None  # (x, its version, (nonzero index, values) or None)

    def _input_map(self, x: Tensor) -> Tensor:
        """``lin(dropout(x))``; for a mostly-zero ``x`` (bag-of-words features) over its nonzeros only.

        Dropout leaves zeros at zero, so dropping the stored nonzeros with the same probability and
        multiplying the sparse result is the same random function as the dense path, at the cost of
        the nonzeros instead of ``N × F`` (Cora: 1.3 % of the entries).
        """
        cache = self._sparse_input
        if cache is None or cache[0] is not x or cache[1] != x._version:
            nonzero = x.nonzero().t() if x.is_floating_point() and x.dim() == 2 else None
            sparse = nonzero is not None and nonzero.size(1) < self.SPARSE_INPUT_DENSITY * x.numel()
            if sparse:  # CSR: row pointers from the row-major nonzeros; faster than COO on the CPU, both ways
                crow = torch.zeros(x.size(0) + 1, dtype=torch.int64, device=x.device)
                crow[1:] = torch.cumsum(torch.bincount(nonzero[0], minlength=x.size(0)), 0)
                cache = (x, x._version, (crow, nonzero[1].contiguous(), x[nonzero[0], nonzero[1]]))
            else:
                cache = (x, x._version, None)
            self._sparse_input = cache
        if cache[2] is None:
            return self.lin(self.input_dropout(x))
        crow, col, values = cache[2]
        with warnings.catch_warnings():  # torch calls its CSR support beta, once per process
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            dropped = torch.sparse_csr_tensor(crow, col, self.input_dropout(values), x.shape, check_invariants=False)
        return dropped @ self.lin.weight.t() + self.lin.bias  # (N, F) sparse @ (F, D)

    def _propagate(self, h: Tensor, graph: Graph, weight: Tensor | None) -> Tensor:
        out = aggregate(h, graph, weight, "sum")  # (N, D): Σ_v w_uv h_v
        if self.aggr == "sum":
            return out
        deg = graph.in_degree().to(h.dtype) if weight is None else \
            torch.zeros(graph.num_nodes, dtype=h.dtype, device=h.device).index_add_(0, graph.edge_index[1], weight)
        if self.aggr == "mean":
            return out / deg.clamp(min=1).unsqueeze(-1)
        norm = (deg + 1).rsqrt().unsqueeze(-1)  # (N, 1): (d_u + 1)^{-1/2}
        return norm * (aggregate(norm * h, graph, weight, "sum") + norm * h)

    def forward(self, x: Tensor | None, graph: Graph, edge_mask: Tensor | None = None) -> Tensor:
        if self.embedding is not None:
            h = self.embedding.weight
            if h.size(0) != graph.num_nodes:
                raise ValueError(f"PropagationEncoder: embedding has {h.size(0)} rows, the graph {graph.num_nodes} nodes")
        else:
            _check_h(x, graph, "PropagationEncoder", "x")
            h = self._input_map(x)
        h = self.dropout(h)
        outs = []
        for layer in range(self.num_layers):
            weight = _edge_weight(graph, edge_mask, self.edge_dropout, self.training, h.dtype)
            step = self._propagate(h, graph, weight)
            if layer == self.num_layers - 1:
                step = self.tail_dropout(step)
            h = step + h if self.residual else step
            outs.append(h)
        if self.jk_weight is not None:
            h = (torch.stack(outs) * self.jk_weight.view(-1, 1, 1)).sum(0)  # (L, N, D) -> (N, D)
        return h


class GCNEncoder(nn.Module):
    r"""GAE's encoder (Kipf & Welling, "Variational Graph Auto-Encoders", 2016) and NCN's learned
    ``gcn`` encoder: ``num_layers`` :class:`~gnnlab.nn.conv.GCNConv` layers.

    After every layer but the last (and after the last too with ``activate_last``, as NCN's code
    does for a one-layer encoder): ``[LayerNorm] -> Dropout -> ReLU``; with ``residual`` a layer's
    input is added to its output where the widths match (NCN's ``--res``).

    Args:
        in_channels: input feature width.
        hidden_channels: width of the hidden layers.
        out_channels: width of ``h``.
        num_layers: number of GCN layers (>= 1).
        dropout: dropout after each activated layer (``--gnndp``).
        input_dropout: dropout on ``x`` (``--xdp``).
        layer_norm: LayerNorm before the activation (``--ln``).
        residual: residual connections where the widths match.
        edge_dropout: training-time dropout of edges (``--gnnedp``); the dropped edges
            are removed, without the reference code's ``1/(1-p)`` reweighting of the kept ones.
        activate_last: apply ``[LayerNorm] -> Dropout -> ReLU`` after the last layer as well.
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int, num_layers: int = 2,
                 dropout: float = 0.0, input_dropout: float = 0.0, layer_norm: bool = False, residual: bool = False,
                 edge_dropout: float = 0.0, activate_last: bool = False):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"GCNEncoder: num_layers must be >= 1, got {num_layers}")
        self.edge_dropout = check_dropout("GCNEncoder", edge_dropout, "edge_dropout")
        dims = [in_channels] + [hidden_channels] * (num_layers - 1) + [out_channels]
        self.convs = nn.ModuleList(GCNConv(a, b) for a, b in zip(dims[:-1], dims[1:]))
        activated = num_layers if activate_last else num_layers - 1
        self.norms = nn.ModuleList(nn.LayerNorm(b) if layer_norm else nn.Identity() for b in dims[1:activated + 1])
        self.dropout = Dropout(dropout)
        self.input_dropout = Dropout(input_dropout)
        self.residual = residual

    def forward(self, x: Tensor, graph: Graph, edge_mask: Tensor | None = None) -> Tensor:
        _check_h(x, graph, "GCNEncoder", "x")
        edge_mask = _drop_edges(graph, edge_mask, self.edge_dropout, self.training)
        if edge_mask is not None:  # once per batch, shared by the layers
            graph = Graph.from_edge_index(graph.edge_index[:, edge_mask.bool()], graph.num_nodes)
        h = self.input_dropout(x)
        for i, conv in enumerate(self.convs):
            out, _ = conv(h, graph)
            if i < len(self.norms):
                out = self.dropout(self.norms[i](out)).relu()
            h = out + h if self.residual and out.shape == h.shape else out
        return h


class GNNLinkEncoder(nn.Module):
    """Any :class:`~gnnlab.models.gnn.GNN` (GCN, GatedGCN, GT, GPS ...) as a link-prediction encoder.

    Runs the GNN on the graph's edges (without those masked out by ``edge_mask``, e.g. the target
    links of the batch) and returns the GNN's node embeddings, skipping its pooling
    and head (which are dropped here, so they hold no unused parameters). Graphs without node
    features get their node ids as tokens, so the GNN's node encoder should then be an
    :class:`~gnnlab.nn.encoders.EmbeddingEncoder` over ``num_nodes`` tokens.

    Args:
        gnn: the network, typically from :func:`gnnlab.models.build_gnn` with ``pool=None``.
    """

    def __init__(self, gnn: GNN):
        super().__init__()
        if not isinstance(gnn, GNN):
            raise TypeError(f"GNNLinkEncoder: expected a gnnlab.models.GNN, got {type(gnn).__name__}")
        gnn.head = nn.Identity()
        gnn.pool = None
        self.gnn = gnn

    def forward(self, x: Tensor | None, graph: Graph, edge_mask: Tensor | None = None) -> Tensor:
        edge_index = graph.edge_index
        if edge_mask is not None:
            edge_index = edge_index[:, edge_mask.bool()]
        if x is None:
            x = torch.arange(graph.num_nodes, device=graph.col.device)
        if x.size(0) != graph.num_nodes:
            raise ValueError(f"GNNLinkEncoder: x has {x.size(0)} rows but the graph has {graph.num_nodes} nodes")
        return self.gnn.node_embeddings(Data(x=x, edge_index=edge_index, num_nodes=graph.num_nodes))


class LinkPredictionModel(nn.Module):
    """An encoder and a predictor; the trainer calls :meth:`encode` once per batch (or once per
    evaluation) and :meth:`score` for each set of pairs.

    Args:
        predictor: a module with the signature ``(h, graph, pairs, edge_mask) -> logits [B]``.
        encoder: a module ``(x, graph, edge_mask) -> h [N, D]``, or ``None`` (heuristics: ``h = None``).
        encoder_lr, predictor_lr: optional learning rates of the two parts (NCN trains them with
            different rates); see :meth:`optimizer_groups`.
    """

    def __init__(self, predictor: nn.Module, encoder: nn.Module | None = None,
                 encoder_lr: float | None = None, predictor_lr: float | None = None):
        super().__init__()
        self.encoder = encoder
        self.predictor = predictor
        self.encoder_lr, self.predictor_lr = encoder_lr, predictor_lr

    def encode(self, x: Tensor | None, graph: Graph, edge_mask: Tensor | None = None) -> Tensor | None:
        """Node representations ``[N, D]`` (``None`` without an encoder)."""
        return None if self.encoder is None else self.encoder(x, graph, edge_mask)

    def score(self, h: Tensor | None, graph: Graph, pairs: Tensor, edge_mask: Tensor | None = None) -> Tensor:
        """Logits ``[B]`` of the pairs ``[2, B]``."""
        return self.predictor(h, graph, pairs, edge_mask)

    def forward(self, x: Tensor | None, graph: Graph, pairs: Tensor, edge_mask: Tensor | None = None) -> Tensor:
        return self.score(self.encode(x, graph, edge_mask), graph, pairs, edge_mask)

    def optimizer_groups(self) -> list[dict]:
        """Parameter groups for an optimizer, with the per-part learning rates where set."""
        groups = []
        for part, lr in ((self.encoder, self.encoder_lr), (self.predictor, self.predictor_lr)):
            params = [] if part is None else [p for p in part.parameters() if p.requires_grad]
            if params:
                groups.append({"params": params, **({"lr": lr} if lr is not None else {})})
        return groups
