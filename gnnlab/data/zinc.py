"""ZINC (Benchmarking GNNs): constrained-solubility regression on molecular graphs.

Two variants, both read by PyG's :class:`~torch_geometric.datasets.ZINC` from ``root/ZINC/``:

* **ZINC-12k** (``subset=True``, the Benchmarking-GNNs / GraphGPS benchmark): 10000 / 1000 / 1000 graphs.
* **ZINC-full** (``subset=False``): about 250k graphs (220011 / 24445 / 5000).

The offline copy of ZINC is a builder script, ``<offline_dir>/ZINC/build_zinc_subset.py`` (it needs
``rdkit`` and ``networkx``), not raw files. ``python scripts/build_zinc.py`` runs it once and writes
``root/ZINC/raw/``; until then the loader stops with an error giving that command. The built pickles hold
only the subset molecules, so the raw folder gets a marker file (:data:`OFFLINE_MARKER`) and
``subset=False`` then stops with an error instead of processing a wrong "full" dataset. Full ZINC always
comes from PyG's download.
"""
from __future__ import annotations

import os

from torch_geometric.data import Dataset
from torch_geometric.datasets import ZINC

from gnnlab.data._offline import download_errors, prepare_root, shared_data_dir
from gnnlab.errors import ConfigError, DataError

__all__ = ["OFFLINE_BUILDER", "OFFLINE_MARKER", "RAW_FILES", "load_zinc"]

#: The builder script, relative to the offline copies folder.
OFFLINE_BUILDER = "ZINC/build_zinc_subset.py"

#: File written into ``root/ZINC/raw`` when the raw files were built offline (subset molecules only).
OFFLINE_MARKER = "BUILT_OFFLINE_SUBSET_ONLY"

#: The raw files PyG's ``ZINC`` reads from ``root/ZINC/raw``.
RAW_FILES = tuple(f"{split}.{ext}" for ext in ("pickle", "index") for split in ("train", "val", "test"))


def load_zinc(
    root: str | os.PathLike, subset: bool = True, offline_dir: str | os.PathLike | None = None
) -> dict[str, Dataset]:
    """Load ZINC as ``{'train': ..., 'val': ..., 'test': ...}`` of PyG ``ZINC`` datasets.

    Graphs are kept as PyG gives them: ``x`` is the atom-type token (long, shape ``[N, 1]``, 28
    types), ``edge_attr`` the bond-type token (long, shape ``[E]``, values 1-3 for single / double /
    triple, 0 being the unused "no bond" entry of the 4-type vocabulary), ``y`` the constrained
    solubility (float, shape ``[1]``).

    Args:
        root: the data root; files live in ``root/ZINC/`` (``raw/`` shared by both variants,
            ``subset/processed/`` and ``full/processed/``).
        subset: ``True`` for ZINC-12k (10000 / 1000 / 1000 graphs), ``False`` for the full ~250k.
        offline_dir: the offline copies folder (see :func:`~gnnlab.data.shared_data_dir`).

    Raises:
        ValueError: ``subset`` is not a bool.
        DataError: raw files missing while the offline builder is there; full ZINC requested on a raw
            folder built offline (subset molecules only).
        DatasetUnavailableError: the download failed (no network and no offline copy).
    """
    if not isinstance(subset, bool):
        raise ConfigError(f"subset must be True (ZINC-12k) or False (full ZINC), got {subset!r}")
    base = prepare_root(root) / "ZINC"
    raw = base / "raw"
    shared = shared_data_dir(offline_dir)
    if subset and shared is not None and (shared / OFFLINE_BUILDER).is_file():
        if any(not (raw / name).is_file() for name in RAW_FILES):
            raise DataError(
                f"ZINC-12k is not in the data root ({base}); build it once from the offline copy "
                f"{shared / OFFLINE_BUILDER} (needs rdkit and networkx, about 20 s): `python scripts/build_zinc.py "
                f"--root {base.parent} --offline-dir {shared}` in the gnnlab checkout; or switch offline copies "
                "off (paths.offline_data_dir='' or GNNLAB_SHARED_DATA='') to let PyG download it"
            )
    elif not subset and (raw / OFFLINE_MARKER).exists():
        raise DataError(
            f"{raw} holds the ZINC-12k subset built from the offline copy, not the full ZINC; full ZINC "
            "(subset=False) has no offline builder and must be downloaded by PyG: use another data root "
            f"(paths.data_dir=...) or delete {raw}"
        )
    with download_errors("ZINC-12k" if subset else "full ZINC", base, OFFLINE_BUILDER if subset else None,
                         offline_dir):
        return {split: ZINC(str(base), subset=subset, split=split) for split in ("train", "val", "test")}
