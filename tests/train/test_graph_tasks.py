"""Graph-level tasks score one row per graph: a model that returns one row per node is refused."""
from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.nn import global_mean_pool

from gnnlab.errors import ConfigError
from gnnlab.train.tasks import GraphClassification, GraphRegression, MultilabelGraphClassification


def _batch(y_width: int | None) -> Batch:
    # 3 graphs of 2 nodes: 6 node rows, which a [B, -1] view of the targets' count would accept
    graphs = []
    for i in range(3):
        y = torch.tensor([float(i % 2)]) if y_width is None else torch.rand(1, y_width)
        graphs.append(Data(x=torch.randn(2, 4), edge_index=torch.tensor([[0, 1], [1, 0]]), y=y))
    return Batch.from_data_list(graphs)


@pytest.mark.parametrize("task, y_width, out_width", [
    (GraphRegression(), None, 1),
    (GraphClassification(), None, 2),
    (MultilabelGraphClassification(), 2, 1),  # 6 x 1 node rows hold as many values as 3 x 2 targets
])
def test_one_row_per_node_is_refused(task, y_width, out_width):
    batch = _batch(y_width)
    if isinstance(task, GraphClassification):
        batch.y = batch.y.long()
    lin = torch.nn.Linear(4, out_width if y_width is None else y_width)
    with pytest.raises(ConfigError, match=r"returned 6 rows for 3 targets \(one per graph\)"):
        task.step(lambda b: torch.nn.Linear(4, out_width)(b.x), batch, "train")
    # pooled to one row per graph, the same task runs
    out = task.step(lambda b: global_mean_pool(lin(b.x), b.batch), batch, "train")
    assert out.weight == 3 and torch.isfinite(out.loss)
