"""The GMN layer: subgraph tokens encoded by a local GNN, a bidirectional Mamba over each node's token
sequence, an optional message-passing branch beside it, then an FFN (Behrouz & Hashemi, KDD 2024)."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from gnnlab.nn.layers.conv_layer import call_conv
from gnnlab.nn.mlp import check_dropout, feed_forward, norm_layer, reset
from gnnlab.nn.ssm.sequence import unpermute
from gnnlab.nn.tokenizers.random_walk import NeighborhoodTokens, NodeTokens

__all__ = ["GMNLayer", "TokenEncoder", "gmn_layer"]


class TokenEncoder(torch.nn.Module):
    r"""GMN's local encoding: each subgraph token's induced subgraph through a local GNN, pooled to one vector.

    All tokens of a batch are encoded at once: the members of every token form one big graph of
    disjoint induced subgraphs (:class:`~gnnlab.nn.tokenizers.NeighborhoodTokens`), node features
    and edge features are gathered from the graph's, the convolutions run once over it, and the
    outputs are averaged per token:

    .. code-block:: text

        h = x[tokens.node]; e = edge_attr[tokens.edge_id]        # (P, D), (F, D)
        for conv in convs: h, e = conv(h, tokens.graph, e)
        out[t] = mean of h over token t's members                # (T, D)

    Args:
        convs (Sequence[Module]): local layers ``D → D`` (GatedGCN, GINE, …), called like the local
            branch of :class:`~gnnlab.nn.layers.GPSLayer`.
        pool (str, optional): ``"mean"`` or ``"sum"`` over a token's members. (default: ``"mean"``)
    """

    def __init__(self, convs, pool: str = "mean"):
        super().__init__()
        if pool not in ("mean", "sum"):
            raise ValueError(f"TokenEncoder: pool must be 'mean' or 'sum', got {pool!r}")
        self.convs = torch.nn.ModuleList(convs)
        self.pool = pool

    def reset_parameters(self) -> None:
        """Re-initialise the local layers."""
        reset(*self.convs)

    def forward(self, x: Tensor, edge_attr: Tensor | None, tokens: NeighborhoodTokens) -> Tensor:
        """Encode every token: ``(T, D)`` in token order."""
        h = x.index_select(0, tokens.node)  # (P, D)
        e = edge_attr.index_select(0, tokens.edge_id) if edge_attr is not None else None  # (F, D)
        for conv in self.convs:
            h, e = call_conv(conv, h, tokens.graph, e)
        out = h.new_zeros(tokens.num_tokens, h.size(1)).index_add_(0, tokens.token, h)  # (T, D)
        if self.pool == "mean":
            counts = tokens.token_ptr.diff().clamp(min=1).to(h.dtype)
            out = out / counts.unsqueeze(1)
        return out


class GMNLayer(torch.nn.Module):
    r"""One layer of a Graph Mamba Network (Behrouz & Hashemi, `"Graph Mamba: Towards Learning on Graphs
    with State Space Models" <https://arxiv.org/abs/2402.08678>`_, KDD 2024), in the layout of a GPS layer:

    .. code-block:: text

        subgraph tokens (m >= 1):  t = TokenEncoder(x, e, tokens)                 # (T, D), local encoding
                                   y = BiMamba(LayerNorm(t), tokens.cu_seqlens)     # each node's sequence
                                   h_ssm = y[tokens.last]                           # last (most local) token; or readout="mean"
                                   h_ssm = unpermute(NodeBiMamba(LayerNorm(h_ssm[perm]), cu_seqlens), perm)  # with node_ssm
        node tokens (m = 0):       h_ssm = unpermute(BiMamba(LayerNorm(x[perm]), cu_seqlens), perm)
        X_S = Norm(x + Dropout(h_ssm))
        X_M = Norm(x + Dropout(MPNN(x, e)))                                         # optional branch
        X'  = Norm(X_S + X_M + FFN(X_S + X_M))

    From the paper (arXiv 2402.08678v2; section 4, Appendix C, Algorithms 1 and 2): each node's
    subgraph tokens, encoded by a local encoder ``ϕ`` (an MPNN such as GatedGCN), are read by a
    bidirectional Mamba (Algorithm 2; :class:`~gnnlab.nn.ssm.BiMamba`), whose last state (the node's own
    token, walk length 0) is the node's encoding (§4.2); then "we treat each node as a token and pass the
    encoding to another bidirectional Mamba", the nodes ordered by degree (Appendix C, Algorithm 1 lines
    16-18), and the optional MPNN ``Ψ(G, X ∥ P)`` is added to its output. With
    ``m = 0`` the token-level scan degenerates to a projection and only the node-level scan remains
    (§4.3), which is the node-token path here. The paper's algorithm shows one layer with no
    residuals, normalisation or FFN and says layers are stacked; the GPS-style residuals, norms and
    FFN around the branches are this implementation's choice.

    Args:
        dim (int): width of node features (input and output).
        ssm (Module): sequence block ``(packed (L, D), cu_seqlens) -> (L, D)``, e.g.
            :class:`~gnnlab.nn.ssm.BiMamba`.
        node_ssm (Module, optional): with subgraph tokens, a second sequence block over each graph's
            nodes in degree order (``node_order`` in :meth:`forward`), read after the token-level
            scan, as the paper's Algorithm 1 does. (default: :obj:`None`)
        token_encoder (TokenEncoder, optional): local encoding of subgraph tokens; required for
            :class:`~gnnlab.nn.tokenizers.NeighborhoodTokens`, unused for node tokens.
        conv (Module, optional): message-passing branch ``dim → dim`` on the whole graph.
        dropout (float): dropout on the branch outputs and in the FFN. (default: :obj:`0.0`)
        norm (str): ``'batch'``, ``'layer'`` or ``'none'``. (default: :obj:`'batch'`)
        ffn_ratio (int): FFN hidden width ÷ ``dim``; ``0`` drops the FFN. (default: :obj:`2`)
        local_residual (bool): add the input to the MPNN branch (off for a conv with its own residual).
        readout (str): a node's SSM output with subgraph tokens: ``"last"``, the scan's output at its
            last token (its own ``{v}``), or ``"mean"`` over its whole sequence. With ``"last"`` the
            backward direction contributes a function of the ``{v}`` token alone (a reversed causal scan
            has read nothing else at that position); ``"mean"`` lets both directions see every token.
            (default: ``"last"``)

    Shapes:
        - **input:** ``x`` :math:`(N, D)`, the batch's :class:`~gnnlab.ops.Graph`, ``edge_attr``
          :math:`(E, D)` or :obj:`None`, ``tokens`` from :class:`~gnnlab.nn.tokenizers.RandomWalkTokenizer`
        - **output:** ``(x (N, D), edge_attr)``
    """

    def __init__(self, dim: int, ssm: torch.nn.Module, token_encoder: TokenEncoder | None = None,
                 conv: torch.nn.Module | None = None, dropout: float = 0.0, norm: str = "batch", ffn_ratio: int = 2,
                 local_residual: bool = True, readout: str = "last", node_ssm: torch.nn.Module | None = None):
        super().__init__()
        if readout not in ("last", "mean"):
            raise ValueError(f"GMNLayer: readout must be 'last' or 'mean', got {readout!r}")
        self.readout = readout
        check_dropout("GMNLayer", dropout)
        if ffn_ratio < 0:
            raise ValueError(f"GMNLayer: ffn_ratio must be >= 0, got {ffn_ratio}")
        self.dim, self.dropout, self.local_residual = dim, dropout, local_residual
        self.ssm, self.token_encoder, self.conv = ssm, token_encoder, conv
        self.norm_in = torch.nn.LayerNorm(dim)
        self.node_ssm = node_ssm
        self.norm_node = torch.nn.LayerNorm(dim) if node_ssm is not None else None
        self.norm_ssm = norm_layer(norm, dim)
        self.norm_local = norm_layer(norm, dim) if conv is not None else None
        self.ffn1 = torch.nn.Linear(dim, ffn_ratio * dim) if ffn_ratio else None
        self.ffn2 = torch.nn.Linear(ffn_ratio * dim, dim) if ffn_ratio else None
        self.norm_out = norm_layer(norm, dim) if ffn_ratio else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise every part."""
        reset(self.ssm, self.token_encoder, self.conv, self.norm_in, self.norm_ssm, self.norm_local, self.ffn1,
              self.ffn2, self.norm_out, self.node_ssm, self.norm_node)

    def scan(self, x: Tensor, edge_attr: Tensor | None, tokens: NeighborhoodTokens | NodeTokens,
             node_order: NodeTokens | None = None) -> Tensor:
        """The SSM branch before its residual: ``(N, D)``, one row per node."""
        if isinstance(tokens, NodeTokens):
            seq = self.norm_in(x.index_select(0, tokens.perm))  # (N, D) graph by graph, degree order
            return unpermute(self.ssm(seq, tokens.cu_seqlens), tokens.perm)
        if not isinstance(tokens, NeighborhoodTokens):
            raise ValueError(f"GMNLayer: tokens must be NeighborhoodTokens or NodeTokens, got {type(tokens).__name__}")
        if self.token_encoder is None:
            raise ValueError("GMNLayer: subgraph tokens need a token_encoder (the layer was built for node tokens)")
        if tokens.cu_seqlens.numel() != x.size(0) + 1:
            raise ValueError(f"GMNLayer: tokens describe {tokens.cu_seqlens.numel() - 1} nodes, x has {x.size(0)}")
        seq = self.norm_in(self.token_encoder(x, edge_attr, tokens))  # (T, D) in scan order
        out = self.ssm(seq, tokens.cu_seqlens)  # (T, D)
        if self.readout == "last":
            nodes = out.index_select(0, tokens.last)  # (N, D)
        else:
            lengths = tokens.cu_seqlens.diff()
            owner = torch.repeat_interleave(torch.arange(x.size(0), device=x.device), lengths,
                                            output_size=out.size(0))
            nodes = out.new_zeros(x.size(0), out.size(1)).index_add_(0, owner, out) / lengths.clamp(min=1).unsqueeze(1)
        if self.node_ssm is None:
            return nodes
        if not isinstance(node_order, NodeTokens):
            raise ValueError("GMNLayer: a node_ssm needs node_order (NodeTokens: each graph's nodes in degree order)")
        return unpermute(self.node_ssm(self.norm_node(nodes.index_select(0, node_order.perm)), node_order.cu_seqlens),
                         node_order.perm)

    def forward(self, x: Tensor, graph, edge_attr: Tensor | None = None,
                tokens: NeighborhoodTokens | NodeTokens | None = None,
                node_order: NodeTokens | None = None) -> tuple[Tensor, Tensor | None]:
        """Apply the layer; returns ``(x_out, edge_attr_out)`` (edges updated only by an MPNN that does so)."""
        if x.dim() != 2 or x.size(1) != self.dim:
            raise ValueError(f"GMNLayer: expected x of shape [N, {self.dim}], got {list(x.shape)}")
        if tokens is None:
            raise ValueError("GMNLayer: tokens are required (see gnnlab.nn.tokenizers.RandomWalkTokenizer)")
        h_ssm = F.dropout(self.scan(x, edge_attr, tokens, node_order), p=self.dropout, training=self.training)
        h = self.norm_ssm(x + h_ssm)
        if self.conv is not None:
            h_local, edge_attr = call_conv(self.conv, x, graph, edge_attr)
            h_local = F.dropout(h_local, p=self.dropout, training=self.training)
            if self.local_residual:
                h_local = x + h_local
            h = h + self.norm_local(h_local)
        if self.ffn1 is not None:
            h = self.norm_out(h + feed_forward(h, self.ffn1, self.ffn2, self.dropout, self.training))
        return h, edge_attr

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.dim}, ssm={type(self.ssm).__name__}, "
                f"token_encoder={self.token_encoder is not None}, conv={self.conv!r})")


def gmn_layer(
    in_channels: int,
    out_channels: int,
    ssm: Callable[[int], torch.nn.Module],
    token_conv: Callable[[int, int], torch.nn.Module] | None = None,
    token_layers: int = 1,
    token_pool: str = "mean",
    conv: Callable[[int, int], torch.nn.Module] | None = None,
    subgraph_tokens: bool = True,
    node_ssm: Callable[[int], torch.nn.Module] | None = None,
    **kwargs,
) -> GMNLayer:
    """Layer factory for :func:`gnnlab.models.build_gmn` (Hydra passes ``ssm``, ``token_conv``, ``conv`` as partials).

    Args:
        ssm: ``ssm(dim)``, e.g. a :class:`~gnnlab.nn.ssm.BiMamba` partial.
        node_ssm: ``node_ssm(dim)``, the node-level scan after the token-level one (subgraph tokens
            only; ignored for node tokens, where ``ssm`` already reads the nodes).
        token_conv: ``token_conv(dim, dim)``, the local GNN of the token encoder (``token_layers`` of them).
        conv: optional MPNN branch ``conv(dim, dim)``.
        subgraph_tokens: build the token encoder (``m >= 1``); :func:`~gnnlab.models.build_gmn` sets it.
        kwargs: the rest of :class:`GMNLayer`'s arguments.
    """
    if in_channels != out_channels:
        raise ValueError(f"gmn_layer: GMN layers keep their width, got in={in_channels}, out={out_channels}")
    dim = in_channels
    encoder = None
    if subgraph_tokens:
        if token_conv is None or token_layers < 1:
            raise ValueError("gmn_layer: subgraph tokens (m >= 1) need a token_conv and token_layers >= 1")
        encoder = TokenEncoder([token_conv(dim, dim) for _ in range(token_layers)], pool=token_pool)
    return GMNLayer(dim, ssm=ssm(dim), token_encoder=encoder, conv=conv(dim, dim) if conv is not None else None,
                    node_ssm=node_ssm(dim) if node_ssm is not None and subgraph_tokens else None, **kwargs)
