"""Planetoid citation graphs (Cora, CiteSeer, PubMed) for transductive node classification."""
from __future__ import annotations

import os

from torch_geometric.data import Dataset
from torch_geometric.datasets import Planetoid
from torch_geometric.transforms import NormalizeFeatures

from gnnlab.data._offline import copy_offline, download_errors, prepare_root
from gnnlab.data.checks import choice

__all__ = ["PLANETOID_NAMES", "PLANETOID_SPLITS", "load_planetoid"]

PLANETOID_NAMES = ("Cora", "CiteSeer", "PubMed")
PLANETOID_SPLITS = ("public", "full", "geom-gcn", "random")


def load_planetoid(
    root: str | os.PathLike,
    name: str = "Cora",
    split: str = "public",
    normalize_features: bool = True,
    offline_dir: str | os.PathLike | None = None,
) -> dict[str, Dataset]:
    """Load a Planetoid graph; ``train``, ``val`` and ``test`` all map to the same one-graph dataset.

    The graph carries ``train_mask``, ``val_mask`` and ``test_mask`` (for the public split 140/500/1000
    nodes on Cora). ``name`` is matched case-insensitively. Files live in ``root/Planetoid/<name>/``; the
    raw files are first copied from ``<offline_dir>/Planetoid/<name>/raw`` when it exists, otherwise PyG
    downloads them. Row-normalisation of the features is applied on access (a transform, not a
    pre-transform), so the cached processed file does not depend on ``normalize_features``.
    """
    canonical = choice(name, PLANETOID_NAMES, "Planetoid dataset")
    choice(split, PLANETOID_SPLITS, "Planetoid split", "splits")
    base = prepare_root(root) / "Planetoid"
    offline = f"Planetoid/{canonical}/raw"
    copy_offline(offline, base / canonical / "raw", offline_dir)
    transform = NormalizeFeatures() if normalize_features else None
    with download_errors(canonical, base / canonical, offline, offline_dir):
        dataset = Planetoid(str(base), canonical, split=split, transform=transform)
    return {"train": dataset, "val": dataset, "test": dataset}
