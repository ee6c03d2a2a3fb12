"""Peptides-func and Peptides-struct from the Long Range Graph Benchmark (Dwivedi et al., NeurIPS 2022 D&B).

15,535 peptides given as SMILES, turned into molecular graphs with OGB's featurisation
(``ogb.utils.smiles2graph``, which needs ``rdkit``) and split with the official stratified split pickle:

* **peptides-func**: 10 binary labels per peptide (multi-label classification, average precision).
* **peptides-struct**: 11 structural properties per peptide, standardised to zero mean and unit variance
  (regression, MAE).

The raw files are the official LRGB files (the ones the LRGB/GraphGPS loaders download, checked by MD5
here after a download): a gzipped CSV and a pickle ``{'train': array, 'val': array, 'test': array}`` of
row indices. PyG's own ``LRGBDataset`` reads a different, preprocessed archive, which is why this module
builds the graphs itself. Offline copies (peptides-func only): see :func:`load_peptides`.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import importlib.util
import logging
import math
import os
import os.path as osp
import pickle
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch_geometric.data import Data, Dataset, InMemoryDataset, download_url

from gnnlab.data._offline import copy_offline, prepare_root, unavailable_message
from gnnlab.data.checks import SPLITS, choice
from gnnlab.errors import ConfigError, DataError, DatasetUnavailableError

__all__ = ["PEPTIDES_NAMES", "STRUCT_TARGETS", "PeptidesDataset", "load_peptides", "read_split_pickle"]

log = logging.getLogger(__name__)

#: Columns of ``x`` and ``edge_attr`` (OGB's featurisation).
NUM_ATOM_FEATURES = 9
NUM_BOND_FEATURES = 3

#: Targets of peptides-struct, in column order of ``y``.
STRUCT_TARGETS = (
    "Inertia_mass_a", "Inertia_mass_b", "Inertia_mass_c",
    "Inertia_valence_a", "Inertia_valence_b", "Inertia_valence_c",
    "length_a", "length_b", "length_c",
    "Spherocity", "Plane_best_fit",
)


@dataclass(frozen=True)
class _RawFile:
    filename: str
    dropbox: str  # the folder key of the LRGB authors' Dropbox link
    md5: str

    @property
    def url(self) -> str:
        """The Dropbox link (as used by the LRGB and GraphGPS loaders); "?dl=1" asks for the file, not a preview."""
        return f"https://www.dropbox.com/s/{self.dropbox}/{self.filename}?dl=1"


@dataclass(frozen=True)
class _Spec:
    csv: _RawFile
    split: _RawFile
    num_targets: int
    # None: the targets are the list in the ``labels`` column (func); otherwise these columns (struct).
    target_columns: tuple[str, ...] | None
    # Folder of the offline copy, relative to the offline copies folder, or None when there is none.
    offline: str | None


_SPECS = {
    "peptides-func": _Spec(
        csv=_RawFile("peptide_multi_class_dataset.csv.gz", "ol2v01usvaxbsr8", "701eb743e899f4d793f0e13c8fa5a1b4"),
        split=_RawFile("splits_random_stratified_peptide.pickle", "j4zcnx2eipuo0xz",
                       "5a0114bdadc80b94fc7ae974f13ef061"),
        num_targets=10,
        target_columns=None,
        offline="LRGB/peptides-func/source",
    ),
    "peptides-struct": _Spec(
        csv=_RawFile("peptide_structure_normalized_dataset.csv.gz", "0d4aalmq4b4e2nh",
                     "c240c1c15466b5c907c63e180fa8aa89"),
        split=_RawFile("splits_random_stratified_peptide_structure.pickle", "9dfifzft1hqgow6",
                       "5a0114bdadc80b94fc7ae974f13ef061"),
        num_targets=len(STRUCT_TARGETS),
        target_columns=STRUCT_TARGETS,
        offline=None,
    ),
}

#: Dataset names :class:`PeptidesDataset` accepts.
PEPTIDES_NAMES = tuple(_SPECS)


def _canonical_name(name: str) -> str:
    key = str(name).strip().lower().replace("_", "-")
    if key not in _SPECS:
        raise ConfigError(f"unknown Peptides dataset {name!r}; valid names: {', '.join(PEPTIDES_NAMES)}")
    return key


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _smiles2graph() -> Callable[[str], dict]:
    missing = [m for m in ("rdkit", "ogb") if importlib.util.find_spec(m) is None]
    if missing:
        raise ModuleNotFoundError(
            f"building the Peptides graphs needs {' and '.join(missing)}: `pip install {' '.join(missing)}` "
            "(or install gnnlab[chem])"
        )
    from ogb.utils.mol import smiles2graph

    return smiles2graph


def _quiet_rdkit() -> object:
    """Silence RDKit's log while the returned object is alive (``rdBase.BlockLogs`` restores it).

    RDKit releases before 2022.03 lack ``BlockLogs``; their log is left as it is.
    """
    from rdkit import rdBase

    block_logs = getattr(rdBase, "BlockLogs", None)
    return block_logs() if block_logs is not None else object()


def _parse_labels(text: str, row: int, path: Path) -> list[float]:
    # The labels column holds a Python-style list such as "[0, 1, 0]"; float() also reads "nan".
    body = text.strip()
    if not (body.startswith("[") and body.endswith("]")):
        raise DataError(f"{path}, row {row}: labels {text!r} is not a list such as '[0, 1, 0]'")
    try:
        return [float(v) for v in body[1:-1].split(",") if v.strip()]
    except ValueError as err:
        raise DataError(f"{path}, row {row}: labels {text!r} are not numbers") from err


def read_split_pickle(path: str | os.PathLike, num_graphs: int) -> dict[str, np.ndarray]:
    """Read an LRGB split pickle into ``{'train', 'val', 'test'}`` int64 index arrays.

    Raises ``ValueError`` naming the file when a split is missing, an index is not an integer in
    ``[0, num_graphs)``, or two splits share a graph.
    """
    path = Path(path)
    with open(path, "rb") as f:
        raw = pickle.load(f)
    if not isinstance(raw, dict) or any(s not in raw for s in SPLITS):
        keys = sorted(map(str, raw)) if isinstance(raw, dict) else type(raw).__name__
        raise DataError(f"split file {path} must hold a dict with keys 'train', 'val', 'test' (got {keys})")
    out = {}
    for split in SPLITS:
        idx = np.asarray(raw[split])
        if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
            raise DataError(f"split file {path}: '{split}' must be a 1-D array of integer indices")
        if idx.size and (idx.min() < 0 or idx.max() >= num_graphs):
            raise DataError(
                f"split file {path}: '{split}' has indices outside [0, {num_graphs}) "
                f"(the CSV holds {num_graphs} molecules)"
            )
        out[split] = idx.astype(np.int64)
    all_idx = np.concatenate(list(out.values()))
    if np.unique(all_idx).size != all_idx.size:
        raise DataError(f"split file {path}: a graph appears twice (within or across train/val/test)")
    return out


class PeptidesDataset(InMemoryDataset):
    r"""One split of Peptides-func or Peptides-struct (LRGB) as a PyG ``InMemoryDataset``.

    Each graph is a peptide's molecular graph with OGB's featurisation:

    - ``x``: ``(N, 9)`` long, the 9 OGB atom features (the columns' vocabulary sizes: :attr:`vocabulary`);
    - ``edge_index``: ``(2, E)`` long, both directions of every bond;
    - ``edge_attr``: ``(E, 3)`` long, the 3 OGB bond features;
    - ``y``: ``(1, 10)`` float 0/1 labels (func; the official file has no missing labels, NaN would mark
      one) or ``(1, 11)`` float standardised targets (struct, columns :data:`STRUCT_TARGETS`).

    Files live in ``root/<name>/raw`` (the CSV and the split pickle) and ``root/<name>/processed``
    (``train.pt``, ``val.pt``, ``test.pt``, all built by one :meth:`process` call).

    Args:
        root (str): Folder holding one sub-folder per dataset name.
        name (str, optional): ``"peptides-func"`` or ``"peptides-struct"``. (default: ``"peptides-func"``)
        split (str, optional): ``"train"``, ``"val"`` or ``"test"``. (default: ``"train"``)
        transform, pre_transform (callable, optional): As in PyG.
        pre_filter (callable, optional): As in PyG; it is applied within each split, so split membership
            still follows the official pickle.
        force_reload (bool, optional): Rebuild the processed files. (default: :obj:`False`)
        offline_dir (str, optional): The offline copies folder (see :func:`~gnnlab.data.shared_data_dir`).

    Raises:
        ValueError: unknown ``name`` or ``split``; malformed CSV or split pickle.
        DatasetUnavailableError: raw files missing and the download failed (the message names the dataset,
            the files, the folders looked in and how to provide them).
        ModuleNotFoundError: ``rdkit``/``ogb`` are needed to build the graphs and are not installed.
    """

    #: OGB's feature dictionaries (``ogb.utils.features.get_atom_feature_dims()``, ``get_bond_feature_dims()``),
    #: which size the embedding tables; fewer values occur in the peptides.
    vocabulary = {"x": [119, 5, 12, 12, 10, 6, 6, 2, 2], "edge_attr": [5, 6, 2]}

    def __init__(
        self,
        root: str | os.PathLike,
        name: str = "peptides-func",
        split: str = "train",
        transform: Callable | None = None,
        pre_transform: Callable | None = None,
        pre_filter: Callable | None = None,
        force_reload: bool = False,
        offline_dir: str | os.PathLike | None = None,
    ) -> None:
        self.name = _canonical_name(name)
        self.offline_dir = offline_dir
        self.split = choice(split, SPLITS, "split", "splits")
        self.spec = _SPECS[self.name]
        super().__init__(str(root), transform, pre_transform, pre_filter, force_reload=force_reload)
        self.load(self.processed_paths[SPLITS.index(split)])

    @property
    def raw_dir(self) -> str:
        """``root/<name>/raw``."""
        return osp.join(self.root, self.name, "raw")

    @property
    def processed_dir(self) -> str:
        """``root/<name>/processed``."""
        return osp.join(self.root, self.name, "processed")

    @property
    def raw_file_names(self) -> list[str]:
        """The official CSV and split pickle."""
        return [self.spec.csv.filename, self.spec.split.filename]

    @property
    def processed_file_names(self) -> list[str]:
        """One file per split."""
        return [f"{split}.pt" for split in SPLITS]

    def download(self) -> None:
        """Copy the raw files from the offline copy when there is one, else download them (MD5-checked)."""
        raw = Path(self.raw_dir)
        if self.spec.offline is not None:
            copy_offline(self.spec.offline, raw, self.offline_dir)
        missing = [f for f in (self.spec.csv, self.spec.split) if not (raw / f.filename).is_file()]
        errors = []
        for file in missing:
            # Download into a private folder first: an interrupted download must not leave a truncated
            # file that would pass for a complete raw file.
            tmp = Path(tempfile.mkdtemp(dir=raw, prefix=".download-"))
            try:
                path = Path(download_url(file.url, str(tmp), log=self.log, filename=file.filename))
                digest = _md5(path)
                if digest != file.md5:
                    raise DataError(
                        f"{self.name}: {file.filename} downloaded from {file.url} has MD5 {digest}, "
                        f"expected {file.md5} (the file changed upstream or the download is corrupt)"
                    )
                os.replace(path, raw / file.filename)
            except OSError as err:  # URLError and HTTPError are OSErrors
                errors.append((file.filename, err))
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        if errors:
            reason = ", ".join(f"{name}: {err}" for name, err in errors)
            message = unavailable_message(self.name, raw, self.spec.offline, reason, self.offline_dir)
            raise DatasetUnavailableError(message) from errors[0][1]

    def _read_csv(self) -> tuple[list[str], list[list[float]]]:
        path = Path(self.raw_dir) / self.spec.csv.filename
        columns = self.spec.target_columns
        smiles, targets = [], []
        with gzip.open(path, "rt", newline="") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            needed = ["smiles", *(columns if columns is not None else ["labels"])]
            absent = [c for c in needed if c not in header]
            if absent:
                raise DataError(f"{path}: missing column(s) {', '.join(absent)} (header: {', '.join(header)})")
            for row_id, row in enumerate(reader):
                if columns is None:
                    y = _parse_labels(row["labels"] or "", row_id, path)
                else:
                    try:
                        y = [float(row[c]) for c in columns]
                    except (TypeError, ValueError) as err:  # TypeError: a short row (missing cells)
                        raise DataError(f"{path}, row {row_id}: a target is not a number ({err})") from err
                if len(y) != self.spec.num_targets:
                    raise DataError(
                        f"{path}, row {row_id}: {len(y)} targets, expected {self.spec.num_targets} for {self.name}"
                    )
                if not row["smiles"]:
                    raise DataError(f"{path}, row {row_id}: empty SMILES")
                smiles.append(row["smiles"])
                targets.append(y)
        if not smiles:
            raise DataError(f"{path}: no molecules")
        return smiles, targets

    def _progress(self, message: str) -> None:
        if self.log:
            print(message, file=sys.stderr)

    def process(self) -> None:
        """Convert every SMILES to a graph (progress every ~10 %), then save one file per split."""
        smiles2graph = _smiles2graph()
        smiles, targets = self._read_csv()
        index = read_split_pickle(Path(self.raw_dir) / self.spec.split.filename, len(smiles))

        n = len(smiles)
        step = max(1, math.ceil(n / 10))
        self._progress(f"{self.name}: converting {n} SMILES to graphs")
        graphs = []
        # RDKit warns about every peptide with an explicit lone hydrogen; keep the progress readable.
        quiet = _quiet_rdkit()
        for i, (smi, y) in enumerate(zip(smiles, targets)):
            try:
                g = smiles2graph(smi)
            except Exception as err:  # rdkit returns None for an unreadable SMILES; ogb then fails
                raise DataError(f"{self.name}: molecule {i} has an unreadable SMILES {smi!r} ({err!r})") from err
            graphs.append(Data(
                x=torch.from_numpy(g["node_feat"]).long().view(-1, NUM_ATOM_FEATURES),  # (N, 9)
                edge_index=torch.from_numpy(g["edge_index"]).long().view(2, -1),  # (2, E)
                edge_attr=torch.from_numpy(g["edge_feat"]).long().view(-1, NUM_BOND_FEATURES),  # (E, 3)
                y=torch.tensor(y, dtype=torch.float).view(1, -1),  # (1, T)
            ))
            if (i + 1) % step == 0 or i + 1 == n:
                self._progress(f"{self.name}: {i + 1}/{n} molecules ({100 * (i + 1) // n}%)")
        del quiet

        for split, path in zip(SPLITS, self.processed_paths):
            data_list = [graphs[i] for i in index[split]]
            if self.pre_filter is not None:
                data_list = [d for d in data_list if self.pre_filter(d)]
            if self.pre_transform is not None:
                data_list = [self.pre_transform(d) for d in data_list]
            self.save(data_list, path)
        log.info("%s: processed %d graphs into %s", self.name, n, self.processed_dir)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, split={self.split!r}, graphs={len(self)})"


def load_peptides(
    root: str | os.PathLike, name: str = "peptides-func", offline_dir: str | os.PathLike | None = None
) -> dict[str, Dataset]:
    """Load Peptides-func or Peptides-struct as ``{'train': ..., 'val': ..., 'test': ...}``.

    Files live in ``root/LRGB/<name>/``. For peptides-func the raw files are copied from
    ``<offline_dir>/LRGB/peptides-func/source`` when it exists; otherwise, and always for
    peptides-struct, they are downloaded. The first call converts all 15,535 SMILES (about half a minute
    to a few minutes, depending on the machine); later calls read the processed files. See
    :class:`PeptidesDataset` for the graph layout and the errors raised.
    """
    canonical = _canonical_name(name)
    base = prepare_root(root) / "LRGB"
    return {split: PeptidesDataset(base, canonical, split=split, offline_dir=offline_dir) for split in SPLITS}
