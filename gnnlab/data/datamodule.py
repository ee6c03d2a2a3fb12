"""A small container around train/val/test datasets that builds seeded PyG data loaders."""
from __future__ import annotations

import math
import os
from collections.abc import Mapping

import torch
from torch_geometric.data import Dataset, InMemoryDataset
from torch_geometric.loader import DataLoader

from gnnlab.data.checks import SPLITS, check_dataset
from gnnlab.errors import ConfigError, DataError
from gnnlab.transforms import degree_histogram, degree_statistics, precompute

__all__ = ["SPLITS", "UnknownSplitError", "DataModule", "dataset_facts"]


class UnknownSplitError(ConfigError, KeyError):
    """Raised for a split name the data module does not hold (a ``ConfigError``, so a ``ValueError``, and a ``KeyError``)."""

    def __str__(self) -> str:
        # KeyError would quote the whole message.
        return str(self.args[0]) if self.args else ""


def _stacked(dataset: Dataset, attr: str) -> torch.Tensor | None:
    """Concatenate ``attr`` over every graph of ``dataset`` (``None`` when the graphs lack it)."""
    if isinstance(dataset, InMemoryDataset) and dataset.transform is None and dataset._indices is None:
        # Fast path: the collated storage already is the concatenation.
        value = getattr(dataset._data, attr, None)
        return value if isinstance(value, torch.Tensor) else None
    values = [getattr(graph, attr, None) for graph in dataset]
    if not values or any(not isinstance(v, torch.Tensor) for v in values):
        return None
    return torch.cat([v.reshape(-1) if v.dim() <= 1 else v for v in values])


def _first(dataset: Dataset, attr: str) -> torch.Tensor | None:
    if len(dataset) == 0:
        return None
    value = getattr(dataset[0], attr, None)
    return value if isinstance(value, torch.Tensor) else None


def _width(t: torch.Tensor) -> int:
    return int(t.size(-1)) if t.dim() > 1 else 1


def _vocabulary(splits: Mapping[str, Dataset], attr: str) -> int | list[int] | None:
    """Size of the token vocabulary of ``attr`` over every split (per column for several columns).

    A dataset may declare its vocabulary (``dataset.vocabulary = {"x": 28}``: an atom dictionary
    larger than the atoms that occur); the tokens seen must fit it. Every split counts, not only
    train: an embedding table sized from train alone would fail on a token met only in val/test.
    """
    sample = _first(splits["train"], attr)
    if sample is None or sample.is_floating_point() or sample.dtype == torch.bool:
        return None
    seen = None
    for split in SPLITS:
        values = _stacked(splits[split], attr)
        if values is not None and values.numel():
            top = values.reshape(values.size(0), -1).amax(0) if values.dim() > 1 else values.max().view(1)
            seen = top if seen is None else torch.maximum(seen, top)
    if seen is None:
        return None
    observed = (seen + 1).tolist()
    declared = (getattr(splits["train"], "vocabulary", None) or {}).get(attr)
    if declared is not None:
        wanted = [declared] if isinstance(declared, int) else list(declared)
        if len(wanted) != len(observed) or any(o > w for o, w in zip(observed, wanted)):
            raise DataError(f"{attr}: tokens up to {observed} do not fit the dataset's declared vocabulary {declared}")
        return declared
    return observed[0] if sample.dim() == 1 or sample.size(-1) == 1 else observed


def _node_count_deciles(dataset: Dataset) -> list[int]:
    """``[c_0, ..., c_10]``: ``c_q`` is the smallest node count that a fraction ``q / 10`` of the graphs do not
    exceed (``c_0`` the smallest graph, ``c_10`` the largest)."""
    slices = getattr(dataset, "slices", None) or {}
    if isinstance(dataset, InMemoryDataset) and dataset.transform is None and "x" in slices:
        counts = slices["x"].diff()
        if dataset._indices is not None:
            counts = counts[torch.as_tensor(dataset.indices(), dtype=torch.long)]
    else:
        counts = torch.tensor([int(graph.num_nodes) for graph in dataset])
    ordered = counts.sort().values
    ranks = [max(math.ceil(q * len(ordered) / 10) - 1, 0) for q in range(11)]
    return [int(ordered[r]) for r in ranks]


def _train_degree_histogram(dataset: Dataset) -> torch.Tensor | None:
    """In-degree histogram of the training graphs (from the collated storage when there is one)."""
    if len(dataset) == 0:
        return None
    slices = getattr(dataset, "slices", None) or {}
    if (isinstance(dataset, InMemoryDataset) and dataset.transform is None and dataset._indices is None
            and "edge_index" in slices and "x" in slices):
        nodes, edges = slices["x"].diff(), slices["edge_index"].diff()
        offset = torch.repeat_interleave(torch.cumsum(nodes, 0) - nodes, edges)
        degree = torch.bincount(dataset._data.edge_index[1] + offset, minlength=int(nodes.sum()))
        return torch.bincount(degree)
    return degree_histogram(dataset)


def dataset_facts(splits: Mapping[str, Dataset], num_classes: int | None = None) -> dict:
    """What a model must know about the data, read from the loaded splits.

    - ``in_channels`` / ``edge_dim``: width of float node / edge features (``None`` for tokens or none);
    - ``num_node_tokens`` / ``num_edge_tokens``: vocabulary of integer node / edge features (a list,
      one per column, for several columns; ``None`` for float features or none);
    - ``num_outputs``: number of classes for integer labels ``y`` (``num_classes`` when given,
      else the largest label + 1), the width of ``y`` for float targets;
    - ``num_nodes``: nodes of the graph when the training split is one graph (transductive), else ``None``;
    - ``avg_degree`` / ``avg_log_degree``: mean ``d`` and ``log(d + 1)`` over the in-degrees of the
      training nodes (PNA's scalers, :func:`gnnlab.transforms.degree_statistics`);
    - ``node_count_deciles``: for several training graphs, the 11 deciles of their node counts (element ``q``
      is the smallest count that a fraction ``q / 10`` of the graphs do not exceed; DGCNN's SortPooling ``k``),
      else ``None``.

    ``gnnlab-train`` copies them to ``data.<name>`` before the model is built, so a model config
    reads ``${data.in_channels}`` and cannot disagree with the dataset it runs on.
    """
    train = splits["train"]
    x, e, y = (_first(train, attr) for attr in ("x", "edge_attr", "y"))
    facts = {
        "in_channels": _width(x) if x is not None and x.is_floating_point() else None,
        "edge_dim": _width(e) if e is not None and e.is_floating_point() else None,
        "num_node_tokens": _vocabulary(splits, "x"),
        "num_edge_tokens": _vocabulary(splits, "edge_attr"),
        "num_outputs": None,
        "num_nodes": int(train[0].num_nodes) if len(train) == 1 else None,
        "avg_degree": None,
        "avg_log_degree": None,
        "node_count_deciles": _node_count_deciles(train) if len(train) > 1 else None,
    }
    if y is not None and (y.is_floating_point() or num_classes is not None):
        facts["num_outputs"] = num_classes or _width(y)
    elif y is not None:
        labels = [_stacked(splits[s], "y") for s in SPLITS]
        facts["num_outputs"] = max(int(v.max()) for v in labels if v is not None and v.numel()) + 1
    hist = _train_degree_histogram(train)
    if hist is not None and int(hist.sum()) > 0:
        facts["avg_degree"], facts["avg_log_degree"] = degree_statistics(hist)
    return facts


class DataModule:
    """Holds the ``train``/``val``/``test`` datasets of one experiment and builds their loaders.

    Args:
        splits: mapping with at least the keys ``'train'``, ``'val'`` and ``'test'`` (the loaders'
            output, e.g. :func:`gnnlab.data.load_sbm`).
        batch_size: graphs per training batch.
        eval_batch_size: graphs per validation/test batch (defaults to ``batch_size``).
        num_workers: worker processes per loader.
        seed: seeds the generator that shuffles the training loader, so two runs with the same seed
            see the same batches in the same order.
        pe_transforms: positional/structural encodings to precompute, as a mapping name -> transform
            (or -> list of transforms; ``None`` entries are skipped), e.g.
            ``{'rwse': RandomWalkSE(k=20)}`` (what ``conf/pe/*.yaml`` builds). When non-empty, every
            split is replaced at construction by :func:`gnnlab.transforms.precompute` of it, cached
            next to the dataset's processed files (or in ``pe_cache_dir``); a dataset shared by
            several splits (a node-level graph) is processed once.
        pe_cache_dir: folder of the encoding caches; ``None`` uses each dataset's ``processed_dir``.
        num_classes: number of classes of a classification task: integer labels ``y`` are checked to
            lie in ``[0, num_classes)``. ``None`` counts them from the labels (their maximum + 1).
        check: check every split once at construction with :func:`gnnlab.data.checks.check_dataset` (finite
            float features, ``edge_index`` dtype and range, label range; a :class:`~gnnlab.errors.DataError`).
    """

    def __init__(
        self,
        splits: Mapping[str, Dataset],
        batch_size: int = 128,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        seed: int = 0,
        pe_transforms: Mapping | None = None,
        pe_cache_dir: str | os.PathLike | None = None,
        num_classes: int | None = None,
        check: bool = True,
    ) -> None:
        if not isinstance(splits, Mapping):
            raise ConfigError(f"splits must be a mapping of split name to dataset, got {type(splits).__name__}")
        missing = [s for s in SPLITS if s not in splits]
        if missing:
            raise ConfigError(
                f"splits lacks {', '.join(map(repr, missing))}; it must hold {', '.join(map(repr, SPLITS))} "
                f"(got {', '.join(map(repr, splits)) or 'nothing'})"
            )
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        if eval_batch_size is not None and eval_batch_size < 1:
            raise ConfigError(f"eval_batch_size must be >= 1, got {eval_batch_size}")
        if num_workers < 0:
            raise ConfigError(f"num_workers must be >= 0, got {num_workers}")
        if pe_transforms is not None and not isinstance(pe_transforms, Mapping):
            raise ConfigError(
                f"pe_transforms must be a mapping of name to transform, got {type(pe_transforms).__name__}"
            )
        if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, int)
                                        or num_classes < 1):
            raise ConfigError(f"num_classes must be a positive integer or None, got {num_classes!r}")
        self.pe_transforms: dict = {k: v for k, v in (pe_transforms or {}).items() if v is not None}
        self.splits: dict[str, Dataset] = dict(splits)
        self.num_classes = num_classes
        if check:
            # Before any encoding is precomputed: the raw values, once per distinct dataset.
            for dataset in {id(d): d for d in self.splits.values()}.values():
                shared = [s for s, d in self.splits.items() if d is dataset]
                check_dataset(dataset, split="/".join(shared), num_classes=num_classes)
        #: What a model must know about the data, read from it (see :func:`dataset_facts`).
        self.facts: dict = dataset_facts(self.splits, num_classes)
        if self.pe_transforms:
            done: dict[int, Dataset] = {}
            for name, dataset in self.splits.items():
                if id(dataset) not in done:
                    done[id(dataset)] = precompute(
                        dataset, self.pe_transforms, cache_dir=pe_cache_dir, desc=f"{name} encodings"
                    )
                self.splits[name] = done[id(dataset)]
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size) if eval_batch_size is not None else self.batch_size
        self.num_workers = int(num_workers)
        self.seed = int(seed)
        # One generator for the whole run, shared by every training loader: each epoch continues its
        # stream, so epochs see different orders, the same for every run with this seed; trainers
        # checkpoint its state so a resumed run repeats the same orders.
        self.generator = torch.Generator().manual_seed(self.seed)

    def describe(self) -> str:
        """The size of each split, for run logs: graphs, or labelled nodes when one graph holds every split."""
        masks = {name: getattr(d[0], f"{name}_mask", None) if len(d) == 1 else None for name, d in self.splits.items()}
        parts = [f"{name} {int(m.sum()) if m is not None else len(self.splits[name]):,}" for name, m in masks.items()]
        one_graph = all(m is not None for m in masks.values())
        return " / ".join(parts) + (" labelled nodes of one graph" if one_graph else " graphs")

    def dataset(self, split: str) -> Dataset:
        """The dataset of ``split``."""
        if split not in self.splits:
            raise UnknownSplitError(f"unknown split {split!r}; valid splits: {', '.join(map(repr, self.splits))}")
        return self.splits[split]

    def loader(self, split: str) -> DataLoader:
        """A PyG ``DataLoader`` over ``split``: shuffled by :attr:`generator` for ``'train'``, in order otherwise."""
        train = split == "train"
        return self._loader(self.dataset(split), train, shuffle=train, generator=self.generator if train else None)

    def distributed_loader(self, split: str, rank: int, world_size: int, epoch: int = 0) -> DataLoader:
        """The part of ``split`` that process ``rank`` of ``world_size`` runs (data-parallel training).

        ``'train'``: a ``DistributedSampler`` shuffled by :attr:`seed` and ``epoch`` (the same order on every
        launch; a partial last round is padded with repeated graphs, as torch does). Other splits: every
        ``world_size``-th graph from ``rank``, without padding, so the gathered outputs of all processes are the
        split exactly once.
        """
        from torch.utils.data import DistributedSampler

        if not 0 <= rank < world_size:
            raise ConfigError(f"rank {rank} is not in [0, {world_size})")
        dataset = self.dataset(split)
        if split == "train":
            sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=self.seed)
            sampler.set_epoch(epoch)
        else:
            sampler = range(rank, len(dataset), world_size)
        return self._loader(dataset, split == "train", sampler=sampler)

    def _loader(self, dataset: Dataset, train: bool, **kwargs) -> DataLoader:
        """A PyG ``DataLoader`` over ``dataset`` with the training or evaluation batch size and the workers."""
        return DataLoader(dataset, batch_size=self.batch_size if train else self.eval_batch_size,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0, **kwargs)

    def train_loader(self) -> DataLoader:
        """Shorthand for ``loader('train')``."""
        return self.loader("train")

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={len(v)}" for k, v in self.splits.items())
        return f"DataModule({sizes}, batch_size={self.batch_size}, eval_batch_size={self.eval_batch_size})"
