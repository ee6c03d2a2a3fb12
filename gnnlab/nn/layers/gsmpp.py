r"""The GSM++ layer: local message passing, then a hybrid SSM + Transformer encoder over token sequences, and
optionally a Mixture of Tokenization (the paper, arXiv 2411.15671, and the choices made: :mod:`gnnlab.models.gsmpp`).
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from gnnlab.nn.layers.conv_layer import call_conv
from gnnlab.nn.mlp import check_dropout, feed_forward, norm_layer, reset
from gnnlab.nn.ssm.sequence import unpermute
from gnnlab.nn.tokenizers.hac import HACTokens, hierarchical_sequences, node_sequence
from gnnlab.nn.tokenizers.hop import hop_sequences

__all__ = ["TOKENIZATIONS", "HybridSequenceEncoder", "GSMPlusPlusLayer", "gsmpp_layer"]

#: Tokenizations a :class:`GSMPlusPlusLayer` can read: one sequence per graph (nodes in HAC
#: depth-first order), one k-hop sequence per node, one root-to-node HAC cluster sequence per node.
TOKENIZATIONS = ("node", "hop", "hierarchical")


class HybridSequenceEncoder(torch.nn.Module):
    r"""Recurrent (state-space) blocks followed by one Transformer block, over packed sequences.

    .. math::
        \mathbf{X} &\leftarrow \mathbf{X} + \mathrm{Dropout}(\mathrm{SSM}_i(\mathrm{LN}(\mathbf{X}))),
            \qquad i = 1, \dots, n_{\mathrm{ssm}} \\
        \mathbf{X} &\leftarrow \mathbf{X} + \mathrm{Dropout}(\mathrm{Attn}(\mathrm{LN}(\mathbf{X}))) \\
        \mathbf{X} &\leftarrow \mathbf{X} + \mathrm{Dropout}(\mathrm{FFN}(\mathrm{LN}(\mathbf{X})))

    GSM++'s global encoder combines state-space layers and a Transformer block (arXiv 2411.15671,
    abstract and Fig. 2). The order here, recurrent layers first and attention last, is a *choice*
    that could not be checked against the paper's text: the recurrent layers read the token order,
    the attention block then mixes all tokens of a sequence without the recency bias of recurrence.
    Pre-norm residual blocks with LayerNorm are a *choice* too (the usual placement in Mamba and
    Transformer stacks). Each SSM block is
    called as ``ssm(x, cu_seqlens)`` on packed sequences (:class:`gnnlab.nn.ssm.Mamba`), the attention
    as a global mixer ``attention(x, seq_id)`` (:class:`gnnlab.nn.mixer.MultiheadAttentionMixer`),
    so tokens of different sequences never interact.

    Args:
        dim (int): Token width.
        ssm (Sequence[Module]): Recurrent blocks ``dim → dim`` (may be empty).
        attention (Module, optional): Attention mixer; :obj:`None` for a purely recurrent encoder.
        ffn_ratio (int, optional): FFN hidden width ÷ ``dim`` of the Transformer block. (default: :obj:`2`)
        dropout (float, optional): Dropout on every block's output. (default: :obj:`0.0`)

    Shapes:
        - **input:** packed tokens :math:`(T, D)`, offsets ``cu_seqlens`` :math:`(S + 1,)`
        - **output:** :math:`(T, D)`
    """

    def __init__(self, dim: int, ssm: Sequence[torch.nn.Module], attention: torch.nn.Module | None = None,
                 ffn_ratio: int = 2, dropout: float = 0.0):
        super().__init__()
        if not ssm and attention is None:
            raise ValueError("HybridSequenceEncoder: give at least one SSM block or an attention block")
        check_dropout("HybridSequenceEncoder", dropout)
        if ffn_ratio < 1:
            raise ValueError(f"HybridSequenceEncoder: ffn_ratio must be >= 1, got {ffn_ratio}")
        self.dim, self.dropout = dim, dropout
        self.ssm = torch.nn.ModuleList(ssm)
        self.ssm_norms = torch.nn.ModuleList(torch.nn.LayerNorm(dim) for _ in self.ssm)
        self.attention = attention
        if attention is not None:
            self.attn_norm = torch.nn.LayerNorm(dim)
            self.ffn_norm = torch.nn.LayerNorm(dim)
            self.ffn1 = torch.nn.Linear(dim, ffn_ratio * dim)
            self.ffn2 = torch.nn.Linear(ffn_ratio * dim, dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise every block and norm."""
        reset(*(module for module in self.modules() if module is not self))

    def forward(self, x: Tensor, cu_seqlens: Tensor) -> Tensor:
        """Encode packed sequences ``x`` ``(T, D)`` with offsets ``cu_seqlens``; returns ``(T, D)``."""
        if x.dim() != 2 or x.size(1) != self.dim:
            raise ValueError(f"HybridSequenceEncoder: expected tokens [T, {self.dim}], got {list(x.shape)}")
        if cu_seqlens.dim() != 1 or cu_seqlens.numel() < 1 or int(cu_seqlens[-1]) != x.size(0):
            raise ValueError(f"HybridSequenceEncoder: cu_seqlens must end at the number of tokens {x.size(0)}")
        for norm, block in zip(self.ssm_norms, self.ssm):
            x = x + F.dropout(block(norm(x), cu_seqlens), p=self.dropout, training=self.training)
        if self.attention is not None:
            lengths = cu_seqlens.diff()
            seq_id = torch.repeat_interleave(torch.arange(lengths.numel(), device=x.device), lengths,
                                             output_size=x.size(0))  # (T,) sorted
            x = x + F.dropout(self.attention(self.attn_norm(x), seq_id), p=self.dropout, training=self.training)
            x = x + feed_forward(self.ffn_norm(x), self.ffn1, self.ffn2, self.dropout, self.training)
        return x


class GSMPlusPlusLayer(torch.nn.Module):
    r"""One GSM++ layer: local encoding, then the hybrid global encoder over the chosen tokenizations.

    .. math::
        \mathbf{X}_L &= \mathrm{Norm}\big(\mathbf{X} + \mathrm{Dropout}(\mathrm{MPNN}(\mathbf{X}, \mathbf{E},
            \mathbf{A}))\big) \\
        \mathbf{G}_t &= \mathrm{read}_t\big(\mathrm{Enc}(\mathrm{tok}_t(\mathbf{X}_L))\big), \qquad
            t \in \mathcal{T} \\
        \mathbf{X}_G &= \mathrm{Norm}\Big(\mathbf{X}_L + \mathrm{Dropout}\big(\textstyle\sum_{t} g_t \,
            \mathbf{G}_t\big)\Big) \\
        \mathbf{X}' &= \mathrm{Norm}\big(\mathbf{X}_G + \mathrm{Dropout}(\mathrm{FFN}(\mathbf{X}_G))\big)

    The local encoding comes first and the sequences are built from its output, following the GSM
    pipeline (tokenization, local encoding, global encoding; arXiv 2411.15671, abstract). ``Enc`` is a
    :class:`HybridSequenceEncoder` shared by the tokenizations :math:`\mathcal{T}` (subset of
    :data:`TOKENIZATIONS`); ``read`` takes, per node, its position in the graph's sequence
    (``'node'``) or the last token of its own sequence (``'hop'``, ``'hierarchical'``, whose last
    token is the node itself). Tokens of hierarchical sequences get a learned embedding of their tree
    level, hop tokens one of their hop.

    Without a router the gates are uniform, :math:`g_t = 1/|\mathcal{T}|`. With ``top_k`` set, the
    Mixture of Tokenization (MoT) router scores the tokenizations per node from
    :math:`\mathbf{X}_L`, keeps the ``top_k`` best and normalises their scores with a softmax
    (sparse top-k gating as in mixture-of-experts layers); the others get weight 0. *Choices* (see
    :class:`gnnlab.models.GSMPlusPlus`): one encoder shared by the tokenizations, the gating form,
    no load-balancing loss.

    Args:
        dim (int): Node feature width.
        conv (Module, optional): Local message-passing layer ``dim → dim`` following the layer contract
            (:mod:`gnnlab.nn.conv.base`): ``conv(x, graph[, edge_attr]) -> (x, edge_attr)``.
        encoder (HybridSequenceEncoder): The global encoder.
        tokenizations (Sequence[str], optional): Tokenizations read. (default: ``('hierarchical',)``)
        num_levels (int, optional): Levels ``L`` of the HAC tree (size of the level embedding).
            (default: :obj:`8`)
        num_hops (int, optional): ``K`` of the ``'hop'`` tokenization. (default: :obj:`2`)
        top_k (int, optional): MoT router keeping ``top_k`` tokenizations per node; :obj:`None`
            averages them. (default: :obj:`None`)
        dropout (float, optional): Dropout on the branch outputs and in the FFN. (default: :obj:`0.0`)
        norm (str, optional): ``'batch'``, ``'layer'`` or ``'none'``. (default: :obj:`'batch'`)
        ffn_ratio (int, optional): FFN hidden width ÷ ``dim``. (default: :obj:`2`)
        local_residual (bool, optional): Add the input to the local branch (``False`` for a conv
            with its own residual, such as GatedGCN). (default: :obj:`True`)

    Shapes:
        - **input:** node features :math:`(N, D)`, the batch's :class:`~gnnlab.ops.Graph`, optional edge
          features, the batch's :class:`~gnnlab.nn.tokenizers.HACTokens`
        - **output:** ``(node features (N, D), edge features)``
    """

    def __init__(
        self,
        dim: int,
        conv: torch.nn.Module | None,
        encoder: HybridSequenceEncoder,
        tokenizations: Sequence[str] = ("hierarchical",),
        num_levels: int = 8,
        num_hops: int = 2,
        top_k: int | None = None,
        dropout: float = 0.0,
        norm: str = "batch",
        ffn_ratio: int = 2,
        local_residual: bool = True,
    ):
        super().__init__()
        name = type(self).__name__
        tokenizations = tuple(tokenizations)
        if not tokenizations or len(set(tokenizations)) != len(tokenizations):
            raise ValueError(f"{name}: tokenizations must be a non-empty list without repeats, "
                             f"got {list(tokenizations)}")
        unknown = [t for t in tokenizations if t not in TOKENIZATIONS]
        if unknown:
            raise ValueError(f"{name}: unknown tokenizations {unknown}; choose from {', '.join(TOKENIZATIONS)}")
        if top_k is not None and not 1 <= top_k <= len(tokenizations):
            raise ValueError(f"{name}: top_k must be between 1 and the number of tokenizations "
                             f"({len(tokenizations)}), got {top_k}")
        check_dropout(name, dropout)
        if num_levels < 1 or num_hops < 1:
            raise ValueError(f"{name}: num_levels and num_hops must be >= 1, got {num_levels}, {num_hops}")
        if encoder.dim != dim:
            raise ValueError(f"{name}: the encoder is {encoder.dim} wide, the layer {dim}")
        self.dim, self.tokenizations, self.top_k = dim, tokenizations, top_k
        self.num_levels, self.num_hops = num_levels, num_hops
        self.dropout, self.local_residual = dropout, local_residual
        self.conv, self.encoder = conv, encoder
        self.level_embedding = torch.nn.Embedding(num_levels + 1, dim) if "hierarchical" in tokenizations else None
        self.hop_embedding = torch.nn.Embedding(num_hops + 1, dim) if "hop" in tokenizations else None
        self.router = torch.nn.Linear(dim, len(tokenizations)) if top_k is not None else None
        self.norm_local = norm_layer(norm, dim) if conv is not None else None
        self.norm_global = norm_layer(norm, dim)
        self.ffn1 = torch.nn.Linear(dim, ffn_ratio * dim)
        self.ffn2 = torch.nn.Linear(ffn_ratio * dim, dim)
        self.norm_out = norm_layer(norm, dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise the local layer, the encoder, the embeddings, the router, the FFN and the norms."""
        reset(self.conv, self.encoder, self.level_embedding, self.hop_embedding, self.router, self.norm_local,
              self.norm_global, self.ffn1, self.ffn2, self.norm_out)

    def gates(self, x: Tensor) -> Tensor:
        """``(N, |T|)`` weight of every tokenization for every node (rows sum to 1)."""
        if self.router is None:
            return x.new_full((x.size(0), len(self.tokenizations)), 1.0 / len(self.tokenizations))
        logits = self.router(x)  # (N, |T|)
        top, index = logits.topk(self.top_k, dim=-1)  # (N, k)
        return torch.zeros_like(logits).scatter(-1, index, torch.softmax(top, dim=-1))

    def _read(self, kind: str, x: Tensor, edge_index: Tensor, tokens: HACTokens) -> Tensor:
        """Encode tokenization ``kind`` of the node features ``x`` ``(N, D)``; one row per node ``(N, D)``."""
        if kind == "node":
            seq, offsets, _ = node_sequence(x, tokens)
            return unpermute(self.encoder(seq, offsets), tokens.perm)
        if kind == "hierarchical":
            seq, offsets, level = hierarchical_sequences(x, tokens)
            seq = seq + self.level_embedding(level)
        else:
            seq, offsets, hop = hop_sequences(x, edge_index, self.num_hops)
            seq = seq + self.hop_embedding(hop)
        return self.encoder(seq, offsets).index_select(0, offsets[1:] - 1)  # each node's last token

    def forward(
        self,
        x: Tensor,
        graph,
        edge_attr: Tensor | None = None,
        tokens: HACTokens | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Apply the layer; returns ``(x_out, edge_attr_out)``."""
        name = type(self).__name__
        if x.dim() != 2 or x.size(1) != self.dim:
            raise ValueError(f"{name}: expected x of shape [N, {self.dim}], got {list(x.shape)}")
        if not isinstance(tokens, HACTokens):
            raise ValueError(f"{name}: needs the batch's HACTokens (gnnlab.nn.tokenizers.hac_tokens)")
        if tokens.perm.numel() != x.size(0):
            raise ValueError(f"{name}: the tokens describe {tokens.perm.numel()} nodes, x has {x.size(0)}")
        if "hierarchical" in self.tokenizations and tokens.num_levels > self.num_levels:
            raise ValueError(f"{name}: the HAC tree has {tokens.num_levels} levels but the layer embeds at most "
                             f"{self.num_levels} (set num_levels to the HACTree transform's num_levels)")
        h = x
        if self.conv is not None:
            h, edge_attr = call_conv(self.conv, x, graph, edge_attr)
            h = F.dropout(h, p=self.dropout, training=self.training)
            h = self.norm_local(x + h if self.local_residual else h)
        gates = self.gates(h)  # (N, |T|)
        mixed = None
        for i, kind in enumerate(self.tokenizations):
            out = gates[:, i : i + 1] * self._read(kind, h, graph.edge_index, tokens)  # (N, D)
            mixed = out if mixed is None else mixed + out
        h = self.norm_global(h + F.dropout(mixed, p=self.dropout, training=self.training))
        h = self.norm_out(h + feed_forward(h, self.ffn1, self.ffn2, self.dropout, self.training))
        return h, edge_attr

    def __repr__(self) -> str:
        moe = f", top_k={self.top_k}" if self.top_k is not None else ""
        return f"{type(self).__name__}({self.dim}, conv={self.conv!r}, tokenizations={list(self.tokenizations)}{moe})"


def gsmpp_layer(
    in_channels: int,
    out_channels: int,
    conv: Callable[[int, int], torch.nn.Module] | None = None,
    ssm: Callable[[int], torch.nn.Module] | None = None,
    attention: Callable[[int], torch.nn.Module] | None = None,
    num_ssm_layers: int = 1,
    encoder_dropout: float = 0.0,
    **kwargs,
) -> GSMPlusPlusLayer:
    """Layer factory for :func:`gnnlab.models.build_gsmpp`.

    Builds ``GSMPlusPlusLayer(dim, conv(dim, dim), HybridSequenceEncoder(dim, [ssm(dim) × num_ssm_layers],
    attention(dim)))``; Hydra passes ``conv``, ``ssm`` and ``attention`` as partials, so every layer
    gets its own modules. The remaining keyword arguments go to :class:`GSMPlusPlusLayer`.
    """
    if in_channels != out_channels:
        raise ValueError(f"gsmpp_layer: GSM++ layers keep their width, got in={in_channels}, out={out_channels}")
    if num_ssm_layers < 0 or (num_ssm_layers > 0 and ssm is None):
        raise ValueError(f"gsmpp_layer: num_ssm_layers={num_ssm_layers} needs an ssm factory and must be >= 0")
    dim = in_channels
    encoder = HybridSequenceEncoder(
        dim,
        [ssm(dim) for _ in range(num_ssm_layers)],
        attention(dim) if attention is not None else None,
        ffn_ratio=kwargs.get("ffn_ratio", 2),
        dropout=encoder_dropout,
    )
    return GSMPlusPlusLayer(dim, conv(dim, dim) if conv is not None else None, encoder, **kwargs)
