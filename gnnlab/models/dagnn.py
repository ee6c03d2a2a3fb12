"""Deep Adaptive Graph Neural Network (DAGNN) of Liu, Gao & Ji."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gnnlab.nn.conv.dagnn import DAGNNConv
from gnnlab.ops import Graph


class DAGNN(torch.nn.Module):
    r"""DAGNN from `"Towards Deeper Graph Neural Networks" <https://arxiv.org/abs/2007.09296>`_
    (Liu, Gao & Ji, KDD 2020): the feature transformation and the propagation are decoupled.

    .. code-block:: text

        Z = Linear(ReLU(Linear(dropout(x))))      # dropout before each linear map
        out = DAGNNConv(K)(Z, graph)               # K hops of Â, mixed by per-node retention scores

    The transformation is a two-layer MLP applied to each node alone, so the receptive field (``K``
    hops) grows without adding parameters or entangling it with the transformation; the output
    (logits, one per class) is what the paper's softmax reads.

    Args:
        in_channels: raw feature width.
        hidden_channels: hidden width of the MLP (the paper: 64).
        out_channels: number of classes.
        K: propagation steps (the paper: 10 for Cora and CiteSeer, 20 for PubMed).
        dropout: dropout on the input of each linear map (the paper: 0.8 Cora/PubMed, 0.5 CiteSeer).
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int, K: int = 10, dropout: float = 0.5):
        super().__init__()
        if not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f"DAGNN reads float node features of a fixed width; got in_channels={in_channels!r} "
                             "(a dataset of node tokens has none: use a model with a node encoder)")
        self.lin1 = torch.nn.Linear(in_channels, hidden_channels)
        self.lin2 = torch.nn.Linear(hidden_channels, out_channels)
        self.prop = DAGNNConv(out_channels, out_channels, K)
        self.dropout = dropout

    def reset_parameters(self) -> None:
        """Re-initialise every parameter (PyTorch's default ``Linear`` initialisation)."""
        for module in (self.lin1, self.lin2, self.prop):
            module.reset_parameters()

    def forward(self, data) -> Tensor:
        """Run on a PyG ``Data`` with ``x`` and ``edge_index``; returns ``(N, out_channels)`` logits."""
        x = data.x
        if not x.is_floating_point():
            x = x.to(self.lin1.weight.dtype)
        graph = Graph.from_edge_index(data.edge_index, x.size(0))
        x = F.dropout(x, p=self.dropout, training=self.training)
        x = F.relu(self.lin1(x))
        x = F.dropout(x, p=self.dropout, training=self.training)
        return self.prop(self.lin2(x), graph)[0]
