"""The structure-agnostic baseline of the fair comparison of graph classifiers (Errica et al., ICLR 2020)."""
from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.nn import global_add_pool

from gnnlab.nn.mlp import reset


class MolecularFingerprint(torch.nn.Module):
    r"""The baseline for chemical data sets of `"A Fair Comparison of Graph Neural Networks for Graph
    Classification" <https://arxiv.org/abs/1912.09893>`_ (Errica, Podda, Bacciu, Micheli, ICLR 2020): the
    graph is read as the multiset of its node features, without its edges,

    .. math::
        \mathbf{y}_G = \mathrm{ReLU}\Big(\mathbf{W}_2 \, \mathrm{ReLU}\big(\mathbf{W}_1
            \sum_{v \in G} \mathbf{x}_v + \mathbf{b}_1\big) + \mathbf{b}_2\Big)

    (a molecular fingerprint when :math:`\mathbf{x}_v` one-hot encodes the atom type). The output ReLU is
    the authors' (their ``MolecularFingerprint``): the class scores fed to the cross entropy are
    non-negative. ``output_act=False`` drops it.

    Args:
        in_channels (int): Width of the node features.
        hidden_channels (int): Width of the hidden layer.
        out_channels (int): Number of classes.
        output_act (bool, optional): Apply the ReLU to the class scores. (default: :obj:`True`)

    Shapes:
        - **input:** a batch of graphs with node features ``x`` :math:`(|\mathcal{V}|, F_{in})` and ``batch``
        - **output:** :math:`(|\mathcal{G}|, F_{out})`
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int, output_act: bool = True):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.hidden = torch.nn.Linear(in_channels, hidden_channels)
        self.out = torch.nn.Linear(hidden_channels, out_channels)
        self.output_act = output_act
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise both linear maps."""
        reset(self.hidden, self.out)

    def forward(self, data) -> Tensor:
        """Class scores of every graph of the batch."""
        x = data.x
        if x is None or x.dim() != 2 or x.size(1) != self.in_channels:
            shape = None if x is None else list(x.shape)
            raise ValueError(f"MolecularFingerprint: node features must have shape [N, {self.in_channels}], got {shape}")
        batch = getattr(data, "batch", None)
        num_graphs = int(getattr(data, "num_graphs", 1) or 1)
        pooled = global_add_pool(x.to(self.hidden.weight.dtype), batch, size=num_graphs)
        out = self.out(torch.relu(self.hidden(pooled)))
        return torch.relu(out) if self.output_act else out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.hidden.out_features}, {self.out_channels})"
