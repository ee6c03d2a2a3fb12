"""Encoders of Laplacian eigenvector positional encodings (LapPE)."""
from __future__ import annotations

import torch
from torch import Tensor

from gnnlab.nn.pe.base import graph_index, mlp, random_sign_flip, read_eigenpairs
from gnnlab.ops import Graph

__all__ = ["LapPEEncoder"]

_MODELS = ("linear", "deepset", "transformer")


class LapPEEncoder(torch.nn.Module):
    r"""Laplacian eigenvector positional encoding, as in `"Benchmarking Graph Neural Networks"
    <https://arxiv.org/abs/2003.00982>`_ (``model='linear'``) and in the GraphGPS / SAN encoders
    (`Rampášek et al., NeurIPS 2022 <https://arxiv.org/abs/2205.12454>`_; ``'deepset'``,
    ``'transformer'``).

    Node :math:`i` of a graph with eigenpairs :math:`(\lambda_j, \mathbf{v}_j)_{j=1..k}` has the
    tokens :math:`\mathbf{t}_{ij} = (v_{j,i}, \lambda_j)`.

    .. math::
        \text{linear:}\quad & \mathbf{p}_i = \mathbf{W}[v_{1,i}, \dots, v_{k,i}, \lambda_1, \dots,
            \lambda_k] + \mathbf{b} \\
        \text{deepset:}\quad & \mathbf{p}_i = \rho\Big(\sum_{j} \phi(\mathbf{t}_{ij})\Big),
            \quad \phi = \mathrm{ReLU} \circ \mathrm{MLP} \\
        \text{transformer:}\quad & \mathbf{p}_i = \rho\Big(\sum_{j}
            \mathrm{Transformer}(\phi_0(\mathbf{t}_{i1}), \dots, \phi_0(\mathbf{t}_{ik}))_j\Big)

    The DeepSet is GraphGPS's: :math:`\phi` has ``num_layers`` linear maps ``token → hidden → … →
    out`` with a ReLU after every one (the last included), so the sum runs over nonlinear token
    features; :math:`\rho` is an optional MLP of ``post_layers`` maps after the sum (identity by
    default).

    Padding (a graph with fewer than ``k`` eigenpairs is padded with NaN by the transform) is
    masked out: padded tokens are excluded from the sums and from the transformer's keys, and
    are zero in the linear model's input. In training mode every eigenvector of every graph gets
    a random sign (:func:`~gnnlab.nn.pe.base.random_sign_flip`); in eval mode the stored signs are
    used.

    Args:
        k (int): Number of eigenpairs the transform stored.
        out_channels (int): Width of the encoding.
        attr (str, optional): Prefix of the stored attributes ``{attr}_vec`` and ``{attr}_val``.
            (default: :obj:`'lappe'`)
        model (str, optional): ``'linear'``, ``'deepset'`` or ``'transformer'``.
            (default: :obj:`'deepset'`)
        hidden_channels (int, optional): Token width of the deepset/transformer models
            (default: ``2 * out_channels``).
        num_layers (int, optional): Linear maps in φ (deepset) or layers of the transformer.
            (default: :obj:`2`)
        post_layers (int, optional): Linear maps in ρ after the DeepSet sum (``0``: none).
            (default: :obj:`0`)
        num_heads (int, optional): Transformer heads. (default: :obj:`4`)
        sign_flip (bool, optional): Random sign flips in training mode. (default: :obj:`True`)
        use_eigvals (bool, optional): Feed the eigenvalues as well. (default: :obj:`True`)

    Shapes:
        - **input:** ``data.{attr}_vec`` and ``data.{attr}_val``, each :math:`(N, k)`
        - **output:** :math:`(N, F_{out})`
    """

    def __init__(
        self,
        k: int,
        out_channels: int,
        attr: str = "lappe",
        model: str = "deepset",
        hidden_channels: int | None = None,
        num_layers: int = 2,
        num_heads: int = 4,
        sign_flip: bool = True,
        use_eigvals: bool = True,
        post_layers: int = 0,
    ):
        super().__init__()
        if model not in _MODELS:
            raise ValueError(f"LapPEEncoder: model must be one of {', '.join(_MODELS)}, got {model!r}")
        if k < 1 or out_channels < 1:
            raise ValueError(f"LapPEEncoder: k and out_channels must be >= 1, got k={k}, out_channels={out_channels}")
        self.k, self.out_channels, self.attr, self.model = k, out_channels, attr, model
        self.sign_flip, self.use_eigvals = sign_flip, use_eigvals
        hidden = hidden_channels or 2 * out_channels
        token = 2 if use_eigvals else 1
        if model == "linear":
            self.lin = torch.nn.Linear(token * k, out_channels)
        elif model == "deepset":
            if num_layers < 1 or post_layers < 0:
                raise ValueError(f"LapPEEncoder: deepset needs num_layers >= 1 and post_layers >= 0, got "
                                 f"{num_layers} and {post_layers}")
            phi_widths = [token] + [hidden] * (num_layers - 1) + [out_channels]
            self.phi = torch.nn.Sequential(mlp(phi_widths), torch.nn.ReLU())
            self.rho = (torch.nn.Sequential(mlp([out_channels] * (post_layers + 1)), torch.nn.ReLU())
                        if post_layers else torch.nn.Identity())
        else:
            if hidden % num_heads:
                raise ValueError(f"LapPEEncoder: hidden_channels {hidden} not divisible by num_heads {num_heads}")
            self.phi = torch.nn.Linear(token, hidden)
            layer = torch.nn.TransformerEncoderLayer(
                hidden, num_heads, dim_feedforward=2 * hidden, dropout=0.0, batch_first=True
            )
            self.transformer = torch.nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
            self.rho = torch.nn.Linear(hidden, out_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise every linear map (and the transformer)."""
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def forward(self, data, graph: Graph | None = None) -> Tensor:
        """Encode ``data.{attr}_vec`` / ``data.{attr}_val``; returns ``(N, out_channels)``."""
        vec, val, valid = read_eigenpairs(data, self.attr, self.k, type(self).__name__)  # (N, k) each
        if self.sign_flip and self.training:
            vec = random_sign_flip(vec, graph_index(data, vec.size(0), vec.device))
        if self.model == "linear":
            feats = torch.cat([vec, val], dim=-1) if self.use_eigvals else vec  # (N, 2k)
            return self.lin(feats)
        tokens = torch.stack([vec, val], dim=-1) if self.use_eigvals else vec.unsqueeze(-1)  # (N, k, 2)
        tokens = self.phi(tokens)  # (N, k, H)
        if self.model == "transformer":
            # A node whose tokens are all padding (a graph with one node) keeps one key so the
            # softmax stays finite; its output is then zeroed by the mask below.
            pad = ~valid
            pad[:, 0] = pad[:, 0] & ~pad.all(dim=1)
            tokens = self.transformer(tokens, src_key_padding_mask=pad)
        tokens = tokens * valid.unsqueeze(-1)  # padded tokens contribute nothing
        return self.rho(tokens.sum(dim=1))  # (N, out)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(k={self.k}, {self.out_channels}, model={self.model!r}, attr={self.attr!r})"
