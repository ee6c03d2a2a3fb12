"""Mini-batch training on large graphs with neighbour sampling: the data modules (the loaders and the
sampler are in :mod:`gnnlab.data.sampling`).

:class:`SampledNodeDataModule` is the data module of sampled node classification: training batches
from ``NeighborLoader`` (the first ``batch.batch_size`` nodes of a batch are its seeds, the nodes the
task scores), and evaluation on the whole graph by layer-wise propagation
(:class:`LayerwiseBatch`, :meth:`gnnlab.models.GNN.layerwise_inference`) or, as a cheaper estimate,
by sampled batches of the split's nodes. :class:`SampledLinkDataModule` does the same for link
prediction: ``LinkNeighborLoader`` subgraphs around each batch of training pairs (with PyG's negative
pairs), handed to :class:`gnnlab.train.tasks.LinkPrediction` as ``LinkBatch`` objects; evaluation
on the whole graph as :class:`~gnnlab.data.linkpred.LinkDataModule` does.

Node batches keep the order of directed neighbour sampling (seeds first, then the nodes new in each hop;
the edges hop by hop, each into a node new in its hop) and carry ``num_sampled_nodes`` /
``num_sampled_edges``, so :class:`gnnlab.models.GNN` trims them per layer (``trim_sampled``, checked by
:func:`gnnlab.models.hops.sampled_hops`): layer ``l`` of ``L`` computes only the nodes within ``L - 1 - l``
hops of the seeds, and the model returns the seeds' outputs.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.loader import LinkNeighborLoader

from gnnlab.data.checks import SPLITS, check_dataset
from gnnlab.data.datamodule import UnknownSplitError, dataset_facts
from gnnlab.data.linkpred.datamodule import LinkBatch, LinkDataModule
from gnnlab.data.sampling import check_engine, link_neighbor_loader, make_neighbor_sampler, node_neighbor_loader
from gnnlab.errors import ConfigError, DataError
from gnnlab.ops import Graph

__all__ = ["EVAL_MODES", "LayerwiseBatch", "SampledLinkDataModule", "SampledNodeDataModule"]


class LayerwiseBatch:
    """The whole graph as one evaluation "batch": the task runs the model layer by layer over it
    (:meth:`gnnlab.models.GNN.layerwise_inference`, ``chunk_size`` target nodes at a time) and scores
    the nodes of ``data.<split>_mask``."""

    def __init__(self, data: Data, chunk_size: int):
        self.data = data
        self.chunk_size = int(chunk_size)
        self._cached: tuple | None = None  # (state of the model, its outputs)

    def to(self, device) -> "LayerwiseBatch":
        """This batch with its graph on ``device`` (moved in place, as PyG's ``Data.to``; the outputs cached by
        :meth:`outputs` stay with it)."""
        self.data = self.data.to(device)
        return self

    def outputs(self, model) -> Tensor:
        """``model.layerwise_inference(data)``, computed once per state of the model's weights: the validation
        and test splits of one evaluation share the same whole-graph pass. Any change of a parameter or buffer
        (an optimiser step, loaded weights) or of train/eval mode computes it again."""
        tensors = [*model.parameters(), *model.buffers()]
        state = (id(model), model.training, str(self.data.x.device),
                 tuple((id(t), t.data_ptr(), t._version) for t in tensors))
        if self._cached is None or self._cached[0] != state:
            self._cached = (state, model.layerwise_inference(self.data, batch_size=self.chunk_size))
        return self._cached[1]

    def __repr__(self) -> str:
        return f"LayerwiseBatch(num_nodes={self.data.num_nodes}, chunk_size={self.chunk_size})"


EVAL_MODES = ("layerwise", "sampled")


class SampledNodeDataModule:
    """Node classification on one large graph with neighbour-sampled training batches.

    The interface of :class:`gnnlab.data.DataModule` that the trainer reads: :meth:`loader`, :attr:`facts`,
    :meth:`describe` and :attr:`generator` (shuffles the training seeds and seeds gnnlab's sampler; the
    trainer checkpoints it, so a resumed run repeats the same batches).

    - ``loader("train")``: PyG's ``NeighborLoader`` over the nodes of ``train_mask``, shuffled, with
      ``num_neighbors`` per hop (use as many hops as the model has layers).
    - ``loader("val")`` / ``loader("test")``: with ``eval_mode="layerwise"`` one :class:`LayerwiseBatch`
      (exact full-graph outputs, ``eval_batch_size`` targets per chunk); with ``"sampled"`` a
      ``NeighborLoader`` over the split's nodes with the training fan-outs (an estimate, cheaper per epoch).

    Args:
        splits: ``{'train', 'val', 'test'}`` -> the same one-graph dataset whose graph holds
            ``train_mask``/``val_mask``/``test_mask`` (e.g. :func:`gnnlab.data.load_planetoid`).
        num_neighbors: fan-out per hop (``-1``: all neighbours).
        batch_size: seed nodes per training batch.
        eval_batch_size: target nodes per chunk of layer-wise inference (or per sampled evaluation batch).
        replace: sample with replacement.
        engine: ``"auto"``, ``"pyg"`` or ``"gnnlab"`` (:func:`make_neighbor_sampler`).
        eval_mode: ``"layerwise"`` or ``"sampled"``.
        num_workers: loader worker processes.
        seed: seed of :attr:`generator`.
        num_classes: number of classes (``None``: from the labels).
        check: check the graph once (:func:`gnnlab.data.checks.check_dataset`).
    """

    def __init__(
        self,
        splits: Mapping,
        num_neighbors: Sequence[int],
        batch_size: int = 512,
        eval_batch_size: int | None = None,
        replace: bool = False,
        engine: str = "auto",
        eval_mode: str = "layerwise",
        num_workers: int = 0,
        seed: int = 0,
        num_classes: int | None = None,
        check: bool = True,
    ):
        if not isinstance(splits, Mapping) or any(s not in splits for s in SPLITS):
            raise ConfigError(f"splits must map each of {SPLITS} to a dataset")
        datasets = {id(splits[s]) for s in SPLITS}
        if len(datasets) != 1 or len(splits["train"]) != 1:
            raise ConfigError("SampledNodeDataModule needs one graph holding every split (train/val/test masks), "
                              "the same one-graph dataset for each split")
        if batch_size < 1 or (eval_batch_size is not None and eval_batch_size < 1):
            raise ConfigError(f"batch sizes must be >= 1, got {batch_size} and {eval_batch_size}")
        if eval_mode not in EVAL_MODES:
            raise ConfigError(f"eval_mode must be one of {EVAL_MODES}, got {eval_mode!r}")
        if num_workers < 0:
            raise ConfigError(f"num_workers must be >= 0, got {num_workers}")
        check_engine(engine)
        if check:
            check_dataset(splits["train"], split="train/val/test", num_classes=num_classes)
        data = splits["train"][0]
        missing = [f"{s}_mask" for s in SPLITS if getattr(data, f"{s}_mask", None) is None]
        if missing:
            raise DataError(f"SampledNodeDataModule: the graph has no {', '.join(missing)}")
        self.splits = dict(splits)
        self.data: Data = data
        #: What a model must know about the data (:func:`gnnlab.data.dataset_facts`).
        self.facts: dict = dataset_facts(self.splits, num_classes)
        self.num_neighbors = list(num_neighbors)
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size) if eval_batch_size is not None else self.batch_size
        self.replace, self.engine, self.eval_mode = bool(replace), engine, eval_mode
        self.num_workers, self.seed = int(num_workers), int(seed)
        #: Shuffles the training seeds and seeds gnnlab's sampler: one stream for the whole run.
        self.generator = torch.Generator().manual_seed(self.seed)
        # One sampler (one CSC conversion of the graph) for every loader of the run.
        self.sampler = make_neighbor_sampler(self.data, self.num_neighbors, self.replace, engine, self.generator,
                                             share_memory=self.num_workers > 0)
        self._layerwise = LayerwiseBatch(self.data, self.eval_batch_size)
        self._layerwise_parts: dict[tuple[int, int], LayerwiseBatch] = {}

    @classmethod
    def from_data(cls, data: Data, num_neighbors: Sequence[int], **kwargs) -> "SampledNodeDataModule":
        """A data module over one ``Data`` holding ``x``, ``y``, ``edge_index`` and the three split masks."""
        one_graph = [data]
        return cls(dict.fromkeys(SPLITS, one_graph), num_neighbors, **kwargs)

    def describe(self) -> str:
        """Sizes of the splits and the sampling setup, for run logs."""
        counts = " / ".join(f"{s} {int(getattr(self.data, f'{s}_mask').sum()):,}" for s in SPLITS)
        return (f"{counts} labelled nodes of one graph ({self.data.num_nodes:,} nodes, {self.data.num_edges:,} "
                f"edges); neighbour sampling {self.num_neighbors} by {type(self.sampler).__name__}, batch "
                f"{self.batch_size}, evaluation {self.eval_mode}")

    def loader(self, split: str):
        """Training batches of ``'train'`` (shuffled by :attr:`generator`), or the evaluation of ``'val'``/``'test'``."""
        if split not in SPLITS:
            raise UnknownSplitError(f"unknown split {split!r}; valid splits: {', '.join(map(repr, SPLITS))}")
        mask = getattr(self.data, f"{split}_mask")
        train = split == "train"
        if not train and self.eval_mode == "layerwise":
            return [self._layerwise]  # one object for val and test: they share its whole-graph pass
        return node_neighbor_loader(
            self.data, self.num_neighbors, mask, self.batch_size if train else self.eval_batch_size,
            shuffle=train, generator=self.generator, sampler=self.sampler, num_workers=self.num_workers,
            persistent_workers=False,
        )

    def distributed_loader(self, split: str, rank: int, world_size: int, epoch: int = 0):
        """The part of ``split`` that process ``rank`` of ``world_size`` runs (data-parallel training).

        ``'train'``: the training seeds in an order drawn from (:attr:`seed`, ``epoch``), the same on every
        process; the process takes every ``world_size``-th seed from ``rank`` (a partial last round is padded
        with repeated seeds, as torch's ``DistributedSampler`` does), ``batch_size`` per batch, so batch ``k`` of
        all processes together is batch ``k`` of one process with ``world_size`` times the batch. gnnlab's
        sampler draws from :attr:`generator` reseeded by (seed, epoch, rank). ``'val'``/``'test'``: every
        ``world_size``-th node of the split from ``rank``, without padding, so the gathered outputs score the
        split exactly once; layer-wise evaluation runs the whole graph on each process and scores its share.
        """
        if not 0 <= rank < world_size:
            raise ConfigError(f"rank {rank} is not in [0, {world_size})")
        if split not in SPLITS:
            raise UnknownSplitError(f"unknown split {split!r}; valid splits: {', '.join(map(repr, SPLITS))}")
        nodes = getattr(self.data, f"{split}_mask").nonzero().view(-1)
        if split == "train":
            order = torch.randperm(nodes.numel(), generator=torch.Generator().manual_seed(self.seed * 10_007 + epoch))
            padded = -(-nodes.numel() // world_size) * world_size
            order = torch.cat([order, order[: padded - nodes.numel()]])
            self.generator.manual_seed((self.seed * 1_000_003 + epoch * 10_007 + rank * 101) % (2**63 - 1))
            return node_neighbor_loader(self.data, self.num_neighbors, nodes[order[rank::world_size]], self.batch_size,
                                        generator=self.generator, sampler=self.sampler, num_workers=self.num_workers,
                                        persistent_workers=False)
        if self.eval_mode == "layerwise":
            return [self._layerwise_part(rank, world_size)]
        return node_neighbor_loader(self.data, self.num_neighbors, nodes[rank::world_size], self.eval_batch_size,
                                    generator=self.generator, sampler=self.sampler, num_workers=self.num_workers,
                                    persistent_workers=False)

    def _layerwise_part(self, rank: int, world_size: int) -> LayerwiseBatch:
        """A :class:`LayerwiseBatch` over the whole graph whose evaluation masks keep this process's share."""
        if (rank, world_size) not in self._layerwise_parts:
            data = copy.copy(self.data)  # the same tensors, masks of its own
            for split in ("val", "test"):
                mask = getattr(self.data, f"{split}_mask")
                share = torch.zeros_like(mask)
                share[mask.nonzero().view(-1)[rank::world_size]] = True
                data[f"{split}_mask"] = share
            self._layerwise_parts[(rank, world_size)] = LayerwiseBatch(data, self.eval_batch_size)
        return self._layerwise_parts[(rank, world_size)]

    def train_loader(self):
        """Shorthand for ``loader('train')``."""
        return self.loader("train")

    def __repr__(self) -> str:
        return (f"SampledNodeDataModule(num_nodes={self.data.num_nodes}, num_neighbors={self.num_neighbors}, "
                f"batch_size={self.batch_size}, sampler={type(self.sampler).__name__})")


class _SampledLinkEpoch:
    """One training epoch of a :class:`SampledLinkDataModule`: PyG's ``LinkNeighborLoader`` batches as
    :class:`~gnnlab.data.linkpred.LinkBatch` objects over each batch's sampled subgraph."""

    def __init__(self, loader: LinkNeighborLoader, device: torch.device):
        self.loader, self.device = loader, device

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            num_pos = batch.input_id.numel()
            pairs = batch.edge_label_index  # (2, positives + negatives), local ids, positives first
            # The sampled edges in both directions, rows sorted: what the link task's target-link
            # removal and common-neighbour ops need (the full message-passing graph is undirected too).
            graph = Graph.undirected(batch.edge_index, batch.num_nodes)
            x = batch.x.to(self.device) if getattr(batch, "x", None) is not None else None
            yield LinkBatch(pairs[:, :num_pos].to(self.device), pairs[:, num_pos:].to(self.device),
                            graph.to(self.device), x)


class SampledLinkDataModule(LinkDataModule):
    """A :class:`~gnnlab.data.linkpred.LinkDataModule` whose training batches are neighbour-sampled subgraphs.

    Training: PyG's ``LinkNeighborLoader`` over the training positives (shuffled by :attr:`generator`),
    ``num_neighbors`` per hop around both ends of every pair, one random negative pair per positive
    (PyG's ``"binary"`` negative sampling: uniform pairs, not filtered against the edges; drawn from
    torch's default generator). Each batch is handed to :class:`gnnlab.train.tasks.LinkPrediction` as a
    :class:`~gnnlab.data.linkpred.LinkBatch` over its subgraph, so the task hides the batch's own
    positives from it (target-link removal) as in full-graph training. Evaluation is the parent's:
    every validation/test pair scored on the whole training graph.

    Args:
        split: as :class:`~gnnlab.data.linkpred.LinkDataModule`.
        num_neighbors: fan-out per hop (``-1``: all neighbours).
        batch_size: positive pairs per step.
        replace, engine: as :func:`make_neighbor_sampler`.
        num_workers: loader worker processes.
        eval_batch_size, seed, drop_last, valid_edges_as_input: as the parent.

    Data-parallel training is not offered: the parent's ``distributed_loader`` would train on the whole graph,
    so it is switched off and ``trainer.strategy=ddp`` is refused with a clear error.
    """

    # The parent's full-graph shares are not this module's sampled batches (the trainer refuses DDP).
    distributed_loader = None

    def __init__(self, split, num_neighbors: Sequence[int], batch_size: int, eval_batch_size: int = 65536,
                 seed: int = 0, drop_last: bool = True, valid_edges_as_input: bool = False, replace: bool = False,
                 engine: str = "auto", num_workers: int = 0):
        super().__init__(split, batch_size, eval_batch_size, seed, drop_last, valid_edges_as_input)
        if num_workers < 0:
            raise ConfigError(f"num_workers must be >= 0, got {num_workers}")
        self.num_neighbors, self.num_workers = list(num_neighbors), int(num_workers)
        s = self.split
        # The message-passing graph (training positives, both directions) with the features, on the CPU.
        self._data = Data(edge_index=self.graph.edge_index, num_nodes=s.num_nodes)
        if s.x is not None:
            self._data.x = s.x
        self._train_pos = s.train_pos
        self.sampler = make_neighbor_sampler(self._data, self.num_neighbors, replace, engine, self.generator,
                                             share_memory=self.num_workers > 0)

    def describe(self) -> str:
        """The parent's split sizes and the sampling setup."""
        return (f"{super().describe()}; neighbour sampling {self.num_neighbors} by {type(self.sampler).__name__}, "
                f"batch {self.batch_size}")

    def loader(self, split: str):
        """``"train"``: an epoch of sampled :class:`~gnnlab.data.linkpred.LinkBatch` steps; ``"val"``/``"test"``: the parent's."""
        if split != "train":
            return super().loader(split)
        loader = link_neighbor_loader(self._data, self.num_neighbors, self._train_pos, self.batch_size,
                                      neg_sampling="binary", shuffle=True, generator=self.generator,
                                      sampler=self.sampler, drop_last=self.drop_last, num_workers=self.num_workers)
        return _SampledLinkEpoch(loader, self.device)
