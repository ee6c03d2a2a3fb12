"""AQSOL (Benchmarking GNNs): aqueous-solubility regression on molecular graphs."""
from __future__ import annotations

import os

import torch

from torch_geometric.data import Dataset
from torch_geometric.datasets import AQSOL

from gnnlab.data._offline import copy_offline, download_errors, prepare_root

__all__ = ["load_aqsol"]


def load_aqsol(
    root: str | os.PathLike, offline_dir: str | os.PathLike | None = None, match_benchmarking_gnns: bool = True
) -> dict[str, Dataset]:
    """Load the AQSOL train/val/test splits as ``{'train': ..., 'val': ..., 'test': ...}``.

    Nodes carry an atom-type token (long ``x`` of shape ``[N]``), edges a bond-type token (long
    ``edge_attr`` of shape ``[E]``), and each graph a float solubility target ``y`` of shape ``[1]``.
    PyG drops the molecules without bonds, leaving 7836/998/999 graphs. The Benchmarking-GNNs loader
    builds each graph from its bond list alone and also skips a molecule whose node count then differs
    from its atom list (its last atoms have no bond, e.g. a counter-ion): with ``match_benchmarking_gnns``
    (the default) those are dropped too, leaving its 7831/996/996 graphs. Files live in ``root/AQSOL/``;
    the raw pickles are first copied from ``<offline_dir>/AQSOL/raw`` when it exists (see
    :func:`~gnnlab.data.shared_data_dir`), otherwise PyG downloads them.
    """
    base = prepare_root(root) / "AQSOL"
    copy_offline("AQSOL/raw", base / "raw", offline_dir)
    with download_errors("AQSOL", base, "AQSOL/raw", offline_dir):
        splits = {split: AQSOL(str(base), split=split) for split in ("train", "val", "test")}
    if match_benchmarking_gnns:
        splits = {split: _bonds_reach_every_atom(dataset) for split, dataset in splits.items()}
    for dataset in splits.values():  # the Benchmarking-GNNs atom and bond dictionaries
        dataset.vocabulary = {"x": 65, "edge_attr": 5}
    return splits


def _bonds_reach_every_atom(dataset: AQSOL) -> Dataset:
    """The graphs whose largest bonded atom index is their last atom's (a view of ``dataset``), read from
    the collated storage in one pass (edge indices there are per graph)."""
    data, slices = dataset._data, dataset.slices
    edges = slices["edge_index"].diff()
    graph = torch.repeat_interleave(torch.arange(edges.numel()), edges)
    last = torch.full((edges.numel(),), -1).scatter_reduce(0, graph, data.edge_index.max(0).values, "amax")
    keep = torch.nonzero(last + 1 == slices["x"].diff()).flatten()
    return dataset if keep.numel() == len(dataset) else dataset[keep]
