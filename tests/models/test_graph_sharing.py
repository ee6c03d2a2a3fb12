"""A model builds the batch's graph structure once per forward pass and hands that one object to every
PE encoder and every layer (no module-level cache in between)."""
from __future__ import annotations

import torch
from torch_geometric.data import Data

from gnnlab.models import GNN
from gnnlab.ops import Graph


class _SpyLayer(torch.nn.Module):
    def __init__(self, seen):
        super().__init__()
        self.seen = seen

    def forward(self, x, graph, edge_attr=None):
        self.seen.append(graph)
        return x, edge_attr


class _SpyPE(torch.nn.Module):
    out_channels = 2

    def __init__(self, seen):
        super().__init__()
        self.seen = seen

    def forward(self, data, graph=None):
        self.seen.append(graph)
        return torch.zeros(data.x.size(0), 2)


def test_one_graph_per_forward_shared_by_pe_and_layers():
    seen = []
    model = GNN(node_encoder=torch.nn.Linear(3, 4), layers=[_SpyLayer(seen), _SpyLayer(seen)],
                head=torch.nn.Linear(6, 1), pe_encoders={"spy": _SpyPE(seen)})
    edge_index = torch.tensor([[0, 1, 2, 2], [1, 2, 0, 1]])
    data = Data(x=torch.randn(3, 3), edge_index=edge_index)
    model(data)
    assert len(seen) == 3 and all(g is seen[0] for g in seen)
    assert isinstance(seen[0], Graph) and seen[0].num_src == 3 and seen[0].num_edges == 4
    model(data)  # the next pass builds its own
    assert seen[3] is not seen[0]
    torch.testing.assert_close(seen[3].rowptr, seen[0].rowptr)


def test_from_data_reads_the_batch():
    from torch_geometric.data import Batch

    graphs = [Data(x=torch.randn(n, 3), edge_index=torch.tensor([[0], [n - 1]])) for n in (2, 4, 3)]
    batch = Batch.from_data_list(graphs)
    graph = Graph.from_data(batch)
    assert graph.num_graphs == 3 and torch.equal(graph.batch, batch.batch) and graph.num_nodes == 9
    torch.testing.assert_close(graph.edge_index, batch.edge_index)
    loose = Data(x=torch.randn(3, 2), edge_index=torch.tensor([[0, 1], [1, 2]]), batch=torch.tensor([0, 0, 1]))
    assert Graph.from_data(loose).num_graphs == 2  # a Data with a batch vector but no num_graphs
    assert Graph.from_data(Data(x=torch.randn(3, 2), edge_index=torch.tensor([[0], [1]]))).batch is None
