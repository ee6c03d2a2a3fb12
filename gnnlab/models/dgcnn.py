"""DGCNN (Zhang et al.): graph convolutions, SortPooling and a 1-D convolutional classifier."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from gnnlab.errors import ConfigError
from gnnlab.models._inputs import FloatFeatureClassifier
from gnnlab.nn.conv.dgcnn import DGCNNConv
from gnnlab.nn.mlp import check_dropout
from gnnlab.ops import Graph


def sort_pool(x: Tensor, batch: Tensor, num_graphs: int, k: int) -> Tensor:
    r"""SortPooling of DGCNN: the ``k`` rows of each graph with the largest last channel, in descending order of
    it, zero rows where a graph has fewer than ``k`` nodes.

    As in the authors' code (and PyG's ``SortAggregation``) the nodes are ordered by the last channel alone;
    nodes whose last channels are equal keep their order in ``x``. A NaN sorts above every number.

    Args:
        x: node features ``(N, D)``.
        batch: graph of each node ``(N,)``, values in ``[0, num_graphs)``.
        num_graphs: number of graphs ``B``.
        k: rows kept per graph (``>= 1``).

    Returns:
        ``(B, k * D)``: each graph's ``k x D`` block, row-major.
    """
    if k < 1:
        raise ValueError(f"sort_pool: k must be >= 1, got {k}")
    if x.dim() != 2 or x.size(1) < 1 or batch.shape != (x.size(0),):
        raise ValueError(f"sort_pool: x must be (N, D >= 1) and batch (N,), got {list(x.shape)} and "
                         f"{list(batch.shape)}")
    num_nodes, width = x.shape
    order = torch.argsort(x[:, -1].detach(), descending=True, stable=True)
    order = order[torch.argsort(batch[order], stable=True)]  # grouped by graph, descending within each
    graph_of = batch[order]
    counts = torch.bincount(batch, minlength=num_graphs)
    rank = torch.arange(num_nodes, device=x.device) - (torch.cumsum(counts, 0) - counts)[graph_of]
    keep = rank < k
    out = x.new_zeros(num_graphs, k, width)
    out = out.index_put((graph_of[keep], rank[keep]), x[order[keep]])
    return out.view(num_graphs, k * width)


def sort_pool_k(k: int | float, node_count_deciles: Sequence[int] | None) -> int:
    """The ``k`` of SortPooling: an int as given, or for a fraction ``q`` in ``(0, 1)`` (a multiple of 0.1) the
    node count that a fraction ``q`` of the training graphs do not exceed (DGCNN's rule; ``node_count_deciles``
    is the data fact of that name, the 11 deciles of the training graphs' node counts)."""
    if isinstance(k, bool) or not isinstance(k, (int, float)):
        raise ValueError(f"DGCNN: k must be a node count or a fraction of the training graphs, got {k!r}")
    if isinstance(k, int) or (float(k).is_integer() and k >= 1):
        return int(k)
    if not 0.0 < k < 1.0 or abs(k * 10 - round(k * 10)) > 1e-9:
        raise ValueError(f"DGCNN: a fractional k must be one of 0.1, 0.2, ..., 0.9, got {k}")
    if node_count_deciles is None or len(node_count_deciles) != 11:
        raise ConfigError("DGCNN: a fractional k needs node_count_deciles (the data fact, 11 values), got "
                          f"{node_count_deciles!r}")
    return int(node_count_deciles[round(k * 10)])


class DGCNN(FloatFeatureClassifier):
    r"""DGCNN from `"An End-to-End Deep Learning Architecture for Graph Classification"
    <https://www.cse.wustl.edu/~muhan/papers/AAAI_2018_DGCNN.pdf>`_ (Zhang, Cui, Neumann, Chen, AAAI 2018), in
    the configuration of Errica et al.'s fair comparison (ICLR 2020):

    .. code-block:: text

        Z_t = tanh(DGCNNConv(Z_{t-1}))           t = 1..L (width D), then one more of width 1
        Z   = [Z_1, ..., Z_L, Z_{L+1}]           (N, L*D + 1)
        S   = SortPooling_k(Z)                   (B, k, L*D + 1): rows ordered by the last channel
        h   = ReLU(Conv1d(1 -> 16, kernel = stride = L*D + 1))(S)   one value per kept node
        h   = ReLU(Conv1d(16 -> 32, kernel 5))(MaxPool1d(2, 2)(h))
        out = Linear(Dropout(ReLU(Linear(flatten(h)))))

    The last convolution has one channel, the continuous "colour" SortPooling orders the nodes by.

    Args:
        in_channels (int): Width of the float node features.
        out_channels (int): Number of classes.
        k (int or float): Nodes kept per graph; a fraction ``q`` (0.1, ..., 0.9) means the node count that a
            fraction ``q`` of the training graphs do not exceed (Errica et al.'s grid: 0.6 and 0.9).
        hidden_channels (int, optional): Width ``D`` of the convolutions. (default: :obj:`32`)
        num_layers (int, optional): Number ``L`` of width-``D`` convolutions. (default: :obj:`3`)
        dense_channels (int, optional): Width of the hidden dense layer. (default: :obj:`128`)
        dropout (float, optional): Dropout before the output layer. (default: :obj:`0.5`)
        node_count_deciles (Sequence[int], optional): The training graphs' node-count deciles (the data fact
            ``node_count_deciles``), needed for a fractional ``k``.

    Shapes:
        - **input:** a batch of graphs with float node features ``x`` :math:`(|\mathcal{V}|, F_{in})`
        - **output:** :math:`(|\mathcal{G}|, F_{out})`
    """

    def __init__(self, in_channels: int, out_channels: int, k: int | float, hidden_channels: int = 32,
                 num_layers: int = 3, dense_channels: int = 128, dropout: float = 0.5,
                 node_count_deciles: Sequence[int] | None = None):
        super().__init__(in_channels, out_channels)
        if num_layers < 1:
            raise ValueError(f"DGCNN: num_layers must be >= 1, got {num_layers}")
        self.k = sort_pool_k(k, node_count_deciles)
        if self.k < 10:
            raise ValueError(f"DGCNN: k={self.k} nodes leave nothing for the width-5 convolution after the max "
                             "pooling; k must be >= 10")
        widths = [in_channels] + [hidden_channels] * num_layers + [1]
        self.convs = torch.nn.ModuleList(DGCNNConv(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.latent = sum(widths[1:])
        self.conv1d_1 = torch.nn.Conv1d(1, 16, self.latent, self.latent)
        self.conv1d_2 = torch.nn.Conv1d(16, 32, 5, 1)
        self.dense = torch.nn.Linear((self.k // 2 - 4) * 32, dense_channels)
        self.out = torch.nn.Linear(dense_channels, out_channels)
        self.dropout = check_dropout("DGCNN", dropout)

    def forward(self, data) -> Tensor:
        """Class scores of every graph of the batch."""
        x, batch, num_graphs = self.graph_batch(data)
        graph = Graph.from_data(data)
        zs = []
        for conv in self.convs:
            x = torch.tanh(conv(x, graph)[0])
            zs.append(x)
        h = sort_pool(torch.cat(zs, dim=-1), batch, num_graphs, self.k).unsqueeze(1)  # (B, 1, k * latent)
        h = F.max_pool1d(F.relu(self.conv1d_1(h)), 2, 2)  # (B, 16, k // 2)
        h = F.relu(self.conv1d_2(h)).flatten(1)  # (B, 32 * (k // 2 - 4))
        h = F.dropout(F.relu(self.dense(h)), p=self.dropout, training=self.training)
        return self.out(h)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, k={self.k}, "
                f"layers={len(self.convs) - 1})")
