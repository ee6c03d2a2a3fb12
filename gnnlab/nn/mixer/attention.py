"""Full multi-head self-attention among the nodes of each graph."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.utils import to_dense_batch

from gnnlab.nn.dropout import dropout
from gnnlab.nn.mixer.base import GlobalMixer, check_heads, check_mixer_inputs, init_projections, num_graphs
from gnnlab.nn.mlp import check_dropout


class MultiheadAttentionMixer(GlobalMixer):
    r"""Multi-head self-attention from `"Attention Is All You Need"
    <https://arxiv.org/abs/1706.03762>`_ (Vaswani et al., NeurIPS 2017), applied to the nodes of
    each graph as one fully connected set, as in the global attention of `"Recipe for a General,
    Powerful, Scalable Graph Transformer" <https://arxiv.org/abs/2205.12454>`_ (Rampášek et al.,
    NeurIPS 2022).

    For the nodes :math:`\mathbf{X}_g` of graph :math:`g` and each head :math:`k` of width
    :math:`d = \mathrm{dim} / H`:

    .. math::
        \mathbf{A}^k_g &= \operatorname{softmax}\Big(
            \frac{(\mathbf{X}_g \mathbf{W}^k_Q + \mathbf{b}^k_Q)
            (\mathbf{X}_g \mathbf{W}^k_K + \mathbf{b}^k_K)^{\top}}{\sqrt{d}} \Big) \\
        \mathbf{X}^{\prime}_g &= \Big( \mathop{\Big\Vert}_{k=1}^{H}
            \mathrm{Dropout}(\mathbf{A}^k_g)
            (\mathbf{X}_g \mathbf{W}^k_V + \mathbf{b}^k_V) \Big) \mathbf{W}_O + \mathbf{b}_O

    The softmax runs over the nodes of the same graph only. Graphs are padded to a dense
    ``(B, N_max, dim)`` tensor (:func:`torch_geometric.utils.to_dense_batch`) and attention runs
    through :func:`torch.nn.functional.scaled_dot_product_attention` with a mask that hides the
    padded keys; padded query rows are dropped when un-batching. Time and memory are
    :math:`O(B \, N_{\max}^2)` per head. The parameters are laid out as in
    :class:`torch.nn.MultiheadAttention` (``in_proj`` holds :math:`\mathbf{W}_Q, \mathbf{W}_K,
    \mathbf{W}_V` stacked, ``out_proj`` is :math:`\mathbf{W}_O`), and the results agree with it
    given the same weights and a ``key_padding_mask``. Dropout acts on the attention weights only,
    as in :class:`torch.nn.MultiheadAttention` (GraphGPS's ``attn_dropout``); dropout on the
    output belongs to the enclosing layer.

    Args:
        dim (int): Width of the node features.
        num_heads (int): Number of heads :math:`H`; must divide ``dim``.
        dropout (float, optional): Dropout probability on the attention weights during training.
            (default: :obj:`0.0`)
        bias (bool, optional): Learn the biases of the input and output projections.
            (default: :obj:`True`)

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, \mathrm{dim})`, graph ids
          :math:`(|\mathcal{V}|)` sorted ascending, or :obj:`None` for a single graph
        - **output:** node features :math:`(|\mathcal{V}|, \mathrm{dim})`
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
    ):
        super().__init__()
        name = type(self).__name__
        self.head_dim = check_heads(name, dim, num_heads)
        self.dim = dim
        self.num_heads = num_heads
        self.dropout = check_dropout(name, dropout)
        self.in_proj = torch.nn.Linear(dim, 3 * dim, bias=bias)
        self.out_proj = torch.nn.Linear(dim, dim, bias=bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise as :class:`torch.nn.MultiheadAttention`: Xavier-uniform input projection, zero biases."""
        init_projections(self.in_proj, self.out_proj)

    def forward(self, x: Tensor, batch: Tensor | None = None) -> Tensor:
        """Attend within each graph; returns ``(N, dim)`` in the row order of ``x``."""
        check_mixer_inputs(type(self).__name__, x, batch, self.dim)
        num_nodes, heads, head_dim = x.size(0), self.num_heads, self.head_dim
        if num_nodes == 0:
            return self.out_proj(x)
        # Project before padding, so no work is spent on the padded rows.
        qkv = self.in_proj(x)  # (N, 3D)
        if batch is None:
            dense, mask = qkv.unsqueeze(0), None  # (1, N, 3D)
        else:
            dense, mask = to_dense_batch(qkv, batch, batch_size=num_graphs(batch))  # (B, L, 3D), (B, L)
        size, length = dense.shape[:2]
        q, k, v = dense.view(size, length, 3, heads, head_dim).permute(2, 0, 3, 1, 4)  # each (B, H, L, d)
        attn_mask = None
        if mask is not None:
            # A graph id without nodes would leave a query row with every key hidden; let such rows
            # see the (zero) padding instead, so nothing turns into NaN. They are dropped below.
            empty = ~mask.any(dim=1, keepdim=True)  # (B, 1)
            attn_mask = (mask | empty)[:, None, None, :]  # (B, 1, 1, L), True = attend
        dropout_p = self.dropout if self.training else 0.0
        if dropout_p > 0.0 and q.device.type == "cpu":
            # torch's CPU attention draws its dropout mask one Bernoulli sample per weight (a fifth of a
            # GPS epoch on PATTERN); the same attention with gnnlab's cheaper CPU mask.
            scores = (q @ k.transpose(-2, -1)) * head_dim**-0.5
            if attn_mask is not None:
                scores = scores.masked_fill(~attn_mask, float("-inf"))
            out = dropout(torch.softmax(scores, dim=-1), dropout_p) @ v
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p)  # (B, H, L, d)
        out = out.transpose(1, 2).reshape(size, length, self.dim)  # (B, L, D)
        out = out.reshape(num_nodes, self.dim) if mask is None else out[mask]  # (N, D)
        return self.out_proj(out)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.dim}, num_heads={self.num_heads})"
