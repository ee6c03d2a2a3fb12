"""ZINC loader: PyG's raw layout on tiny generated molecules, the offline build path, and the real copy."""
from __future__ import annotations

import importlib.util
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from urllib.error import URLError

import pytest
import torch
from torch_geometric.data import InMemoryDataset

from gnnlab.data import load_zinc
from gnnlab.data.datamodule import dataset_facts
from gnnlab.data.zinc import OFFLINE_MARKER
from gnnlab.errors import DataError, DatasetUnavailableError

SPLITS = ("train", "val", "test")
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "build_zinc.py"


def _build_zinc():
    """The offline build command, ``scripts/build_zinc.py``, as a module."""
    spec = importlib.util.spec_from_file_location("build_zinc", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _molecule(num_atoms: int, seed: int) -> dict:
    """A ring molecule in the layout of PyG's ZINC pickles (atom tokens, bond-type adjacency, target)."""
    gen = torch.Generator().manual_seed(seed)
    adj = torch.zeros(num_atoms, num_atoms, dtype=torch.long)
    bonds = torch.randint(1, 4, (num_atoms,), generator=gen)
    for i in range(num_atoms):
        j = (i + 1) % num_atoms
        adj[i, j] = adj[j, i] = bonds[i]
    return {
        "num_atom": num_atoms,
        "atom_type": torch.randint(0, 28, (num_atoms,), generator=gen),
        "bond_type": adj,
        "logP_SA_cycle_normalized": torch.randn(1, generator=gen),
    }


#: Molecules per split in the tiny raw folders, and the subset's indices into them.
SIZES = {"train": 6, "val": 4, "test": 3}
SUBSET = {"train": [0, 2, 5], "val": [1, 3], "test": [2]}


def _write_raw(raw: Path, subset_only: bool = False) -> dict[str, list[dict]]:
    """Write PyG's six raw files; ``subset_only`` mimics the offline builder (dict of subset molecules)."""
    raw.mkdir(parents=True, exist_ok=True)
    mols = {}
    for k, split in enumerate(SPLITS):
        mols[split] = [_molecule(3 + (i % 4), seed=100 * k + i) for i in range(SIZES[split])]
        content = {i: mols[split][i] for i in SUBSET[split]} if subset_only else mols[split]
        with open(raw / f"{split}.pickle", "wb") as f:
            pickle.dump(content, f)
        # PyG strips the last character of the index file (a trailing newline upstream).
        (raw / f"{split}.index").write_text(",".join(map(str, SUBSET[split])) + "\n")
    return mols


@pytest.fixture
def no_shared(monkeypatch):
    """No offline copies, whatever the machine has."""
    monkeypatch.setenv("GNNLAB_SHARED_DATA", "")


def test_subset_and_full_from_raw_files(tmp_path, no_shared):
    mols = _write_raw(tmp_path / "ZINC" / "raw")
    subset = load_zinc(tmp_path)
    assert {k: len(v) for k, v in subset.items()} == {k: len(v) for k, v in SUBSET.items()}
    for split in SPLITS:
        for graph, idx in zip(subset[split], SUBSET[split]):
            mol = mols[split][idx]
            assert graph.x.dtype == torch.long and graph.x.shape == (mol["num_atom"], 1)
            assert torch.equal(graph.x.view(-1), mol["atom_type"])
            assert graph.edge_attr.dtype == torch.long and graph.edge_attr.shape == (graph.edge_index.size(1),)
            assert graph.edge_index.size(1) == 2 * mol["num_atom"]  # a ring, both directions
            assert graph.y.dtype == torch.float and graph.y.shape == (1,)
            assert torch.equal(graph.y, mol["logP_SA_cycle_normalized"])
    full = load_zinc(tmp_path, subset=False)
    assert {k: len(v) for k, v in full.items()} == SIZES
    assert (tmp_path / "ZINC" / "subset" / "processed").is_dir()
    assert (tmp_path / "ZINC" / "full" / "processed").is_dir()


FAKE_BUILDER = '''
"""Stand-in for build_zinc_subset.py: writes OUT/raw like the real one, from a pickle next to it."""
import os, pickle, shutil, sys
here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(sys.argv[1], "raw")
os.makedirs(out, exist_ok=True)
for name in os.listdir(os.path.join(here, "built")):
    shutil.copy(os.path.join(here, "built", name), os.path.join(out, name))
print("built")
'''


def _fake_shared(tmp_path: Path, builder: str) -> Path:
    shared = tmp_path / "shared"
    (shared / "ZINC").mkdir(parents=True)
    (shared / "ZINC" / "build_zinc_subset.py").write_text(textwrap.dedent(builder))
    return shared


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def test_offline_build_fills_raw_and_blocks_full(tmp_path):
    shared = _fake_shared(tmp_path, FAKE_BUILDER)
    mols = _write_raw(shared / "ZINC" / "built", subset_only=True)
    before = _snapshot(shared)
    root = tmp_path / "data"

    # The loader does not build: it names the command that does, and writes nothing.
    with pytest.raises(DataError, match=r"scripts/build_zinc\.py --root .*--offline-dir") as info:
        load_zinc(root, offline_dir=shared)
    assert str(shared / "ZINC" / "build_zinc_subset.py") in str(info.value)
    assert not (root / "ZINC" / "raw").exists()

    assert _build_zinc().build(root, shared) is True
    splits = load_zinc(root, offline_dir=shared)
    assert {k: len(v) for k, v in splits.items()} == {k: len(v) for k, v in SUBSET.items()}
    assert torch.equal(splits["val"][1].x.view(-1), mols["val"][SUBSET["val"][1]]["atom_type"])
    raw = root / "ZINC" / "raw"
    assert (raw / OFFLINE_MARKER).is_file()
    assert not list((root / "ZINC").glob(".zinc-build-*")), "the temporary build folder was left behind"
    assert _snapshot(shared) == before, "the offline copy was modified"

    # The offline raw files hold subset molecules only: the full dataset must not be built from them.
    with pytest.raises(DataError, match="subset.*download"):
        load_zinc(root, subset=False, offline_dir=shared)


def test_offline_build_runs_only_when_raw_files_are_missing(tmp_path):
    shared = _fake_shared(tmp_path, "raise SystemExit('the builder must not run')\n")
    _write_raw(tmp_path / "data" / "ZINC" / "raw")
    assert _build_zinc().build(tmp_path / "data", shared) is False
    assert len(load_zinc(tmp_path / "data", offline_dir=shared)["train"]) == len(SUBSET["train"])
    assert not (tmp_path / "data" / "ZINC" / "raw" / OFFLINE_MARKER).exists()


def test_offline_build_names_a_missing_package(tmp_path):
    shared = _fake_shared(tmp_path, "import rdkit_is_not_installed_here\n")
    with pytest.raises(ModuleNotFoundError, match="rdkit_is_not_installed_here"):
        _build_zinc().build(tmp_path / "data", shared)
    assert not (tmp_path / "data" / "ZINC" / "raw" / "train.pickle").exists()


def test_offline_build_failure_shows_the_script_error(tmp_path):
    shared = _fake_shared(tmp_path, "import sys\nsys.exit('source file zinc.csv.gz is corrupt')\n")
    with pytest.raises(RuntimeError, match="corrupt"):
        _build_zinc().build(tmp_path / "data", shared)
    with pytest.raises(FileNotFoundError, match="no ZINC builder"):
        _build_zinc().build(tmp_path / "data", tmp_path)


def test_build_command(tmp_path):
    shared = _fake_shared(tmp_path, FAKE_BUILDER)
    _write_raw(shared / "ZINC" / "built", subset_only=True)
    root = tmp_path / "data"
    command = [sys.executable, str(SCRIPT), "--root", str(root), "--offline-dir", str(shared)]
    out = subprocess.run(command, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert (root / "ZINC" / "raw" / OFFLINE_MARKER).is_file()
    assert "built in" in out.stdout
    assert "already in" in subprocess.run(command, capture_output=True, text=True, check=True).stdout
    out = subprocess.run([*command[:-1], str(tmp_path / "nope")], capture_output=True, text=True)
    assert out.returncode == 1 and out.stderr.strip().startswith("FileNotFoundError: no ZINC builder")


def test_download_failure_is_explained(tmp_path, no_shared, monkeypatch):
    def offline(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr("torch_geometric.datasets.zinc.download_url", offline)
    with pytest.raises(DatasetUnavailableError, match="ZINC-12k is not in the data root .* could not be downloaded"):
        load_zinc(tmp_path)
    with pytest.raises(DatasetUnavailableError, match="full ZINC is not in the data root .* no offline copy"):
        load_zinc(tmp_path, subset=False)


@pytest.mark.parametrize("subset", ["yes", 1, None])
def test_bad_subset_flag(tmp_path, subset):
    with pytest.raises(ValueError, match="subset"):
        load_zinc(tmp_path, subset=subset)


class _Processed(InMemoryDataset):
    """Reads a processed PyG file directly (the offline copy's original val/test files)."""

    def __init__(self, path: Path):
        super().__init__(None)
        self.load(str(path))


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.filterwarnings("ignore:Weights only load failed")  # PyG's fallback for the original files
def test_zinc_subset_statistics(tmp_path, offline_copy):
    builder = offline_copy("ZINC/build_zinc_subset.py", "ZINC")
    pytest.importorskip("rdkit", reason="the offline ZINC build needs rdkit")
    assert _build_zinc().build(tmp_path, builder.parents[1]) is True
    splits = load_zinc(tmp_path)
    assert {k: len(v) for k, v in splits.items()} == {"train": 10000, "val": 1000, "test": 1000}
    first = splits["train"][0]
    assert first.num_nodes == 29 and first.edge_index.size(1) == 64
    assert first.x.shape == (29, 1) and first.x.dtype == torch.long
    assert first.edge_attr.shape == (64,) and first.y.shape == (1,) and first.y.dtype == torch.float

    nodes = sum(ds._data.x.size(0) for ds in splits.values())
    edges = sum(ds._data.edge_index.size(1) for ds in splits.values())
    assert nodes / 12000 == pytest.approx(23.16, abs=0.005)
    assert edges / 12000 == pytest.approx(49.83, abs=0.005)

    facts = dataset_facts(splits)
    assert facts["num_node_tokens"] <= 28  # the config's atom vocabulary
    assert facts["num_edge_tokens"] == 4  # bond tokens 1..3
    assert set(torch.cat([ds._data.edge_attr for ds in splits.values()]).unique().tolist()) == {1, 2, 3}

    # Same molecules as PyG's original processed files; atom order and aromatic bond orders may differ
    # (newer RDKit), and the target is recomputed (median error ~0.002).
    for split in ("val", "test"):
        original_file = builder.parent / "original" / f"{split}.pt"
        if not original_file.is_file():
            continue
        original = _Processed(original_file)
        ours = splits[split]
        assert len(original) == len(ours)
        for a, b in zip(original, ours):
            assert a.num_nodes == b.num_nodes and a.edge_index.size(1) == b.edge_index.size(1)
            assert torch.equal(a.x.view(-1).sort().values, b.x.view(-1).sort().values)
        diff = (original._data.y - ours._data.y).abs()
        assert diff.median() < 0.01
        assert int((diff > 0.1).sum()) <= 5
