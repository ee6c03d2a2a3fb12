"""A seconds-fast regression problem for trainer tests: a linear model on random graph features."""
from __future__ import annotations

import torch
from torch_geometric.data import Data

from gnnlab.train.tasks import GraphRegression


class ToyData:
    """``loader(split)`` gives ``batches`` batches of 8 examples ``y = x @ w`` (fixed per split)."""

    def __init__(self, batches: int = 4, scale: float = 1.0, seed: int = 0):
        gen = torch.Generator().manual_seed(seed)
        w = torch.randn(4, generator=gen)
        self.splits = {}
        for split in ("train", "val", "test"):
            xs = [scale * torch.randn(8, 4, generator=gen) for _ in range(batches)]
            self.splits[split] = [Data(x=x, y=x @ w) for x in xs]
        self.generator = torch.Generator().manual_seed(seed)

    def loader(self, split: str):
        """The split's batches (training order shuffled by ``self.generator``)."""
        batches = self.splits[split]
        if split == "train":
            order = torch.randperm(len(batches), generator=self.generator).tolist()
            return [batches[i] for i in order]
        return list(batches)


class ToyModel(torch.nn.Module):
    """``x @ w + b`` per example; ``eval_output`` replaces the evaluation output when set (e.g. NaN)."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 1)
        self.eval_output: float | None = None

    def forward(self, batch):
        out = self.lin(batch.x).squeeze(-1)
        if not self.training and self.eval_output is not None:
            out = torch.full_like(out, self.eval_output)
        return out


def toy_task() -> GraphRegression:
    """MSE regression monitored on MAE (lower is better)."""
    return GraphRegression(loss="mse")
