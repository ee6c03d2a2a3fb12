"""A small container around train/val/test datasets that builds seeded PyG data loaders."""
from __future__ import annotations

import os
from collections.abc import Mapping

import torch
from torch_geometric.data import Dataset, InMemoryDataset
from torch_geometric.loader import DataLoader

from gnnlab.data.checks import check_dataset
from gnnlab.errors import ConfigError
from gnnlab.transforms import precompute

__all__ = ["SPLITS", "UnknownSplitError", "DataModule"]

SPLITS = ("train", "val", "test")


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
            lie in ``[0, num_classes)``. ``None`` (regression, multi-label) skips that check.
        check: check every split once at construction (:func:`gnnlab.data.checks.check_dataset`):
            finite float features, ``edge_index`` dtype and range, label range. Raises
            :class:`~gnnlab.errors.DataError` naming the dataset, split, graph and tensor.
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
            checked: set[int] = set()
            for dataset in self.splits.values():
                if id(dataset) not in checked:
                    checked.add(id(dataset))
                    shared = [s for s, d in self.splits.items() if d is dataset]
                    check_dataset(dataset, split="/".join(shared), num_classes=num_classes)
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
        # One generator for the whole run: each epoch's loader continues its stream, so epochs see
        # different orders; trainers checkpoint its state so a resumed run repeats the same orders.
        self.generator = torch.Generator().manual_seed(self.seed)

    def _check(self, split: str) -> str:
        if split not in self.splits:
            raise UnknownSplitError(
                f"unknown split {split!r}; valid splits: {', '.join(map(repr, self.splits))}"
            )
        return split

    def dataset(self, split: str) -> Dataset:
        """The dataset of ``split``."""
        return self.splits[self._check(split)]

    def loader(self, split: str) -> DataLoader:
        """A PyG ``DataLoader`` over ``split``: shuffled (seeded) for ``'train'``, in order otherwise.

        All training loaders share :attr:`generator` (seeded with ``seed``): successive epochs get
        different orders, and the sequence of orders is the same for every run with that seed.
        """
        dataset = self.dataset(split)
        train = split == "train"
        generator = self.generator if train else None
        return DataLoader(
            dataset,
            batch_size=self.batch_size if train else self.eval_batch_size,
            shuffle=train,
            generator=generator,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_loader(self) -> DataLoader:
        """Shorthand for ``loader('train')``."""
        return self.loader("train")

    def val_loader(self) -> DataLoader:
        """Shorthand for ``loader('val')``."""
        return self.loader("val")

    def test_loader(self) -> DataLoader:
        """Shorthand for ``loader('test')``."""
        return self.loader("test")

    @property
    def num_node_features(self) -> int | None:
        """Width of float node features ``x``; ``None`` for token (integer) features or no ``x``."""
        x = _first(self.splits["train"], "x")
        if x is None or not x.is_floating_point():
            return None
        return int(x.size(-1)) if x.dim() > 1 else 1

    def _num_tokens(self, attr: str) -> int | None:
        sample = _first(self.splits["train"], attr)
        if sample is None or sample.is_floating_point() or sample.dtype == torch.bool:
            return None
        # Every split counts, not only train: an embedding table sized from train alone would fail
        # on a token that occurs only in val/test. Only the vocabulary size is read, no labels.
        seen = []
        for split in SPLITS:
            values = _stacked(self.splits[split], attr)
            if values is not None and values.numel():
                seen.append(int(values.max()))
        return max(seen) + 1 if seen else None

    @property
    def num_node_tokens(self) -> int | None:
        """Vocabulary size (max token + 1) of integer node features ``x``; ``None`` for float features."""
        return self._num_tokens("x")

    @property
    def num_edge_tokens(self) -> int | None:
        """Vocabulary size (max token + 1) of integer ``edge_attr``; ``None`` for float or no edge features."""
        return self._num_tokens("edge_attr")

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={len(v)}" for k, v in self.splits.items())
        return f"DataModule({sizes}, batch_size={self.batch_size}, eval_batch_size={self.eval_batch_size})"
