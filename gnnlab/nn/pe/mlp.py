"""A normalised linear map or MLP over a stored per-node encoding (RWSE, FastRP, ...)."""
from __future__ import annotations

import torch
from torch import Tensor

from gnnlab.nn.mlp import mlp, reset
from gnnlab.nn.pe.base import nan_mask, read_attr
from gnnlab.ops import Graph

__all__ = ["MLPPEEncoder"]


class MLPPEEncoder(torch.nn.Module):
    r"""Encode a stored ``(N, in_channels)`` node encoding with an optional batch norm and an MLP.

    This is the RWSE encoder of `GraphGPS <https://arxiv.org/abs/2205.12454>`_ (Rampášek et al.,
    NeurIPS 2022), whose random-walk landing probabilities
    :math:`\mathbf{r}_i = [(\mathbf{P})_{ii}, (\mathbf{P}^2)_{ii}, \dots, (\mathbf{P}^k)_{ii}]`
    are batch-normalised and projected, and it serves any other per-node encoding with a fixed
    width, such as FastRP embeddings:

    .. math::
        \mathbf{p}_i = \mathrm{MLP}(\mathrm{BN}(\mathbf{r}_i))

    With ``num_layers=1`` the MLP is a single linear map. NaN entries (padding) are read as 0.

    Args:
        in_channels (int): Width of the stored encoding (``k`` random-walk steps, FastRP dimension).
        out_channels (int): Width of the output.
        attr (str, optional): Attribute holding the encoding. (default: :obj:`'rwse'`)
        num_layers (int, optional): Linear layers, ReLU between them. (default: :obj:`1`)
        hidden_channels (int, optional): Hidden width (default: ``2 * out_channels``).
        batch_norm (bool, optional): Batch-normalise the raw input. (default: :obj:`True`)
        transform (str, optional): Name of the transform that writes ``attr``, for error messages.

    Shapes:
        - **input:** ``data.{attr}``, :math:`(N, F_{in})`
        - **output:** :math:`(N, F_{out})`
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        attr: str = "rwse",
        num_layers: int = 1,
        hidden_channels: int | None = None,
        batch_norm: bool = True,
        transform: str = "RandomWalkSE",
    ):
        super().__init__()
        if in_channels < 1 or out_channels < 1 or num_layers < 1:
            raise ValueError(
                f"MLPPEEncoder: in_channels, out_channels and num_layers must be >= 1, got "
                f"{in_channels}, {out_channels}, {num_layers}"
            )
        self.in_channels, self.out_channels, self.attr, self.transform = in_channels, out_channels, attr, transform
        hidden = hidden_channels or 2 * out_channels
        self.norm = torch.nn.BatchNorm1d(in_channels) if batch_norm else None
        self.mlp = mlp([in_channels] + [hidden] * (num_layers - 1) + [out_channels])
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise the norm and the MLP."""
        reset(self.norm, *self.mlp)

    def forward(self, data, graph: Graph | None = None) -> Tensor:
        """Encode ``data.{attr}``; returns ``(N, out_channels)``."""
        value = read_attr(data, self.attr, type(self).__name__, self.transform)
        if value.dim() == 1:
            value = value.unsqueeze(-1)
        if value.size(-1) != self.in_channels:
            raise ValueError(
                f"{type(self).__name__}: data.{self.attr} has width {value.size(-1)}, expected {self.in_channels} "
                "(the encoder's in_channels and the transform's size differ?)"
            )
        value, _ = nan_mask(value)
        value = value.to(self.mlp[0].weight.dtype)  # stored float32; read in the model's dtype
        if self.norm is not None:
            value = self.norm(value)
        return self.mlp(value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, attr={self.attr!r})"
