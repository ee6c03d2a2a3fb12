"""AQSOL (Benchmarking GNNs): aqueous-solubility regression on molecular graphs."""
from __future__ import annotations

import os

from torch_geometric.data import Dataset
from torch_geometric.datasets import AQSOL

from gnnlab.data._offline import copy_offline, download_errors, prepare_root

__all__ = ["load_aqsol"]


def load_aqsol(root: str | os.PathLike) -> dict[str, Dataset]:
    """Load the AQSOL train/val/test splits as ``{'train': ..., 'val': ..., 'test': ...}``.

    Nodes carry an atom-type token (long ``x`` of shape ``[N]``), edges a bond-type token (long
    ``edge_attr`` of shape ``[E]``), and each graph a float solubility target ``y`` of shape ``[1]``.
    PyG drops the molecules without bonds, leaving 7836/998/999 graphs. Files live in ``root/AQSOL/``;
    the raw pickles are first copied from an offline copy (``shared/data/AQSOL/raw``) when one exists,
    otherwise PyG downloads them.
    """
    base = prepare_root(root) / "AQSOL"
    copy_offline("AQSOL/raw", base / "raw")
    with download_errors("AQSOL", base, "AQSOL/raw"):
        return {split: AQSOL(str(base), split=split) for split in ("train", "val", "test")}
