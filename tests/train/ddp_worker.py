"""One process of a data-parallel test run, started by ``torchrun`` from tests/train/test_distributed.py.

    python -m torch.distributed.run --standalone --nproc-per-node=N tests/train/ddp_worker.py OUT BATCH EPOCHS DIR [sampled|link]

Trains a small GCN on random graphs (node classification; graphs of different sizes, so the processes score
different numbers of nodes) with ``Trainer(strategy="ddp")`` and a per-process batch of BATCH graphs. With
``sampled``: a 2-layer SAGE ``GNN`` on one random graph, neighbour-sampled batches of BATCH seeds with every
neighbour (fan-out -1, so the batches are a function of their seeds) and layer-wise whole-graph evaluation.
With ``link``: NCN (propagation encoder, NCN predictor, no dropout) on a block-model graph's link split,
BATCH positive training pairs per process and step, target-link removal, Hits@K, MRR-free metrics.
Rank 0 writes the final weights and the fit's metrics to OUT (``torch.save``).
"""
from __future__ import annotations

import sys

import torch
from torch_geometric.data import Data

from gnnlab.data import DataModule
from gnnlab.nn.conv.gcn import GCNConv
from gnnlab.ops import Graph
from gnnlab.train import Trainer
from gnnlab.train.tasks import NodeClassification


def graphs(n: int, seed: int) -> list[Data]:
    """``n`` random graphs of 4–11 nodes, 4 features, labels from a fixed rule plus noise (3 classes)."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        nodes = int(torch.randint(4, 12, (1,), generator=gen))
        x = torch.randn(nodes, 4, generator=gen)
        edge_index = torch.randint(0, nodes, (2, 3 * nodes), generator=gen)
        y = (x[:, 0] + 0.5 * torch.randn(nodes, generator=gen) > 0).long() + (x[:, 1] > 1).long()
        out.append(Data(x=x, edge_index=edge_index, y=y))
    return out


class Net(torch.nn.Module):
    """Linear → GCN → ReLU → GCN → Linear (no dropout, no batch norm: the update is a function of the batch)."""

    def __init__(self):
        super().__init__()
        self.inp = torch.nn.Linear(4, 16)
        self.conv1, self.conv2 = GCNConv(16, 16), GCNConv(16, 16)
        self.out = torch.nn.Linear(16, 3)

    def forward(self, data):
        graph = Graph.from_data(data)
        h = self.inp(data.x)
        h = torch.relu(self.conv1(h, graph)[0])
        h = torch.relu(self.conv2(h, graph)[0])
        return self.out(h)


def one_graph() -> Data:
    """120 nodes, 4 features, 3 classes, ~5 random in-edges per node; 40 / 30 / 25 nodes in train / val / test."""
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(120, 4, generator=gen)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 1).long()
    mask = torch.zeros(120, dtype=torch.bool)
    order = torch.randperm(120, generator=gen)
    train, val, test = mask.clone(), mask.clone(), mask.clone()
    train[order[:40]], val[order[40:70]], test[order[70:95]] = True, True, True
    return Data(x=x, y=y, edge_index=torch.randint(0, 120, (2, 600), generator=gen), train_mask=train,
                val_mask=val, test_mask=test)


def sampled(batch_size: int):
    """A neighbour-sampled data module (every neighbour, 2 hops) and a 2-layer SAGE GNN without batch norm."""
    from functools import partial

    from gnnlab.data import SampledNodeDataModule
    from gnnlab.models import build_gnn
    from gnnlab.nn.conv import SAGEConv
    from gnnlab.nn.encoders import LinearEncoder
    from gnnlab.nn.layers import ConvLayer

    datamodule = SampledNodeDataModule.from_data(one_graph(), [-1, -1], batch_size=batch_size, eval_batch_size=16,
                                                 engine="gnnlab", seed=5)
    model = build_gnn(layer=partial(ConvLayer, conv=SAGEConv, batch_norm=False, residual=False),
                      node_encoder=partial(LinearEncoder, 4), out_channels=3, hidden_channels=16, num_layers=2)
    return datamodule, model


def link(batch_size: int):
    """A link split of a 4-block graph (120 nodes) and NCN without dropout."""
    from torch_geometric.utils import stochastic_blockmodel_graph

    from gnnlab.data.linkpred import LinkDataModule, ncn_random_split
    from gnnlab.models.link import LinkPredictionModel, PropagationEncoder
    from gnnlab.nn.link import NCNPredictor

    torch.manual_seed(3)
    edges = stochastic_blockmodel_graph([30] * 4, [[0.3 if a == b else 0.01 for b in range(4)] for a in range(4)])
    x = torch.nn.functional.one_hot(torch.arange(120) // 30, 4).float() + 0.3 * torch.randn(120, 4)
    split = ncn_random_split(edges, 120, 0, x=x, name="blocks")
    datamodule = LinkDataModule(split, batch_size=batch_size, eval_batch_size=50, seed=5, drop_last=False)
    torch.manual_seed(0)
    model = LinkPredictionModel(NCNPredictor(16, 16), PropagationEncoder(4, 16, aggr="gcn"))
    return datamodule, model


def main(out: str, batch_size: int, epochs: int, output_dir: str, mode: str = "graphs") -> None:
    torch.manual_seed(0)
    if mode == "sampled":
        datamodule, model = sampled(batch_size)
        task = NodeClassification(transductive=True)
    elif mode == "link":
        from gnnlab.train.tasks import LinkPrediction

        datamodule, model = link(batch_size)
        task = LinkPrediction(metrics=["hits@10", "auc"])
    else:
        datamodule = DataModule({"train": graphs(32, 1), "val": graphs(13, 2), "test": graphs(7, 3)},
                                batch_size=batch_size, eval_batch_size=3, seed=5)
        model, task = Net(), NodeClassification()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    trainer = Trainer(max_epochs=epochs, output_dir=output_dir, accelerator="cpu", progress=False,
                      strategy="ddp", min_lr=None)
    try:
        result = trainer.fit(model, task, datamodule, optimizer)
        final = trainer.test_best(model, task, datamodule)
        trainer.write_results(result, final)
    finally:
        trainer.dist.close()
    if trainer.is_main:
        torch.save({"params": {k: v.clone() for k, v in model.state_dict().items()}, "last": result.last_metrics,
                    "final": final, "world_size": trainer.dist.world_size}, out)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], *sys.argv[5:])
