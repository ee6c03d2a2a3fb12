"""SignNet: a sign-invariant encoder of Laplacian eigenvectors."""
from __future__ import annotations

import torch
from torch import Tensor

from gnnlab.nn.mlp import mlp
from gnnlab.nn.pe.base import read_eigenpairs
from gnnlab.ops import Graph, aggregate, resolve_graph

__all__ = ["SignNetEncoder"]


class _ChannelGIN(torch.nn.Module):
    r"""A GIN layer applied to ``k`` independent channels at once: ``(N, k, C) -> (N, k, C')``.

    :math:`\mathbf{h}'_{i,\cdot j} = \mathrm{MLP}((1+\epsilon)\mathbf{h}_{i,j} + \sum_{u \to i} \mathbf{h}_{u,j})`,
    with one MLP shared by the channels; the neighbour sum runs on the flattened ``(N, k·C)``
    rows, so one fused aggregation serves every channel.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.mlp = mlp([in_channels, out_channels, out_channels])
        self.eps = torch.nn.Parameter(torch.zeros(()))

    def forward(self, h: Tensor, graph) -> Tensor:
        neigh = aggregate(h, graph)  # (N, k, C): trailing dims are flattened and restored
        return self.mlp((1 + self.eps) * h + neigh)


class SignNetEncoder(torch.nn.Module):
    r"""SignNet from `"Sign and Basis Invariant Networks for Spectral Graph Representation
    Learning" <https://arxiv.org/abs/2202.13013>`_ (Lim et al., ICLR 2023):

    .. math::
        \mathbf{p} = \rho\big([\phi(\mathbf{v}_j, \lambda_j) + \phi(-\mathbf{v}_j, \lambda_j)]_{j=1..k}\big)

    :math:`\phi` is a GIN over the graph run on each eigenvector separately (input per node
    :math:`(v_{j,i}, \lambda_j)`), so :math:`\phi(\mathbf{v}) + \phi(-\mathbf{v})` is invariant to
    the sign of :math:`\mathbf{v}`; :math:`\rho` is an MLP over the ``k`` concatenated outputs of
    each node. Padded eigenpairs (NaN) are zeroed after :math:`\phi`, so they contribute nothing.

    Args:
        k (int): Number of eigenpairs stored by the transform.
        out_channels (int): Width of the encoding.
        attr (str, optional): Prefix of ``{attr}_vec``/``{attr}_val``. (default: :obj:`'lappe'`)
        hidden_channels (int, optional): Width of :math:`\phi`. (default: :obj:`16`)
        phi_layers (int, optional): GIN layers of :math:`\phi`. (default: :obj:`3`)
        rho_layers (int, optional): Linear layers of :math:`\rho`. (default: :obj:`2`)
        use_eigvals (bool, optional): Feed :math:`\lambda_j` to :math:`\phi`. (default: :obj:`True`)

    Shapes:
        - **input:** ``data.{attr}_vec``, ``data.{attr}_val`` :math:`(N, k)`, ``data.edge_index``
        - **output:** :math:`(N, F_{out})`
    """

    def __init__(
        self,
        k: int,
        out_channels: int,
        attr: str = "lappe",
        hidden_channels: int = 16,
        phi_layers: int = 3,
        rho_layers: int = 2,
        use_eigvals: bool = True,
    ):
        super().__init__()
        if k < 1 or out_channels < 1 or phi_layers < 1 or rho_layers < 1:
            raise ValueError("SignNetEncoder: k, out_channels, phi_layers and rho_layers must be >= 1")
        self.k, self.out_channels, self.attr, self.use_eigvals = k, out_channels, attr, use_eigvals
        token = 2 if use_eigvals else 1
        widths = [token] + [hidden_channels] * phi_layers
        self.phi = torch.nn.ModuleList(_ChannelGIN(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.rho = mlp([k * hidden_channels] + [hidden_channels * 2] * (rho_layers - 1) + [out_channels])
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise φ and ρ."""
        for module in self.modules():
            if isinstance(module, torch.nn.Linear):
                module.reset_parameters()
            if isinstance(module, _ChannelGIN):
                torch.nn.init.zeros_(module.eps)

    def _phi(self, h: Tensor, graph) -> Tensor:
        for i, layer in enumerate(self.phi):
            h = layer(torch.relu(h) if i else h, graph)  # ReLU between the GIN layers
        return h

    def forward(self, data, graph: Graph | None = None) -> Tensor:
        """Encode the stored eigenpairs over the batch's ``graph`` (built from ``data.edge_index`` when not
        given); returns ``(N, out_channels)``."""
        vec, val, valid = read_eigenpairs(data, self.attr, self.k, type(self).__name__)  # (N, k) each
        graph = resolve_graph(type(self).__name__, data.edge_index, vec.size(0), graph)
        pos = torch.stack([vec, val], -1) if self.use_eigvals else vec.unsqueeze(-1)  # (N, k, 2)
        neg = torch.stack([-vec, val], -1) if self.use_eigvals else -vec.unsqueeze(-1)
        h = self._phi(pos, graph) + self._phi(neg, graph)  # (N, k, H), invariant to each sign
        h = h * valid.unsqueeze(-1)
        return self.rho(h.flatten(1))  # (N, k·H) -> (N, out)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(k={self.k}, {self.out_channels}, attr={self.attr!r})"
