"""ECC (Simonovsky & Komodakis): edge-conditioned convolutions on a pyramid of Kron-reduced graphs."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.nn import global_mean_pool

from gnnlab.models._inputs import FloatFeatureClassifier
from gnnlab.nn.conv.ecc import ECConv
from gnnlab.nn.mlp import check_dropout
from gnnlab.ops import Graph


def level_graph(data, level: int, attr: str = "kron") -> tuple[Tensor, Tensor, int]:
    """``(edge_index, edge_weight, num_nodes)`` of pyramid level ``level`` (:class:`gnnlab.transforms.KronReduction`)
    for a graph or a PyG batch of them: each graph's local ids offset by the level's node counts of the graphs
    before it."""
    sizes = getattr(data, f"{attr}_sizes{level}", None)
    if not isinstance(sizes, Tensor):
        raise ValueError(f"ECC: the graph has no {attr}_sizes{level}; precompute the pyramid with "
                         f"gnnlab.transforms.KronReduction(num_levels >= {level}) (model=ecc selects it)")
    nodes, edges = sizes[:, 0], sizes[:, 1]
    offsets = torch.cumsum(nodes, 0) - nodes
    local = data[f"{attr}_edges{level}"].t()  # (2, E)
    owner = torch.repeat_interleave(torch.arange(nodes.numel(), device=local.device), edges, output_size=local.size(1))
    return local + offsets[owner], data[f"{attr}_weight{level}"], int(nodes.sum())


class ECC(FloatFeatureClassifier):
    r"""ECC from `"Dynamic Edge-Conditioned Filters in Convolutional Neural Networks on Graphs"
    <https://arxiv.org/abs/1704.02901>`_ (Simonovsky & Komodakis, CVPR 2017), in the configuration of Errica
    et al.'s fair comparison (ICLR 2020), on the graph pyramid of :class:`gnnlab.transforms.KronReduction`:

    .. code-block:: text

        level 0: the graph, every edge weight 1; level k: the Kron-reduced Laplacian's entries as weighted edges
        for k = 0 .. L-1:
            3 x [ECConv(edge weight) -> ReLU -> BatchNorm -> Dropout]    on level k
            keep the nodes of level k + 1                                  (pooling by selection)
        ECConv -> ReLU -> BatchNorm -> Dropout                             on level L
        out = Linear(Dropout(ReLU(Linear(mean over the nodes))))

    Every :class:`~gnnlab.nn.conv.ECConv` conditions its filter on the scalar edge weight (a network
    ``1 -> 16 -> F_in * F_out``).

    Args:
        in_channels (int): Width of the float node features.
        out_channels (int): Number of classes.
        hidden_channels (int, optional): Width of every convolution. (default: :obj:`64`)
        num_levels (int, optional): Pooling levels ``L``; the pyramid must have at least as many.
            (default: :obj:`2`)
        dropout (float, optional): Dropout after every convolution. (default: :obj:`0.05`)
        final_dropout (float, optional): Dropout in the classifier. (default: :obj:`0.1`)
        attr (str, optional): The pyramid's attribute prefix. (default: :obj:`'kron'`)

    Shapes:
        - **input:** a batch of graphs with float node features ``x`` :math:`(|\mathcal{V}|, F_{in})` and the
          pyramid's attributes
        - **output:** :math:`(|\mathcal{G}|, F_{out})`
    """

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int = 64, num_levels: int = 2,
                 dropout: float = 0.05, final_dropout: float = 0.1, attr: str = "kron"):
        super().__init__(in_channels, out_channels)
        if num_levels < 1:
            raise ValueError(f"ECC: num_levels must be >= 1, got {num_levels}")
        self.num_levels, self.attr = num_levels, attr
        self.dropout = check_dropout("ECC", dropout)
        self.final_dropout = check_dropout("ECC", final_dropout, "final_dropout")
        h = hidden_channels
        self.convs = torch.nn.ModuleList(
            ECConv(in_channels if level == 0 and k == 0 else h, h) for level in range(num_levels) for k in range(3))
        self.convs.append(ECConv(h, h))  # on the last level
        self.norms = torch.nn.ModuleList(torch.nn.BatchNorm1d(h) for _ in self.convs)
        self.fc1, self.fc2 = torch.nn.Linear(h, h), torch.nn.Linear(h, out_channels)

    def forward(self, data) -> Tensor:
        """Class scores of every graph of the batch."""
        x, batch, num_graphs = self.graph_batch(data)
        graph = Graph.from_data(data)
        weight = x.new_ones(graph.num_edges)
        convs = iter(zip(self.convs, self.norms))
        for level in range(self.num_levels + 1):
            if level > 0:
                edge_index, weight, num_nodes = level_graph(data, level, self.attr)
                graph = Graph.from_edge_index(edge_index, num_nodes)
                keep = data[f"{self.attr}_keep{level}"]
                x, batch = x[keep], batch[keep]
            for conv, norm in [next(convs) for _ in range(3 if level < self.num_levels else 1)]:
                x = F.relu(conv(x, graph, weight.to(x.dtype))[0])
                x = F.dropout(norm(x), p=self.dropout, training=self.training)
        h = F.relu(self.fc1(global_mean_pool(x, batch, size=num_graphs)))
        return self.fc2(F.dropout(h, p=self.final_dropout, training=self.training))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, levels={self.num_levels}, "
                f"hidden={self.fc1.in_features})")
