"""Link predictors: score a batch of node pairs from node representations and the graph.

Every predictor has one signature::

    predictor(h, graph, pairs, edge_mask=None) -> logits [B]

with ``h`` ``[N, F]`` node representations (``None`` for the heuristics), ``graph`` the
:class:`gnnlab.ops.Graph` of the message-passing graph (:meth:`~gnnlab.ops.Graph.undirected`),
``pairs`` ``[2, B]`` the query pairs ``(i, j)`` and ``edge_mask`` ``[E]`` (optional) the edges to
hide — how a training batch removes its own target links without rebuilding the graph (NCN's
"target link removal", :func:`gnnlab.ops.target_link_mask`).

- :class:`HeuristicPredictor`: common neighbours, Adamic–Adar, resource allocation (no parameters).
- :class:`DotPredictor`: GAE's inner-product decoder ``h_i · h_j`` (Kipf & Welling, 2016).
- :class:`HadamardMLPPredictor`: an MLP on ``h_i ⊙ h_j`` (the usual "GAE with MLP decoder"; NCN's ``cn0``).
- :class:`NCNPredictor`: Neural Common Neighbor (Wang et al., ICLR 2024).
- :class:`NCNCPredictor`: NCN with common-neighbour completion (NCNC, same paper).

Common-neighbour sets come from :func:`gnnlab.ops.common_neighbor_sets` (a merge or galloping
intersection per pair) and are summed with the fused aggregation, so no ``[M, F]`` gather of the
members' features is materialised.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from gnnlab.nn.dropout import Dropout
from gnnlab.nn.mlp import check_dropout
from gnnlab.ops import Graph, adamic_adar, common_neighbor_count, common_neighbor_sets, resource_allocation

__all__ = ["HeuristicPredictor", "DotPredictor", "HadamardMLPPredictor", "NCNPredictor", "NCNCPredictor"]


def _check_pairs(pairs: Tensor, graph: Graph, who: str) -> Tensor:
    if not isinstance(pairs, Tensor) or pairs.dim() != 2 or pairs.size(0) != 2:
        shape = list(pairs.shape) if isinstance(pairs, Tensor) else type(pairs).__name__
        raise ValueError(f"{who}: pairs must be a [2, B] tensor of node indices, got {shape}")
    if pairs.is_floating_point() or pairs.dtype == torch.bool:
        raise ValueError(f"{who}: pairs must hold integer node indices, got {pairs.dtype}")
    if pairs.numel() and (int(pairs.min()) < 0 or int(pairs.max()) >= graph.num_nodes):
        raise ValueError(f"{who}: pairs hold node indices outside [0, {graph.num_nodes})")
    return pairs.long()


def _check_h(h: Tensor, graph: Graph, who: str, name: str = "h") -> None:
    if not isinstance(h, Tensor) or h.dim() != 2 or h.size(0) != graph.num_nodes:
        shape = list(h.shape) if isinstance(h, Tensor) else type(h).__name__
        raise ValueError(f"{who}: {name} must have shape [num_nodes={graph.num_nodes}, F], got {shape}")


def _block(a: int, b: int, dropout: float, layer_norm: bool | None) -> list[nn.Module]:
    """``Linear(a, b) -> [LayerNorm] -> Dropout -> ReLU``: an ``Identity`` takes the norm's place without layer norm,
    and ``layer_norm=None`` leaves the place out."""
    norm = [] if layer_norm is None else [nn.LayerNorm(b) if layer_norm else nn.Identity()]
    return [nn.Linear(a, b), *norm, Dropout(dropout), nn.ReLU()]


def _drop_edges(graph: Graph, edge_mask: Tensor | None, p: float, training: bool) -> Tensor | None:
    """``edge_mask`` with every edge also dropped with probability ``p`` (training only)."""
    if not training or p <= 0:
        return edge_mask
    keep = torch.rand(graph.num_edges, device=graph.col.device) >= p
    return keep if edge_mask is None else keep & edge_mask.bool()


class HeuristicPredictor(nn.Module):
    r"""Classic neighbourhood heuristics as a predictor without parameters.

    .. math::
        \mathrm{CN}(i,j) = |N(i) \cap N(j)|, \quad
        \mathrm{AA}(i,j) = \sum_{k \in N(i) \cap N(j)} \frac{1}{\log d_k}, \quad
        \mathrm{RA}(i,j) = \sum_{k \in N(i) \cap N(j)} \frac{1}{d_k}

    (Liben-Nowell & Kleinberg 2007; Adamic & Adar 2003; Zhou et al. 2009). Degrees count the live
    edges of the graph (after ``edge_mask``).

    Args:
        kind: ``"cn"``, ``"aa"`` or ``"ra"``.
    """

    KINDS = ("cn", "aa", "ra")

    def __init__(self, kind: str = "cn"):
        super().__init__()
        if kind not in self.KINDS:
            raise ValueError(f"HeuristicPredictor: kind must be one of {self.KINDS}, got {kind!r}")
        self.kind = kind

    def forward(self, h: Tensor | None, graph: Graph, pairs: Tensor, edge_mask: Tensor | None = None) -> Tensor:
        pairs = _check_pairs(pairs, graph, "HeuristicPredictor")
        src, dst = pairs[0], pairs[1]
        if self.kind == "cn":
            return common_neighbor_count(graph, src, dst, edge_mask).to(torch.float32)
        fn = adamic_adar if self.kind == "aa" else resource_allocation
        return fn(graph, src, dst, edge_mask).to(torch.float32)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}"


class DotPredictor(nn.Module):
    r"""GAE's inner-product decoder: :math:`s_{ij} = h_i^\top h_j` (a logit)."""

    def forward(self, h: Tensor, graph: Graph, pairs: Tensor, edge_mask: Tensor | None = None) -> Tensor:
        _check_h(h, graph, "DotPredictor")
        pairs = _check_pairs(pairs, graph, "DotPredictor")
        return (h[pairs[0]] * h[pairs[1]]).sum(-1)


class HadamardMLPPredictor(nn.Module):
    r"""An MLP on the Hadamard product: :math:`s_{ij} = \mathrm{MLP}(h_i \odot h_j)`.

    Hidden layers are ``Linear -> [LayerNorm] -> Dropout -> ReLU``; the last layer maps to one logit.

    Args:
        in_channels: width of ``h``.
        hidden_channels: width of the hidden layers.
        num_layers: number of linear layers (``1`` = a linear decoder).
        dropout: dropout after each hidden layer.
        layer_norm: LayerNorm in the hidden layers.
    """

    def __init__(self, in_channels: int, hidden_channels: int, num_layers: int = 3, dropout: float = 0.0,
                 layer_norm: bool = False):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"HadamardMLPPredictor: num_layers must be >= 1, got {num_layers}")
        widths = [in_channels] + [hidden_channels] * (num_layers - 1)
        hidden = [module for a, b in zip(widths[:-1], widths[1:]) for module in _block(a, b, dropout, layer_norm)]
        self.mlp = nn.Sequential(*hidden, nn.Linear(widths[-1], 1))

    def forward(self, h: Tensor, graph: Graph, pairs: Tensor, edge_mask: Tensor | None = None) -> Tensor:
        _check_h(h, graph, "HadamardMLPPredictor")
        pairs = _check_pairs(pairs, graph, "HadamardMLPPredictor")
        return self.mlp(h[pairs[0]] * h[pairs[1]]).squeeze(-1)


class NCNPredictor(nn.Module):
    r"""Neural Common Neighbor (Wang, Yang, Zhang, "Neural Common Neighbor with Completion for Link
    Prediction", ICLR 2024), Eq. 5 of the paper:

    .. math::
        \mathrm{NCN}(i, j) = \mathrm{MLP}\Big(\sum_{k \in N(i) \cap N(j)} \tilde h_k \;\big\|\; h_i \odot h_j\Big)

    The MLP on the concatenation is built as the authors' code builds it: a branch for each half,
    summed, then a head, i.e. ``head(cn_mlp(Σ h̃_k) · β + ij_mlp(h_i ⊙ h_j))`` with a learnable
    scalar ``β`` (initialised to ``beta``). A linear map of a concatenation is the sum of linear maps
    of its parts, so this is the paper's function class with a structured first layer. With
    ``use_xlin`` the summed features are ``h̃ = h + xlin(h)`` (the code's ``--use_xlin``), while
    ``h_i ⊙ h_j`` uses ``h`` itself; without it ``h̃ = h``.

    Layers, as in the reference code (``CNLinkPredictor``): ``xlin = Linear, Dropout, ReLU, Linear,
    [LN], Dropout, ReLU``; ``cn_mlp = Linear, Dropout, ReLU, Linear, [LN], Dropout, ReLU[, Linear]``;
    ``ij_mlp = Linear, [LN], Dropout, ReLU[, Linear]`` (the bracketed final Linear is dropped with
    ``tail_act=True``, the code's ``--tailact``); ``head = Linear, [LN], Dropout, ReLU[, Linear, [LN],
    Dropout, ReLU], Linear -> 1`` (the middle block with ``two_layer_head``, ``--twolayerlin``).

    Args:
        in_channels: width of ``h``.
        hidden_channels: width of the MLPs.
        dropout: dropout in the MLPs (the code's ``--predp``).
        edge_dropout: during training, each edge is hidden with this probability before
            the common neighbours are computed (the code's ``--preedp``).
        layer_norm: LayerNorm in the MLPs (``--lnnn``).
        use_xlin, tail_act, two_layer_head: see above.
        beta: initial value of ``β``.

    Shapes:
        ``h [N, in_channels]``, ``pairs [2, B]`` -> ``[B]`` logits.
    """

    def __init__(self, in_channels: int, hidden_channels: int, dropout: float = 0.0, edge_dropout: float = 0.0,
                 layer_norm: bool = True, use_xlin: bool = False, tail_act: bool = False,
                 two_layer_head: bool = False, beta: float = 1.0):
        super().__init__()
        self.edge_dropout = check_dropout(type(self).__name__, edge_dropout, "edge_dropout")
        hid, ln = hidden_channels, layer_norm
        self.beta = nn.Parameter(torch.full((1,), float(beta)))
        self.xlin = nn.Sequential(*_block(in_channels, hid, dropout, None),
                                  *_block(hid, in_channels, dropout, ln)) if use_xlin else None
        self.cn_mlp = nn.Sequential(*_block(in_channels, hid, dropout, None), *_block(hid, hid, dropout, ln),
                                    nn.Identity() if tail_act else nn.Linear(hid, hid))
        self.ij_mlp = nn.Sequential(*_block(in_channels, hid, dropout, ln),
                                    nn.Identity() if tail_act else nn.Linear(hid, hid))
        head = _block(hid, hid, dropout, ln) + (_block(hid, hid, dropout, ln) if two_layer_head else [])
        self.head = nn.Sequential(*head, nn.Linear(hid, 1))

    def _summed_features(self, h: Tensor) -> Tensor:
        return h if self.xlin is None else h + self.xlin(h)

    def _combine(self, cn_sum: Tensor, h: Tensor, pairs: Tensor) -> Tensor:
        hij = h[pairs[0]] * h[pairs[1]]  # (B, F)
        return self.head(self.cn_mlp(cn_sum) * self.beta + self.ij_mlp(hij)).squeeze(-1)

    def _ncn(self, h: Tensor, h_sum: Tensor, graph: Graph, pairs: Tensor, edge_mask: Tensor | None) -> Tensor:
        cn = common_neighbor_sets(graph, pairs[0], pairs[1], "common", edge_mask)
        return self._combine(cn.aggregate(h_sum), h, pairs)

    def forward(self, h: Tensor, graph: Graph, pairs: Tensor, edge_mask: Tensor | None = None) -> Tensor:
        who = type(self).__name__
        _check_h(h, graph, who)
        pairs = _check_pairs(pairs, graph, who)
        edge_mask = _drop_edges(graph, edge_mask, self.edge_dropout, self.training)
        return self._ncn(h, self._summed_features(h), graph, pairs, edge_mask)


class NCNCPredictor(NCNPredictor):
    r"""NCN with Common-Neighbour Completion (NCNC; Wang, Yang, Zhang, ICLR 2024, Eq. 7–8).

    A node ``k`` that neighbours ``i`` but (in the observed graph) not ``j`` may be a common
    neighbour the graph misses; NCNC counts it with the probability that the edge ``(j, k)`` exists,
    estimated by NCN itself:

    .. math::
        \mathrm{NCNC}(i,j) = \mathrm{MLP}\Big(\sum_{k \in N(i)\cap N(j)} \tilde h_k
          + \sum_{k \in N(i) \setminus N(j)} \hat A_{jk} \tilde h_k
          + \sum_{k \in N(j) \setminus N(i)} \hat A_{ik} \tilde h_k \;\big\|\; h_i \odot h_j\Big),
        \qquad \hat A_{jk} = c\big(\mathrm{NCN}(j, k)\big)

    with the same MLP as :class:`NCNPredictor` and the completion probabilities computed without
    gradient (as in the reference code). ``c`` is the code's calibration of NCN's logit ``s``
    (``clampprob`` in ``IncompleteCN1Predictor``)::

        p0 = sigmoid(scale · (s − offset));   c(s) = alpha · pt · p0 / (pt · p0 + 1 − p0)

    (a prior-odds reweighting of ``p0`` by ``pt``, then a factor ``alpha``; the code's ``--probscale``,
    ``--proboffset``, ``--pt``, ``--alpha``). The paper writes ``Â_jk = sigmoid(NCN(j, k))``; we
    follow the code, whose calibration produced the published numbers.

    Differences from the reference code, kept on purpose: the completion probabilities are NCN
    applied to the same ``h`` as the outer score (the code passes ``h + xlin(h)`` into its inner
    call, which applies ``xlin`` a second time), which is the paper's definition; the one-sided sets
    are not subsampled (the code's ``--trndeg/--tstdeg``, unused for the Planetoid and ddi runs).
    Completion depth is 1 (NCNC, not NCNC2).

    Args:
        scale, offset, pt, alpha: calibration constants (see above).
        split_size: score the completion pairs in chunks of this many (memory bound; ``None`` = all at once).
        Others: as :class:`NCNPredictor`.
    """

    def __init__(self, in_channels: int, hidden_channels: int, dropout: float = 0.0, edge_dropout: float = 0.0,
                 layer_norm: bool = True, use_xlin: bool = False, tail_act: bool = False,
                 two_layer_head: bool = False, beta: float = 1.0, scale: float = 5.0, offset: float = 3.0,
                 pt: float = 0.5, alpha: float = 1.0, split_size: int | None = None):
        super().__init__(in_channels, hidden_channels, dropout, edge_dropout, layer_norm, use_xlin, tail_act,
                         two_layer_head, beta)
        if not 0.0 < pt <= 1.0:
            raise ValueError(f"NCNCPredictor: pt must be in (0, 1], got {pt}")
        if split_size is not None and split_size < 1:
            raise ValueError(f"NCNCPredictor: split_size must be positive or None, got {split_size}")
        self.scale, self.offset, self.pt, self.alpha = float(scale), float(offset), float(pt), float(alpha)
        self.split_size = split_size

    def calibrate(self, logits: Tensor) -> Tensor:
        """Completion probability ``c(s)`` of NCN logits ``s`` (see the class docstring)."""
        p0 = torch.sigmoid(self.scale * (logits - self.offset))
        return self.alpha * self.pt * p0 / (self.pt * p0 + 1.0 - p0)

    @torch.no_grad()
    def _completion(self, h: Tensor, h_sum: Tensor, graph: Graph, pairs: Tensor, edge_mask: Tensor | None) -> Tensor:
        if pairs.size(1) == 0:
            return h.new_zeros(0)
        step = self.split_size or pairs.size(1)
        logits = torch.cat([self._ncn(h, h_sum, graph, pairs[:, s:s + step], edge_mask)
                            for s in range(0, pairs.size(1), step)])
        return self.calibrate(logits)

    def forward(self, h: Tensor, graph: Graph, pairs: Tensor, edge_mask: Tensor | None = None) -> Tensor:
        who = type(self).__name__
        _check_h(h, graph, who)
        pairs = _check_pairs(pairs, graph, who)
        edge_mask = _drop_edges(graph, edge_mask, self.edge_dropout, self.training)
        h_sum = self._summed_features(h)
        src, dst = pairs[0], pairs[1]
        common = common_neighbor_sets(graph, src, dst, "common", edge_mask)
        only_i = common_neighbor_sets(graph, src, dst, "src_only", edge_mask)  # k ∈ N(i) \ N(j): edge (j, k)?
        only_j = common_neighbor_sets(graph, src, dst, "dst_only", edge_mask)  # k ∈ N(j) \ N(i): edge (i, k)?
        p_i = self._completion(h, h_sum, graph, torch.stack([dst[only_i.pair()], only_i.nodes]), edge_mask)
        p_j = self._completion(h, h_sum, graph, torch.stack([src[only_j.pair()], only_j.nodes]), edge_mask)
        cn_sum = common.aggregate(h_sum) + only_i.aggregate(h_sum, p_i.to(h_sum.dtype)) \
            + only_j.aggregate(h_sum, p_j.to(h_sum.dtype))
        return self._combine(cn_sum, h, pairs)

    def extra_repr(self) -> str:
        return (f"scale={self.scale}, offset={self.offset}, pt={self.pt}, alpha={self.alpha}, "
                f"edge_dropout={self.edge_dropout}")
