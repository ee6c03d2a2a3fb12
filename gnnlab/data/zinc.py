"""ZINC (Benchmarking GNNs): constrained-solubility regression on molecular graphs.

Two variants, both read by PyG's :class:`~torch_geometric.datasets.ZINC` from ``root/ZINC/``:

* **ZINC-12k** (``subset=True``, the Benchmarking-GNNs / GraphGPS benchmark): 10000 / 1000 / 1000 graphs.
* **ZINC-full** (``subset=False``): about 250k graphs (220011 / 24445 / 5000).

Offline, the subset is rebuilt from the offline copy: ``shared/data/ZINC/build_zinc_subset.py OUT``
writes ``OUT/raw/{train,val,test}.pickle`` + ``.index`` from the ZINC250k SMILES and the subset index
files (it needs ``rdkit`` and ``networkx``, about 15-20 s). Its pickles hold only the subset molecules,
so a raw folder built this way serves ``subset=True`` only; a marker file (:data:`OFFLINE_MARKER`) in
the raw folder records that, and ``subset=False`` then stops with an error instead of processing a
wrong "full" dataset. The builder has no full-ZINC mode: full ZINC always comes from PyG's download.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

from torch_geometric.data import Dataset
from torch_geometric.datasets import ZINC

from gnnlab.data._offline import download_errors, prepare_root, shared_data_dir
from gnnlab.errors import ConfigError, DataError

__all__ = ["OFFLINE_BUILDER", "OFFLINE_MARKER", "load_zinc"]

log = logging.getLogger(__name__)

#: The builder script, relative to :func:`shared_data_dir`.
OFFLINE_BUILDER = "ZINC/build_zinc_subset.py"

#: File written into ``root/ZINC/raw`` when the raw files were rebuilt offline (subset molecules only).
OFFLINE_MARKER = "BUILT_OFFLINE_SUBSET_ONLY"

_RAW_FILES = tuple(f"{split}.{ext}" for ext in ("pickle", "index") for split in ("train", "val", "test"))
_SPLITS = ("train", "val", "test")


def _missing_raw(raw: Path) -> list[str]:
    return [name for name in _RAW_FILES if not (raw / name).is_file()]


def _run_builder(script: Path, out: Path) -> None:
    """Run the offline builder with this interpreter; raise a readable error when it fails."""
    # cwd is the (writable) temporary folder, so nothing the script might write lands in the shared copy.
    proc = subprocess.run(
        [sys.executable, str(script), str(out)], cwd=out, capture_output=True, text=True, check=False
    )
    if proc.returncode == 0:
        return
    missing = re.search(r"No module named '([^']+)'", proc.stderr)
    if missing:
        module = missing.group(1).split(".")[0]
        raise ModuleNotFoundError(
            f"building ZINC-12k from the offline copy ({script}) needs the '{module}' package: "
            f"`pip install {module}` (or install gnnlab[chem]); alternatively set GNNLAB_SHARED_DATA='' "
            "to let PyG download ZINC"
        )
    tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
    raise RuntimeError(
        f"building ZINC-12k from the offline copy failed ({script} exited with {proc.returncode}):\n{tail}"
    )


def _build_offline_subset(base: Path) -> bool:
    """Fill ``base/raw`` with the builder's output when files are missing and an offline copy exists.

    Returns ``True`` when the builder ran. Files already in ``base/raw`` are kept.
    """
    raw = base / "raw"
    if not _missing_raw(raw):
        return False
    shared = shared_data_dir()
    script = shared / OFFLINE_BUILDER if shared is not None else None
    if script is None or not script.is_file():
        return False

    log.info("building ZINC-12k raw files from the offline copy %s (about 20 s)", script.parent)
    base.mkdir(parents=True, exist_ok=True)
    # Build into a private temporary folder, then move the files in: an interrupted build must not
    # leave a partial raw folder, and two processes building at once must not collide.
    tmp = Path(tempfile.mkdtemp(dir=base, prefix=".zinc-build-"))
    try:
        _run_builder(script, tmp)
        raw.mkdir(parents=True, exist_ok=True)
        for name in _RAW_FILES:
            src, dest = tmp / "raw" / name, raw / name
            if not src.is_file():
                raise RuntimeError(f"the offline ZINC builder {script} did not write raw/{name}")
            # The index files keep the read-only mode of the shared copy; make ours writable.
            src.chmod(src.stat().st_mode | stat.S_IWUSR)
            if not dest.exists():
                os.replace(src, dest)
        (raw / OFFLINE_MARKER).write_text(
            "These raw files were rebuilt from the offline ZINC copy and hold the ZINC-12k subset only.\n"
            "They serve ZINC(subset=True); for the full ZINC, use another data root (or delete this\n"
            "folder) so that PyG downloads the complete files.\n"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return True


def load_zinc(root: str | os.PathLike, subset: bool = True) -> dict[str, Dataset]:
    """Load ZINC as ``{'train': ..., 'val': ..., 'test': ...}`` of PyG ``ZINC`` datasets.

    Graphs are kept as PyG gives them: ``x`` is the atom-type token (long, shape ``[N, 1]``, 28
    types), ``edge_attr`` the bond-type token (long, shape ``[E]``, values 1-3 for single / double /
    triple, 0 being the unused "no bond" entry of the 4-type vocabulary), ``y`` the constrained
    solubility (float, shape ``[1]``).

    Args:
        root: the data root; files live in ``root/ZINC/`` (``raw/`` shared by both variants,
            ``subset/processed/`` and ``full/processed/``).
        subset: ``True`` for ZINC-12k (10000 / 1000 / 1000 graphs), ``False`` for the full ~250k.

    With ``subset=True`` and no raw files yet, the raw files are rebuilt from the offline copy when
    :func:`shared_data_dir` finds ``ZINC/build_zinc_subset.py`` (needs ``rdkit`` and ``networkx``);
    otherwise PyG downloads them. ``subset=False`` has no offline path: PyG downloads the full files.

    Raises:
        ValueError: ``subset`` is not a bool.
        DataError: full ZINC requested on a raw folder rebuilt offline (subset molecules only).
        RuntimeError: the offline build failed.
        DatasetUnavailableError: the download failed (no network and no offline copy).
        ModuleNotFoundError: the offline build needs a package that is not installed (``rdkit``).
    """
    if not isinstance(subset, bool):
        raise ConfigError(f"subset must be True (ZINC-12k) or False (full ZINC), got {subset!r}")
    base = prepare_root(root) / "ZINC"
    raw = base / "raw"
    if subset:
        _build_offline_subset(base)
    elif (raw / OFFLINE_MARKER).exists():
        raise DataError(
            f"{raw} holds the ZINC-12k subset rebuilt from the offline copy, not the full ZINC; full ZINC "
            "(subset=False) has no offline builder and must be downloaded by PyG: use another data root "
            f"(paths.data_dir=...) or delete {raw}"
        )
    # ZINC-12k is rebuilt offline by the builder script of the offline copy; full ZINC has no offline copy.
    with download_errors("ZINC-12k" if subset else "full ZINC", base, OFFLINE_BUILDER if subset else None):
        return {split: ZINC(str(base), subset=subset, split=split) for split in _SPLITS}
