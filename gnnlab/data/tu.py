"""TU graph-classification datasets (MUTAG, PROTEINS, ...) with k-fold cross-validation splits.

Two split protocols:

* **Fixed splits file** (fair-comparison protocol of Errica et al., ICLR 2020). When ``splits_file`` is
  given, or a ``<name>_splits.json`` exists in ``root/TUDataset/<name>/`` or in the offline copies
  (``<offline_dir>/TUDataset/<name>/``, copied into the root), fold ``k`` is taken from it. The file is a
  JSON list with one entry per fold, ``{"test": [...], "model_selection": [{"train": [...],
  "validation": [...]}]}``; the first model-selection split of the fold gives train/val. The offline
  copies ship such a file for PROTEINS.
* **Stratified k-fold** otherwise (MUTAG, or PROTEINS without the file): scikit-learn's
  ``StratifiedKFold(num_folds, shuffle=True, random_state=seed)`` picks the test fold and a stratified
  10 % of the remaining graphs (``random_state=seed``) becomes the validation set.

Datasets whose graphs have no node features (the social-network sets such as IMDB-BINARY) get a
constant feature ``x = 1`` of width 1 through a transform, so every model sees an ``x``.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import StratifiedKFold, train_test_split
from torch_geometric.data import Dataset
from torch_geometric.datasets import TUDataset
from torch_geometric.transforms import Constant

from gnnlab.data._offline import copy_offline, download_errors, prepare_root
from gnnlab.data.checks import choice
from gnnlab.errors import ConfigError, DataError

__all__ = ["TU_NAMES", "VAL_FRACTION", "load_tu", "read_splits_file"]

log = logging.getLogger(__name__)

#: Datasets this loader accepts (the usual graph-classification benchmarks of the TU collection).
TU_NAMES = (
    "MUTAG", "PROTEINS", "PROTEINS_full", "NCI1", "NCI109", "DD", "ENZYMES", "PTC_MR",
    "IMDB-BINARY", "IMDB-MULTI", "REDDIT-BINARY", "REDDIT-MULTI-5K", "COLLAB",
)

#: Share of the training part held out for validation in the stratified k-fold protocol.
VAL_FRACTION = 0.1


def read_splits_file(path: str | os.PathLike, num_graphs: int) -> list[dict[str, list[int]]]:
    """Read a fair-comparison splits JSON into ``[{'train': [...], 'val': [...], 'test': [...]}, ...]``.

    Checks the layout and that every index is a valid graph index below ``num_graphs``; raises
    ``ValueError`` naming the file otherwise.
    """
    path = Path(path)
    with open(path) as f:
        raw = json.load(f)
    if not isinstance(raw, list) or not raw:
        raise DataError(f"splits file {path} must hold a non-empty JSON list of folds")
    folds = []
    for k, entry in enumerate(raw):
        try:
            selection = entry["model_selection"][0]
            fold = {"train": selection["train"], "val": selection["validation"], "test": entry["test"]}
        except (KeyError, IndexError, TypeError) as err:
            raise DataError(
                f"splits file {path}, fold {k}: expected {{'test': [...], 'model_selection': "
                f"[{{'train': [...], 'validation': [...]}}]}} ({err!r})"
            ) from err
        for part, idx in fold.items():
            arr = np.asarray(idx)
            if arr.ndim != 1 or (arr.size and (not np.issubdtype(arr.dtype, np.integer)
                                               or arr.min() < 0 or arr.max() >= num_graphs)):
                raise DataError(
                    f"splits file {path}, fold {k}, {part}: indices must be integers in [0, {num_graphs})"
                )
        folds.append({part: [int(i) for i in idx] for part, idx in fold.items()})
    return folds


def _find_splits_file(base: Path, name: str, offline_dir: str | os.PathLike | None) -> Path | None:
    local = base / name / f"{name}_splits.json"
    copy_offline(f"TUDataset/{name}/{name}_splits.json", local, offline_dir)
    return local if local.is_file() else None


def _stratified_fold(labels: np.ndarray, fold: int, num_folds: int, seed: int) -> dict[str, np.ndarray]:
    skf = StratifiedKFold(n_splits=num_folds, shuffle=True, random_state=seed)
    train_val, test = list(skf.split(np.zeros(len(labels)), labels))[fold]
    train, val = train_test_split(
        train_val, test_size=VAL_FRACTION, stratify=labels[train_val], random_state=seed
    )
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


def load_tu(
    root: str | os.PathLike,
    name: str,
    fold: int = 0,
    num_folds: int = 10,
    seed: int = 0,
    splits_file: str | os.PathLike | None = None,
    offline_dir: str | os.PathLike | None = None,
) -> dict[str, Dataset]:
    """Load fold ``fold`` of a TU dataset as ``{'train': ..., 'val': ..., 'test': ...}`` subsets.

    Files live in ``root/TUDataset/<name>/``; raw files are copied first from
    ``<offline_dir>/TUDataset/<name>/raw`` when it exists (see :func:`~gnnlab.data.shared_data_dir`),
    otherwise PyG downloads them. See the module docstring for the two split protocols; with a splits
    file, ``num_folds`` must match its number of folds. Raises ``ValueError`` for an unknown name or a
    fold outside ``[0, num_folds)``.
    """
    canonical = choice(name, TU_NAMES, "TU dataset")
    if isinstance(num_folds, bool) or not isinstance(num_folds, (int, np.integer)) or num_folds < 2:
        raise ConfigError(f"num_folds must be an integer >= 2, got {num_folds!r}")
    if isinstance(fold, bool) or not isinstance(fold, (int, np.integer)) or not 0 <= fold < num_folds:
        raise ConfigError(f"fold must be an integer in [0, {num_folds}), got {fold!r}")

    base = prepare_root(root) / "TUDataset"
    offline = f"TUDataset/{canonical}/raw"
    copy_offline(offline, base / canonical / "raw", offline_dir)
    with download_errors(canonical, base / canonical, offline, offline_dir):
        dataset = TUDataset(str(base), canonical)
    if dataset.num_node_features == 0:
        # Set before subsetting: index_select copies the dataset, transform included.
        dataset.transform = Constant(value=1.0)

    path = Path(splits_file) if splits_file is not None else _find_splits_file(base, canonical, offline_dir)
    if path is not None:
        folds = read_splits_file(path, len(dataset))
        if len(folds) != num_folds:
            raise ConfigError(f"splits file {path} has {len(folds)} folds but num_folds={num_folds}")
        index = {part: np.asarray(idx, dtype=np.int64) for part, idx in folds[fold].items()}
        log.info("%s fold %d from splits file %s", canonical, fold, path)
    else:
        labels = dataset.y.numpy()
        index = _stratified_fold(labels, int(fold), int(num_folds), int(seed))
        log.info("%s fold %d/%d by stratified k-fold (seed %d)", canonical, fold, num_folds, seed)

    return {part: dataset[torch.from_numpy(idx)] for part, idx in index.items()}
