"""Input encoders: map raw node/edge features (floats or integer tokens) to the hidden width."""
from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch
from torch import Tensor


class LinearEncoder(torch.nn.Module):
    r"""Linear projection of float features: :math:`\mathbf{h} = \mathbf{x}\mathbf{W} + \mathbf{b}`.

    Args:
        in_channels (int): Width of the raw features.
        out_channels (int): Hidden width.
        bias (bool, optional): Learn an additive bias. (default: :obj:`True`)

    Shapes:
        - **input:** :math:`(N, F_{in})` (a 1-D input is read as one feature per row)
        - **output:** :math:`(N, F_{out})`
    """

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.lin = torch.nn.Linear(in_channels, out_channels, bias=bias)

    def reset_parameters(self) -> None:
        """Re-initialise the projection."""
        self.lin.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        """Project ``x``; integer inputs are cast to the weight's dtype."""
        if x.dim() == 1:
            x = x.unsqueeze(-1)
        if x.size(-1) != self.in_channels:
            raise ValueError(
                f"LinearEncoder expects {self.in_channels} input features, got {x.size(-1)} "
                f"(input shape {list(x.shape)})"
            )
        return self.lin(x.to(self.lin.weight.dtype))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels})"


class EmbeddingEncoder(torch.nn.Module):
    r"""Embedding of integer tokens (atom types, SBM node labels, bond types).

    Args:
        num_embeddings (int): Number of distinct tokens; valid tokens are ``0 .. num_embeddings-1``.
        out_channels (int): Hidden width.

    Shapes:
        - **input:** :math:`(N,)` or :math:`(N, 1)` integer tokens
        - **output:** :math:`(N, F_{out})`
    """

    def __init__(self, num_embeddings: int, out_channels: int):
        super().__init__()
        self.num_embeddings = num_embeddings
        self.out_channels = out_channels
        self.emb = torch.nn.Embedding(num_embeddings, out_channels)

    def reset_parameters(self) -> None:
        """Re-initialise the table."""
        self.emb.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        """Look up the tokens ``x``."""
        if x.dim() == 2 and x.size(-1) == 1:
            x = x.squeeze(-1)
        if x.dim() != 1:
            raise ValueError(f"EmbeddingEncoder expects tokens of shape [N] or [N, 1], got {list(x.shape)}")
        if x.is_floating_point():
            raise ValueError(f"EmbeddingEncoder expects integer tokens, got dtype {x.dtype}")
        if x.numel() and (int(x.min()) < 0 or int(x.max()) >= self.num_embeddings):
            raise ValueError(
                f"EmbeddingEncoder: token {int(x.max()) if int(x.max()) >= self.num_embeddings else int(x.min())} "
                f"outside [0, {self.num_embeddings}); raise num_embeddings in the data config"
            )
        return self.emb(x)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.num_embeddings}, {self.out_channels})"


class ConstantEncoder(torch.nn.Module):
    """One learned vector for every row: for edges (or nodes) that carry no features.

    GatedGCN needs edge features; Benchmarking-GNNs gives featureless graphs a constant edge input.

    Args:
        out_channels (int): Hidden width.
    """

    def __init__(self, out_channels: int):
        super().__init__()
        self.out_channels = out_channels
        self.weight = torch.nn.Parameter(torch.empty(out_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise the vector."""
        torch.nn.init.normal_(self.weight)

    def forward(self, x: Tensor) -> Tensor:
        """Return ``[x.size(0), out_channels]`` copies of the learned vector."""
        return self.weight.expand(x.size(0), -1)


class MultiEmbeddingEncoder(torch.nn.Module):
    r"""Sum of one embedding per column of integer features (OGB's ``AtomEncoder``/``BondEncoder``).

    .. math::
        \mathbf{h}_i = \sum_{c=1}^{C} \mathbf{E}_c[x_{i,c}]

    For OGB-featurised molecules (Peptides, ogbg-molhiv, PCQM) the column vocabularies are
    ``ogb.utils.features.get_atom_feature_dims()`` (9 atom columns) and ``get_bond_feature_dims()``
    (3 bond columns).

    Args:
        num_embeddings (list[int]): Vocabulary size of each column; column ``c`` accepts tokens
            ``0 .. num_embeddings[c]-1``.
        out_channels (int): Hidden width.

    Shapes:
        - **input:** :math:`(N, C)` integer tokens (a 1-D input is read as one column, when :math:`C = 1`)
        - **output:** :math:`(N, F_{out})`
    """

    def __init__(self, num_embeddings: Sequence[int], out_channels: int):
        super().__init__()
        if isinstance(num_embeddings, (str, bytes)) or not isinstance(num_embeddings, Sequence) or not num_embeddings:
            raise ValueError(
                f"MultiEmbeddingEncoder: num_embeddings must be a non-empty list of vocabulary sizes, "
                f"got {num_embeddings!r}"
            )
        sizes = []
        for c, n in enumerate(num_embeddings):
            if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
                raise ValueError(f"MultiEmbeddingEncoder: num_embeddings[{c}] must be an integer >= 1, got {n!r}")
            sizes.append(int(n))
        if isinstance(out_channels, bool) or not isinstance(out_channels, numbers.Integral) or out_channels < 1:
            raise ValueError(f"MultiEmbeddingEncoder: out_channels must be an integer >= 1, got {out_channels!r}")
        self.num_embeddings = sizes
        self.out_channels = int(out_channels)
        self.embs = torch.nn.ModuleList(torch.nn.Embedding(n, self.out_channels) for n in sizes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise every table with Xavier-uniform weights (as OGB's encoders do).

        Summing ``C`` unit-variance tables would give the encoded features a variance of ``C``; the
        Xavier bound keeps the sum of the ~10 columns at a moderate scale.
        """
        for emb in self.embs:
            torch.nn.init.xavier_uniform_(emb.weight)

    def forward(self, x: Tensor) -> Tensor:
        """Sum the embeddings of the columns of ``x``."""
        num_columns = len(self.embs)
        if x.dim() == 1 and num_columns == 1:
            x = x.unsqueeze(-1)
        if x.dim() != 2 or x.size(-1) != num_columns:
            raise ValueError(
                f"MultiEmbeddingEncoder expects tokens of shape [N, {num_columns}], got {list(x.shape)}"
            )
        if x.is_floating_point() or x.dtype == torch.bool:
            raise ValueError(f"MultiEmbeddingEncoder expects integer tokens, got dtype {x.dtype}")
        if x.size(0):
            low, high = x.min(0).values.tolist(), x.max(0).values.tolist()
            for c, (lo, hi, n) in enumerate(zip(low, high, self.num_embeddings)):
                if lo < 0 or hi >= n:
                    raise ValueError(
                        f"MultiEmbeddingEncoder: column {c} has token {lo if lo < 0 else hi} outside [0, {n}); "
                        "raise num_embeddings in the data config"
                    )
        out = self.embs[0](x[:, 0])  # (N, D)
        for c in range(1, num_columns):
            out = out + self.embs[c](x[:, c])
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.num_embeddings}, {self.out_channels})"
