"""Heads that turn node or pooled graph representations into outputs: MLP readouts, and readouts over every
depth (GIN's sum of per-depth linear maps, a concatenation through an MLP)."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


class _ReLUMLP(torch.nn.Module):
    """Hidden maps ``widths[0] → … → widths[-1]`` (ReLU after each), then ``widths[-1] → out``."""

    def __init__(self, widths: list[int], out_channels: int):
        super().__init__()
        self.lins = torch.nn.ModuleList(torch.nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.out = torch.nn.Linear(widths[-1], out_channels)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the MLP row-wise."""
        for lin in self.lins:
            x = F.relu(lin(x))
        return self.out(x)


class MLPReadout(_ReLUMLP):
    r"""The Benchmarking-GNNs readout MLP: widths halve at each hidden layer.

    ``in → in/2 → in/4 → … → out`` with ReLU between layers (``num_hidden`` hidden layers).

    Args:
        in_channels (int): Input width.
        out_channels (int): Output width (classes or targets).
        num_hidden (int, optional): Number of hidden layers. (default: :obj:`2`)
    """

    def __init__(self, in_channels: int, out_channels: int, num_hidden: int = 2):
        super().__init__([max(in_channels // 2**k, 1) for k in range(num_hidden + 1)], out_channels)


class MLPHead(_ReLUMLP):
    r"""A constant-width MLP head (GraphGym's ``layers_post_mp``, as GraphGPS uses it).

    ``in → hidden → … → hidden → out`` with ReLU after every hidden layer: ``num_layers`` linear
    maps in all, no normalisation or dropout.

    Args:
        in_channels (int): Input width.
        out_channels (int): Output width.
        num_layers (int, optional): Number of linear maps (>= 1). (default: :obj:`3`)
        hidden_channels (int, optional): Hidden width. (default: ``in_channels``)
    """

    def __init__(self, in_channels: int, out_channels: int, num_layers: int = 3, hidden_channels: int | None = None):
        if num_layers < 1:
            raise ValueError(f"MLPHead: num_layers must be >= 1, got {num_layers}")
        hidden = hidden_channels or in_channels
        super().__init__([in_channels] + [hidden] * (num_layers - 1), out_channels)


class LayerSumReadout(torch.nn.Module):
    r"""GIN's readout over every depth: one linear map per layer output, summed.

    .. code-block:: text

        out = Σ_k lin_k(h_k)      # h_0 = encoded input, h_k = output of layer k (pooled for graph tasks)

    This is Xu et al.'s graph readout (a linear map of the concatenation of the per-depth readouts,
    written as a sum of per-depth maps), as Benchmarking-GNNs' GIN implements it for graph and node
    tasks.

    Args:
        widths (Sequence[int]): Width of each ``h_k`` (input encoding first).
        out_channels (int): Output width.
    """

    def __init__(self, widths: Sequence[int], out_channels: int):
        super().__init__()
        if len(widths) < 1:
            raise ValueError("LayerSumReadout: needs at least one width")
        self.lins = torch.nn.ModuleList(torch.nn.Linear(w, out_channels) for w in widths)

    def forward(self, hs: Sequence[Tensor]) -> Tensor:
        """Sum of ``lin_k(hs[k])`` over the depths."""
        if len(hs) != len(self.lins):
            raise ValueError(f"LayerSumReadout: got {len(hs)} representations for {len(self.lins)} linear maps")
        out = self.lins[0](hs[0])
        for lin, h in zip(self.lins[1:], hs[1:]):
            out = out + lin(h)
        return out


class ConcatReadout(torch.nn.Module):
    r"""A readout over every depth by concatenation (jumping knowledge), then a two-layer MLP:

    .. code-block:: text

        out = Linear(ReLU(Linear([h_1, …, h_L])))    # h_0 (the encoded input) joins only with include_input

    For graph tasks each ``h_k`` is pooled first; a max or sum pooling of the concatenation is the
    concatenation of the poolings. This is the GraphSAGE readout of Errica et al.'s fair comparison
    (ICLR 2020): every layer's output, max-pooled, through ``Linear -> ReLU -> Linear``.

    Args:
        widths (Sequence[int]): Width of each ``h_k`` (input encoding first), as :func:`build_gnn` passes them.
        out_channels (int): Output width.
        hidden_channels (int, optional): Width of the hidden layer. (default: the width of ``h_L``)
        include_input (bool, optional): Concatenate ``h_0`` too. (default: :obj:`False`)
    """

    def __init__(self, widths: Sequence[int], out_channels: int, hidden_channels: int | None = None,
                 include_input: bool = False):
        super().__init__()
        if len(widths) < 2:
            raise ValueError("ConcatReadout: needs the input width and at least one layer's")
        self.first = 0 if include_input else 1
        self.num_inputs = len(widths) - self.first
        hidden = hidden_channels or widths[-1]
        self.hidden = torch.nn.Linear(sum(widths[self.first:]), hidden)
        self.out = torch.nn.Linear(hidden, out_channels)

    def forward(self, hs: Sequence[Tensor]) -> Tensor:
        """``out`` of the concatenated ``hs`` (the list ``[h_0, …, h_L]``)."""
        if len(hs) != self.num_inputs + self.first:
            raise ValueError(f"ConcatReadout: got {len(hs)} representations, built for "
                             f"{self.num_inputs + self.first}")
        return self.out(F.relu(self.hidden(torch.cat(list(hs[self.first:]), dim=-1))))
