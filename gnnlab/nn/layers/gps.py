"""The GraphGPS layer: a local message-passing layer and a global mixer side by side, then an FFN."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from gnnlab.nn.layers.conv_layer import call_conv
from gnnlab.nn.mlp import check_dropout, feed_forward, norm_layer, reset

__all__ = ["GPSLayer", "gps_layer"]


class GPSLayer(torch.nn.Module):
    r"""One layer of `"Recipe for a General, Powerful, Scalable Graph Transformer"
    <https://arxiv.org/abs/2205.12454>`_ (Rampášek et al., NeurIPS 2022):

    .. math::
        \mathbf{X}_M &= \mathrm{Norm}\big(\mathbf{X} + \mathrm{Dropout}(\mathrm{MPNN}(\mathbf{X},
            \mathbf{E}, \mathbf{A}))\big), \qquad \mathbf{E}' \text{ from the MPNN} \\
        \mathbf{X}_T &= \mathrm{Norm}\big(\mathbf{X} + \mathrm{Dropout}(
            \mathrm{GlobalMixer}(\mathbf{X}))\big) \\
        \mathbf{X}' &= \mathrm{Norm}\big(\mathbf{X}_M + \mathbf{X}_T
            + \mathrm{FFN}(\mathbf{X}_M + \mathbf{X}_T)\big), \qquad
        \mathrm{FFN}(\mathbf{h}) = \mathbf{W}_2\,\mathrm{Dropout}(\mathrm{ReLU}(\mathbf{W}_1\mathbf{h}))

    with :math:`\mathbf{W}_1` of width ``ffn_ratio · dim``, and dropout after :math:`\mathbf{W}_2`.
    Either branch may be :obj:`None` (GPS without MPNN, or an MPNN with an FFN). The local layer
    follows the layer contract (:mod:`gnnlab.nn.conv.base`) and gets the edge features only if it
    reads them (the ones it returns are handed on). A local layer that already adds its own residual
    (GatedGCN with ``residual=True``, as in GraphGPS) is used with ``local_residual=False`` so the
    input is not added twice. The mixer is called as ``mixer(x, graph.batch)``, with
    ``edge_index=graph.edge_index`` added when its ``reads_edges`` is set (e.g.
    :class:`~gnnlab.nn.mixer.GraphMambaMixer`, which orders nodes by degree).

    Args:
        dim (int): Width of the node features (input and output).
        conv (Module, optional): Local message-passing layer ``dim → dim``.
        mixer (Module, optional): Global mixer ``(x, batch) -> x`` (see :mod:`gnnlab.nn.mixer`).
        dropout (float, optional): Dropout on the branch outputs and in the FFN. (default: :obj:`0.0`)
        norm (str, optional): ``'batch'``, ``'layer'`` or ``'none'``. (default: :obj:`'batch'`)
        ffn_ratio (int, optional): FFN hidden width ÷ ``dim``. (default: :obj:`2`)
        local_residual (bool, optional): Add the input to the local branch. (default: :obj:`True`)
        local_dropout (float, optional): Dropout on the local branch's output instead of ``dropout``;
            ``0.0`` for a local layer that applies its own dropout before its own residual (GraphGPS's
            GatedGCN). (default: :obj:`None`, i.e. ``dropout``)

    Shapes:
        - **input:** node features :math:`(N, D)`, the batch's :class:`~gnnlab.ops.Graph` (its
          ``batch`` tells the mixer which graph each node is in), optional edge features :math:`(E, D)`
        - **output:** ``(node features (N, D), edge features)``
    """

    def __init__(
        self,
        dim: int,
        conv: torch.nn.Module | None = None,
        mixer: torch.nn.Module | None = None,
        dropout: float = 0.0,
        norm: str = "batch",
        ffn_ratio: int = 2,
        local_residual: bool = True,
        local_dropout: float | None = None,
    ):
        super().__init__()
        if conv is None and mixer is None:
            raise ValueError("GPSLayer: give a local conv, a global mixer, or both")
        check_dropout("GPSLayer", dropout)
        local_dropout = dropout if local_dropout is None else local_dropout
        self.dim, self.dropout, self.local_residual = dim, dropout, local_residual
        self.local_dropout = check_dropout("GPSLayer", local_dropout, "local_dropout")
        self.conv, self.mixer = conv, mixer
        self.norm_local = norm_layer(norm, dim) if conv is not None else None
        self.norm_mixer = norm_layer(norm, dim) if mixer is not None else None
        self.ffn1 = torch.nn.Linear(dim, ffn_ratio * dim)
        self.ffn2 = torch.nn.Linear(ffn_ratio * dim, dim)
        self.norm_out = norm_layer(norm, dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise the branches, the FFN and the norms."""
        reset(self.conv, self.mixer, self.norm_local, self.norm_mixer, self.ffn1, self.ffn2, self.norm_out)

    def forward(self, x: Tensor, graph, edge_attr: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Apply the layer; returns ``(x_out, edge_attr_out)``."""
        if x.dim() != 2 or x.size(1) != self.dim:
            raise ValueError(f"GPSLayer: expected x of shape [N, {self.dim}], got {list(x.shape)}")
        branches = []
        if self.conv is not None:
            h_local, edge_attr = call_conv(self.conv, x, graph, edge_attr)
            h_local = F.dropout(h_local, p=self.local_dropout, training=self.training)
            if self.local_residual:
                h_local = x + h_local
            branches.append(self.norm_local(h_local))
        if self.mixer is not None:
            kwargs = {"edge_index": graph.edge_index} if getattr(self.mixer, "reads_edges", False) else {}
            h_global = F.dropout(self.mixer(x, graph.batch, **kwargs), p=self.dropout, training=self.training)
            branches.append(self.norm_mixer(x + h_global))
        h = branches[0] if len(branches) == 1 else branches[0] + branches[1]
        h = self.norm_out(h + feed_forward(h, self.ffn1, self.ffn2, self.dropout, self.training))
        return h, edge_attr

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.dim}, conv={self.conv!r}, mixer={self.mixer!r})"


def gps_layer(
    in_channels: int,
    out_channels: int,
    conv: Callable[[int, int], torch.nn.Module] | None = None,
    mixer: Callable[[int], torch.nn.Module] | None = None,
    **kwargs,
) -> GPSLayer:
    """Layer factory for :func:`gnnlab.models.build_gnn`: ``GPSLayer(dim, conv(dim, dim), mixer(dim))``.

    Hydra configs pass ``conv`` and ``mixer`` as partials (``_partial_: true``); every layer then
    gets its own conv and mixer. GPS keeps one width, so ``in_channels`` must equal ``out_channels``.
    """
    if in_channels != out_channels:
        raise ValueError(f"gps_layer: GPS layers keep their width, got in={in_channels}, out={out_channels}")
    return GPSLayer(
        in_channels,
        conv=conv(in_channels, in_channels) if conv is not None else None,
        mixer=mixer(in_channels) if mixer is not None else None,
        **kwargs,
    )
