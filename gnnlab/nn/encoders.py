"""Input encoders: map raw node/edge features (floats or integer tokens) to the hidden width."""
from __future__ import annotations

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
