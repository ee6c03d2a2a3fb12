"""AQSOL (Benchmarking GNNs): aqueous-solubility regression on molecular graphs."""
from __future__ import annotations

import os

from torch_geometric.data import Dataset
from torch_geometric.datasets import AQSOL

from gnnlab.data._offline import copy_offline, download_errors, prepare_root

__all__ = ["load_aqsol"]


def load_aqsol(root: str | os.PathLike, offline_dir: str | os.PathLike | None = None) -> dict[str, Dataset]:
    """Load the AQSOL train/val/test splits as ``{'train': ..., 'val': ..., 'test': ...}``.

    Nodes carry an atom-type token (long ``x`` of shape ``[N]``), edges a bond-type token (long
    ``edge_attr`` of shape ``[E]``), and each graph a float solubility target ``y`` of shape ``[1]``.
    PyG drops the molecules without bonds, leaving 7836/998/999 graphs. Files live in ``root/AQSOL/``;
    the raw pickles are first copied from ``<offline_dir>/AQSOL/raw`` when it exists (see
    :func:`~gnnlab.data.shared_data_dir`), otherwise PyG downloads them.
    """
    base = prepare_root(root) / "AQSOL"
    copy_offline("AQSOL/raw", base / "raw", offline_dir)
    with download_errors("AQSOL", base, "AQSOL/raw", offline_dir):
        splits = {split: AQSOL(str(base), split=split) for split in ("train", "val", "test")}
    for dataset in splits.values():  # the Benchmarking-GNNs atom and bond dictionaries
        dataset.vocabulary = {"x": 65, "edge_attr": 5}
    return splits
