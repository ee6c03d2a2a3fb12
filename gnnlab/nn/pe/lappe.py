r"""Encoders of Laplacian eigenvector positional encodings (LapPE), one module per architecture.

Each reads ``data.{attr}_vec`` and ``data.{attr}_val`` ``(N, k)`` and returns ``(N, out_channels)``. Node
:math:`i` of a graph with eigenpairs :math:`(\lambda_j, \mathbf{v}_j)_{j=1..k}` has the tokens
:math:`\mathbf{t}_{ij} = (v_{j,i}, \lambda_j)` (:math:`v_{j,i}` alone with ``use_eigvals=False``). The NaN
padding of a graph with fewer than ``k`` eigenpairs is masked out; in training mode every eigenvector of
every graph gets a random sign (:func:`~gnnlab.nn.pe.base.random_sign_flip`), eval mode keeps the stored
ones. Common args: ``k`` (eigenpairs the transform stored), ``out_channels``, ``attr`` (prefix of the
attributes, default ``'lappe'``), ``sign_flip`` and ``use_eigvals`` (default ``True``).
"""
from __future__ import annotations

import torch
from torch import Tensor

from gnnlab.nn.mlp import mlp, reset
from gnnlab.nn.pe.base import graph_index, random_sign_flip, read_eigenpairs
from gnnlab.ops import Graph

__all__ = ["LapPEBase", "LapPELinear", "LapPEDeepSet", "LapPETransformer"]


class LapPEBase(torch.nn.Module):
    """The common args, eigenpairs (sign-flipped in training) and tokens; a subclass builds its modules,
    calls :meth:`reset_parameters` and defines ``forward(data, graph) -> (N, out_channels)``."""

    def __init__(self, k: int, out_channels: int, attr: str, sign_flip: bool, use_eigvals: bool):
        super().__init__()
        if k < 1 or out_channels < 1:
            raise ValueError(f"{type(self).__name__}: k and out_channels must be >= 1, got {k}, {out_channels}")
        self.k, self.out_channels, self.attr = k, out_channels, attr
        self.sign_flip, self.use_eigvals, self.token_width = sign_flip, use_eigvals, 2 if use_eigvals else 1

    def reset_parameters(self) -> None:
        """Re-initialise every submodule that has parameters."""
        reset(*(module for module in self.modules() if module is not self))

    def eigenpairs(self, data) -> tuple[Tensor, Tensor, Tensor]:
        """``(vec, val, valid)``, each ``(N, k)``, padding zeroed and masked in ``valid``."""
        vec, val, valid = read_eigenpairs(data, self.attr, self.k, type(self).__name__)
        if self.sign_flip and self.training:
            vec = random_sign_flip(vec, graph_index(data, vec.size(0), vec.device))
        return vec, val, valid

    def tokens(self, data) -> tuple[Tensor, Tensor]:
        """``(tokens (N, k, token_width), valid (N, k))``."""
        vec, val, valid = self.eigenpairs(data)
        return (torch.stack([vec, val], dim=-1) if self.use_eigvals else vec.unsqueeze(-1)), valid

    def __repr__(self) -> str:
        return f"{type(self).__name__}(k={self.k}, {self.out_channels}, attr={self.attr!r})"


class LapPELinear(LapPEBase):
    r"""The linear LapPE of `"Benchmarking Graph Neural Networks" <https://arxiv.org/abs/2003.00982>`_,
    :math:`\mathbf{p}_i = \mathbf{W}[v_{1,i}, \dots, v_{k,i}, \lambda_1, \dots, \lambda_k] + \mathbf{b}`
    (padding reads as 0). Args: the common ones (module docstring)."""

    def __init__(self, k: int, out_channels: int, attr: str = "lappe", *, sign_flip: bool = True,
                 use_eigvals: bool = True):
        super().__init__(k, out_channels, attr, sign_flip, use_eigvals)
        self.lin = torch.nn.Linear(self.token_width * k, out_channels)
        self.reset_parameters()

    def forward(self, data, graph: Graph | None = None) -> Tensor:
        vec, val, _ = self.eigenpairs(data)
        return self.lin(torch.cat([vec, val], dim=-1) if self.use_eigvals else vec)  # (N, 2k) -> (N, out)


class LapPEDeepSet(LapPEBase):
    r"""The DeepSet LapPE of GraphGPS (`Rampášek et al., NeurIPS 2022 <https://arxiv.org/abs/2205.12454>`_),
    :math:`\mathbf{p}_i = \rho\big(\sum_{j} \phi(\mathbf{t}_{ij})\big)` over the real tokens. :math:`\phi`
    has ``num_layers`` (default 2) linear maps ``token → hidden_channels → … → out`` with a ReLU after every
    one (the last included), so the sum runs over nonlinear token features; :math:`\rho` has ``post_layers``
    (default 0: identity), each followed by a ReLU. ``hidden_channels`` defaults to ``2 * out_channels``."""

    def __init__(self, k: int, out_channels: int, attr: str = "lappe", *, hidden_channels: int | None = None,
                 num_layers: int = 2, post_layers: int = 0, sign_flip: bool = True, use_eigvals: bool = True):
        super().__init__(k, out_channels, attr, sign_flip, use_eigvals)
        if num_layers < 1 or post_layers < 0:
            raise ValueError(f"LapPEDeepSet: need num_layers >= 1, post_layers >= 0, got {num_layers}, {post_layers}")
        hidden = hidden_channels or 2 * out_channels
        self.phi = torch.nn.Sequential(mlp([self.token_width] + [hidden] * (num_layers - 1) + [out_channels]),
                                       torch.nn.ReLU())
        self.rho = (torch.nn.Sequential(mlp([out_channels] * (post_layers + 1)), torch.nn.ReLU())
                    if post_layers else torch.nn.Identity())
        self.reset_parameters()

    def forward(self, data, graph: Graph | None = None) -> Tensor:
        tokens, valid = self.tokens(data)  # (N, k, 2)
        tokens = self.phi(tokens) * valid.unsqueeze(-1)  # (N, k, out); padded tokens contribute nothing
        return self.rho(tokens.sum(dim=1))


class LapPETransformer(LapPEBase):
    r"""The Transformer LapPE of SAN (`Kreuzer et al., NeurIPS 2021 <https://arxiv.org/abs/2106.03893>`_)
    and GraphGPS, :math:`\mathbf{p}_i = \rho\big(\sum_{j} \mathrm{Transformer}(\phi_0(\mathbf{t}_{i1}), \dots,
    \phi_0(\mathbf{t}_{ik}))_j\big)` with linear :math:`\phi_0, \rho`; padded tokens are no keys and are left
    out of the sum. ``hidden_channels`` (token width, default ``2 * out_channels``), ``num_layers`` (default
    2), ``num_heads`` (default 4)."""

    def __init__(self, k: int, out_channels: int, attr: str = "lappe", *, hidden_channels: int | None = None,
                 num_layers: int = 2, num_heads: int = 4, sign_flip: bool = True, use_eigvals: bool = True):
        super().__init__(k, out_channels, attr, sign_flip, use_eigvals)
        hidden = hidden_channels or 2 * out_channels
        if hidden % num_heads:
            raise ValueError(f"LapPETransformer: hidden_channels {hidden} not divisible by num_heads {num_heads}")
        self.phi = torch.nn.Linear(self.token_width, hidden)
        layer = torch.nn.TransformerEncoderLayer(hidden, num_heads, 2 * hidden, dropout=0.0, batch_first=True)
        self.transformer = torch.nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.rho = torch.nn.Linear(hidden, out_channels)
        self.reset_parameters()

    def forward(self, data, graph: Graph | None = None) -> Tensor:
        tokens, valid = self.tokens(data)  # (N, k, 2)
        # A node with only padding (a one-node graph) keeps one key, for a finite softmax; masked below.
        pad = ~valid
        pad[:, 0] = pad[:, 0] & ~pad.all(dim=1)
        tokens = self.transformer(self.phi(tokens), src_key_padding_mask=pad) * valid.unsqueeze(-1)
        return self.rho(tokens.sum(dim=1))  # (N, hidden) -> (N, out)

