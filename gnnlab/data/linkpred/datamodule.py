"""Batches of a :class:`~gnnlab.data.linkpred.LinkSplit` for :class:`gnnlab.train.tasks.LinkPrediction`.

A training epoch is the positive training pairs in a random order, each with one random negative
(drawn once per epoch, as NCN does), cut into :class:`LinkBatch` steps; an evaluation split is one
:class:`LinkBatch` of all its pairs. Batches share the graph and features of the data module, moved
to the device once (:meth:`LinkDataModule.to`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from gnnlab.data.linkpred.splits import LinkSplit
from gnnlab.errors import ConfigError, DataError
from gnnlab.ops import Graph, has_edge

__all__ = ["LinkBatch", "LinkDataModule", "sample_negative_pairs"]


def sample_negative_pairs(graph: Graph, count: int, generator: torch.Generator | None = None) -> Tensor:
    """``count`` uniformly random pairs ``(i, j)``, ``i != j``, that are not edges of ``graph`` (a
    :meth:`Graph.undirected` on the CPU): training negatives, redrawn every epoch.

    Rejection sampling on the sorted edges; like PyG's ``negative_sampling`` it needs the graph to
    be far from complete (it raises if a tenth of the pairs are still edges after 100 rounds).
    """
    n = graph.num_nodes
    if n < 2:
        raise DataError(f"sample_negative_pairs: a graph with {n} node(s) has no pairs to sample")
    out = torch.empty(2, count, dtype=torch.long)
    todo = torch.arange(count)
    for _ in range(100):
        if todo.numel() == 0:
            return out
        i = torch.randint(0, n, (todo.numel(),), generator=generator)
        j = (i + torch.randint(1, n, (todo.numel(),), generator=generator)) % n  # j != i
        bad = has_edge(graph, torch.stack([i, j]))
        out[0, todo[~bad]], out[1, todo[~bad]] = i[~bad], j[~bad]
        todo = todo[bad]
    raise DataError(f"sample_negative_pairs: {todo.numel()} of {count} draws kept hitting edges; the graph is too dense")


@dataclass
class LinkBatch:
    """Positive pairs ``pos`` and negative pairs ``neg`` (``[2, *]``) to score over ``graph``, whose
    nodes have the features ``x`` (``None``: featureless); evaluation scores ``chunk_size`` pairs per
    predictor call."""

    pos: Tensor
    neg: Tensor
    graph: Graph
    x: Tensor | None
    chunk_size: int | None = None


class LinkTrainEpoch:
    """One epoch of training batches: a :class:`LinkBatch` of ``batch_size`` positives (in the order
    ``perm``) and as many negatives per step."""

    def __init__(self, pos: Tensor, neg: Tensor, graph: Graph, x: Tensor | None, batch_size: int, drop_last: bool,
                 perm: Tensor):
        self.pos, self.neg, self.graph, self.x = pos, neg, graph, x
        self.batch_size, self.drop_last, self.perm = batch_size, drop_last, perm

    def __len__(self) -> int:
        n = self.perm.numel()
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        for b in range(len(self)):
            idx = self.perm[b * self.batch_size:(b + 1) * self.batch_size]
            yield LinkBatch(self.pos[:, idx], self.neg[:, idx], self.graph, self.x)


class LinkDataModule:
    """Batches of a :class:`LinkSplit` for :class:`gnnlab.train.tasks.LinkPrediction`.

    The message-passing graph is the training positives, :meth:`Graph.undirected` (edge order = CSR
    order, so a per-edge mask serves the common-neighbour ops and aggregation alike).

    Args:
        split: the split (or a callable returning it, e.g. a Hydra partial of
            :func:`planetoid_link_split` that depends on the seed).
        batch_size: positive training pairs per step.
        eval_batch_size: pairs scored at once during evaluation.
        seed: seed of the batch order and of the training negatives.
        drop_last: drop the last incomplete training batch (NCN's ``PermIterator`` does).
        valid_edges_as_input: score the test pairs on the training graph plus the validation
            positives (NCN's ``--use_valedges_as_input``, the ogbl-collab protocol).
    """

    def __init__(self, split, batch_size: int, eval_batch_size: int = 65536, seed: int = 0, drop_last: bool = True,
                 valid_edges_as_input: bool = False):
        self.split = split() if callable(split) else split
        if not isinstance(self.split, LinkSplit):
            raise TypeError(f"LinkDataModule: split must be a LinkSplit, got {type(self.split).__name__}")
        if batch_size < 1 or eval_batch_size < 1:
            raise ConfigError(f"LinkDataModule: batch sizes must be positive, got {batch_size}, {eval_batch_size}")
        if drop_last and self.split.train_pos.size(1) < batch_size:
            raise ConfigError(f"LinkDataModule: {self.split.train_pos.size(1)} training pairs are fewer than one "
                              f"batch of {batch_size} and drop_last=True would train on nothing")
        self.batch_size, self.eval_batch_size, self.drop_last = batch_size, eval_batch_size, drop_last
        self.generator = torch.Generator().manual_seed(int(seed))
        n = self.split.num_nodes
        self.graph = Graph.undirected(self.split.train_pos, n)
        self.test_graph = Graph.undirected(self.split.train_edge_index(include_valid=True), n) \
            if valid_edges_as_input else self.graph
        self._cpu_graph = self.graph  # negatives are drawn on the CPU (the generator's device)
        self.device = torch.device("cpu")

    @property
    def facts(self) -> dict:
        """What a model config needs of the dataset: ``in_channels`` (the float feature width, or
        ``None`` for a featureless graph) and ``num_nodes``."""
        x = self.split.x
        width = int(x.size(1)) if x is not None and x.dim() == 2 and x.is_floating_point() else None
        return {"in_channels": width, "num_nodes": self.split.num_nodes}

    def to(self, device) -> "LinkDataModule":
        """Move the split and the graphs to ``device`` (the batch order stays on the CPU generator)."""
        if torch.device(device) == self.device:
            return self  # keeps the graphs' memoised structures
        self.device = torch.device(device)
        self.split = self.split.to(self.device)
        shared = self.test_graph is self.graph
        self.graph = self.graph.to(self.device)
        self.test_graph = self.graph if shared else self.test_graph.to(self.device)
        return self

    def describe(self) -> str:
        """The size of each split, for run logs: positive pairs (and negatives) over the graph's nodes."""
        s = self.split
        return (f"train {s.train_pos.size(1):,} / val {s.valid_pos.size(1):,} (+{s.valid_neg.size(1):,} negatives)"
                f" / test {s.test_pos.size(1):,} (+{s.test_neg.size(1):,} negatives) links over {s.num_nodes:,} nodes")

    def loader(self, split: str):
        """``"train"``: a :class:`LinkTrainEpoch` (fresh order and negatives); ``"val"``/``"test"``: one :class:`LinkBatch`."""
        s = self.split
        if split == "train":
            num = s.train_pos.size(1)
            perm = torch.randperm(num, generator=self.generator)
            neg = sample_negative_pairs(self._cpu_graph, num, self.generator).to(self.device)
            return LinkTrainEpoch(s.train_pos, neg, self.graph, s.x, self.batch_size, self.drop_last, perm.to(self.device))
        if split == "val":
            return [LinkBatch(s.valid_pos, s.valid_neg, self.graph, s.x, self.eval_batch_size)]
        if split == "test":
            return [LinkBatch(s.test_pos, s.test_neg, self.test_graph, s.x, self.eval_batch_size)]
        raise ConfigError(f"LinkDataModule: unknown split {split!r} (expected 'train', 'val' or 'test')")
