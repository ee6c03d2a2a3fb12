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
    predictor call. ``hidden``: the positive pairs a training step hides from the graph, where they are
    more than ``pos`` (in a data-parallel run, the whole global batch; ``None``: ``pos``). ``totals``: the
    numbers of positive and negative pairs of the whole split when this batch is one process's share of
    it (its loss is then that share's part of the whole split's loss)."""

    pos: Tensor
    neg: Tensor
    graph: Graph
    x: Tensor | None
    chunk_size: int | None = None
    hidden: Tensor | None = None
    totals: tuple[int, int] | None = None


class LinkTrainEpoch:
    """One epoch of training batches: a :class:`LinkBatch` of ``batch_size`` positives (in the order
    ``perm``) and as many negatives per step.

    With ``world_size`` processes a step's global batch is ``world_size * batch_size`` positives; process
    ``rank`` scores its contiguous share and hides the whole global batch from the graph, so every process
    encodes the same graph as one process with the global batch would. Without ``drop_last`` a last global
    batch too small to give every process a positive is dropped.
    """

    def __init__(self, pos: Tensor, neg: Tensor, graph: Graph, x: Tensor | None, batch_size: int, drop_last: bool,
                 perm: Tensor, rank: int = 0, world_size: int = 1):
        self.pos, self.neg, self.graph, self.x = pos, neg, graph, x
        self.batch_size, self.drop_last, self.perm = batch_size, drop_last, perm
        self.rank, self.world_size = rank, world_size

    def __len__(self) -> int:
        n, size = self.perm.numel(), self.batch_size * self.world_size
        full, rest = divmod(n, size)
        return full + int(not self.drop_last and rest >= self.world_size)

    def __iter__(self):
        size = self.batch_size * self.world_size
        for b in range(len(self)):
            idx = self.perm[b * size:(b + 1) * size]
            if self.world_size == 1:
                yield LinkBatch(self.pos[:, idx], self.neg[:, idx], self.graph, self.x)
                continue
            mine = torch.tensor_split(idx, self.world_size)[self.rank]
            yield LinkBatch(self.pos[:, mine], self.neg[:, mine], self.graph, self.x, hidden=self.pos[:, idx])


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
        self.seed = int(seed)
        self.generator = torch.Generator().manual_seed(self.seed)
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

    def distributed_loader(self, split: str, rank: int, world_size: int, epoch: int = 0):
        """The part of ``split`` that process ``rank`` of ``world_size`` runs (data-parallel training).

        ``"train"``: the epoch's order and negatives come from a generator seeded by :attr:`seed` and
        ``epoch`` (the same on every process, every launch and after a resume); each step's global batch of
        ``world_size * batch_size`` positives is shared out (:class:`LinkTrainEpoch`), so 1 process with
        batch ``N * b`` takes the same steps as N processes with batch ``b``. ``"val"``/``"test"``: each process
        scores a contiguous share of the positives and of the negatives (for ``K`` negatives per positive, the
        rows of its positives), so the outputs gathered in rank order are the whole split, aligned.
        """
        if not 0 <= rank < world_size:
            raise ConfigError(f"rank {rank} is not in [0, {world_size})")
        s = self.split
        if split == "train":
            num = s.train_pos.size(1)
            if self.drop_last and num < self.batch_size * world_size:
                raise ConfigError(f"LinkDataModule: {num} training pairs are fewer than one global batch of "
                                  f"{world_size} x {self.batch_size} and drop_last=True would train on nothing")
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + int(epoch))
            perm = torch.randperm(num, generator=generator)
            neg = sample_negative_pairs(self._cpu_graph, num, generator).to(self.device)
            return LinkTrainEpoch(s.train_pos, neg, self.graph, s.x, self.batch_size, self.drop_last,
                                  perm.to(self.device), rank, world_size)
        (whole,) = self.loader(split)
        num_pos, num_neg = whole.pos.size(1), whole.neg.size(1)
        pos_sizes = [t.numel() for t in torch.tensor_split(torch.arange(num_pos), world_size)]
        if num_pos and num_neg % num_pos == 0:  # K negatives per positive stay with their positive
            neg_sizes = [n * (num_neg // num_pos) for n in pos_sizes]
        else:
            neg_sizes = [t.numel() for t in torch.tensor_split(torch.arange(num_neg), world_size)]
        pos, neg = whole.pos.split(pos_sizes, dim=1)[rank], whole.neg.split(neg_sizes, dim=1)[rank]
        return [LinkBatch(pos, neg, whole.graph, whole.x, whole.chunk_size, totals=(num_pos, num_neg))]
