"""Peptides-func / Peptides-struct (LRGB) on tiny generated raw files, the multi-column encoder, the configs,
and the real offline copy (slow)."""
from __future__ import annotations

import csv
import dataclasses
import gzip
import importlib.util
import pickle
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
from ogb.utils.features import get_atom_feature_dims, get_bond_feature_dims
from omegaconf import OmegaConf
from torch_geometric.loader import DataLoader

from gnnlab.cli import config_dir
from gnnlab.data import DataModule, PeptidesDataset, load_peptides, lrgb
from gnnlab.errors import DatasetUnavailableError
from gnnlab.nn.encoders import MultiEmbeddingEncoder
from gnnlab.train.tasks import GraphRegression

#: Building graphs from SMILES needs rdkit (in the `test` and `chem` extras).
requires_rdkit = pytest.mark.skipif(
    importlib.util.find_spec("rdkit") is None, reason="the Peptides graphs are built from SMILES with rdkit"
)

SMILES = [
    "NCC(=O)O",                              # glycine
    "C[C@H](N)C(=O)O",                       # alanine
    "CC(C)[C@H](N)C(=O)O",                   # valine
    "CC(C)C[C@H](N)C(=O)O",                  # leucine
    "N[C@@H](CO)C(=O)O",                     # serine
    "N[C@@H](CS)C(=O)O",                     # cysteine
    "N[C@@H](Cc1ccccc1)C(=O)O",              # phenylalanine
    "N[C@@H](Cc1ccc(O)cc1)C(=O)O",           # tyrosine
    "N[C@@H](Cc1c[nH]c2ccccc12)C(=O)O",      # tryptophan
    "NCCCC[C@H]([NH3+])C(=O)O",              # lysine (charged)
    "N[C@@H](CCC(=O)[O-])C(=O)O",            # glutamate (charged)
    "NC(=N)NCCC[C@H](N)C(=O)O",              # arginine
    "N[C@@H](Cc1c[nH]cn1)C(=O)O",            # histidine
    "OC(=O)[C@@H]1CCCN1",                    # proline
    "NCC(=O)NCC(=O)O",                       # Gly-Gly
    "C[C@H](N)C(=O)NCC(=O)O",                # Ala-Gly
    "NCC(=O)N[C@@H](C)C(=O)NCC(=O)O",        # Gly-Ala-Gly
    "CSCC[C@H](N)C(=O)O",                    # methionine
    "C#CC(=O)O",                             # a triple bond
    "[Na+].[Cl-]",                           # no bonds at all
]
SPLIT = {"train": np.arange(0, 12), "val": np.arange(12, 16), "test": np.arange(16, 20)}
ATOM_DIMS = [119, 5, 12, 12, 10, 6, 6, 2, 2]
BOND_DIMS = [5, 6, 2]


def _func_labels(i: int) -> list[int]:
    return [(i >> k) & 1 for k in range(10)]


def _struct_targets(i: int) -> list[float]:
    return [round(0.1 * i - 0.05 * k, 3) for k in range(11)]


def _write_raw(raw: Path, name: str, smiles=SMILES, split=SPLIT, labels=None) -> None:
    """Write a CSV and a split pickle in the layout of the official LRGB files."""
    spec = lrgb._SPECS[name]
    raw.mkdir(parents=True, exist_ok=True)
    with gzip.open(raw / spec.csv.filename, "wt", newline="") as f:
        writer = csv.writer(f)
        if name == "peptides-func":
            writer.writerow(["", "smiles", "peptide_seq", "labels", "identifier"])
            for i, smi in enumerate(smiles):
                y = labels[i] if labels is not None else _func_labels(i)
                writer.writerow([i, smi, "G", str(y), f"id{i}"])
        else:
            writer.writerow(["", "smiles", *lrgb.STRUCT_TARGETS, "sequence"])
            for i, smi in enumerate(smiles):
                writer.writerow([i, smi, *_struct_targets(i), "G"])
    with open(raw / spec.split.filename, "wb") as f:
        pickle.dump(split, f)


@pytest.fixture
def no_shared(monkeypatch):
    """No offline copies, whatever the machine has."""
    monkeypatch.setenv("GNNLAB_SHARED_DATA", "")


# ----------------------------------------------------------------------------------------- processing

@requires_rdkit
def test_func_graphs_follow_the_split_pickle(tmp_path, no_shared):
    from rdkit import Chem

    _write_raw(tmp_path / "LRGB" / "peptides-func" / "raw", "peptides-func")
    splits = load_peptides(tmp_path, "peptides-func")
    assert {k: len(v) for k, v in splits.items()} == {"train": 12, "val": 4, "test": 4}
    for split, ds in splits.items():
        assert isinstance(ds, PeptidesDataset) and ds.split == split
        for graph, i in zip(ds, SPLIT[split]):
            mol = Chem.MolFromSmiles(SMILES[i])
            assert graph.x.dtype == torch.long and graph.x.shape == (mol.GetNumAtoms(), 9)
            assert graph.edge_index.dtype == torch.long and graph.edge_index.shape == (2, 2 * mol.GetNumBonds())
            assert graph.edge_attr.dtype == torch.long and graph.edge_attr.shape == (2 * mol.GetNumBonds(), 3)
            assert graph.y.dtype == torch.float and graph.y.shape == (1, 10)
            assert graph.y.view(-1).tolist() == _func_labels(int(i))
    ions = splits["test"][3]
    assert ions.num_nodes == 2 and ions.edge_index.shape == (2, 0) and ions.edge_attr.shape == (0, 3)

    processed = tmp_path / "LRGB" / "peptides-func" / "processed"
    assert sorted(p.name for p in processed.glob("*.pt") if p.stem in ("train", "val", "test")) == [
        "test.pt", "train.pt", "val.pt",
    ]
    # A second construction reads the processed files instead of converting again.
    mtime = (processed / "train.pt").stat().st_mtime_ns
    assert len(PeptidesDataset(tmp_path / "LRGB", "peptides-func", split="val")) == 4
    assert (processed / "train.pt").stat().st_mtime_ns == mtime

@requires_rdkit
def test_struct_targets(tmp_path, no_shared):
    _write_raw(tmp_path / "LRGB" / "peptides-struct" / "raw", "peptides-struct")
    splits = load_peptides(tmp_path, "peptides_struct")  # the config-style spelling works too
    assert {k: len(v) for k, v in splits.items()} == {"train": 12, "val": 4, "test": 4}
    graph = splits["val"][1]
    assert graph.y.shape == (1, 11) and graph.y.dtype == torch.float
    assert graph.y.view(-1).tolist() == pytest.approx(_struct_targets(13))

@requires_rdkit
def test_graph_regression_scores_all_struct_targets(tmp_path, no_shared):
    _write_raw(tmp_path / "LRGB" / "peptides-struct" / "raw", "peptides-struct")
    batch = next(iter(DataLoader(load_peptides(tmp_path, "peptides-struct")["train"], batch_size=5)))
    assert batch.y.shape == (5, 11)
    task = GraphRegression()
    out = torch.zeros(5, 11)
    pred, target = task.select(out, batch, "train")
    assert pred.shape == target.shape == (5, 11)
    assert task.loss(pred, target).item() == pytest.approx(batch.y.abs().mean().item())
    assert task.compute_metrics(pred, target)["mae"] == pytest.approx(batch.y.abs().mean().item())

@requires_rdkit
def test_progress_output(tmp_path, no_shared, capsys):
    _write_raw(tmp_path / "peptides-func" / "raw", "peptides-func")
    PeptidesDataset(tmp_path, "peptides-func")
    err = capsys.readouterr().err
    assert "converting 20 SMILES" in err
    lines = [line for line in err.splitlines() if "molecules (" in line]
    assert len(lines) == 10 and lines[-1].endswith("20/20 molecules (100%)")

@requires_rdkit
def test_offline_copy_is_copied_not_modified(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    source = shared / "LRGB" / "peptides-func" / "source"
    _write_raw(source, "peptides-func")
    before = {p.name: p.read_bytes() for p in source.iterdir()}
    monkeypatch.setenv("GNNLAB_SHARED_DATA", str(shared))

    def no_download(*args, **kwargs):
        raise AssertionError("must not download when the offline copy exists")

    monkeypatch.setattr(lrgb, "download_url", no_download)
    splits = load_peptides(tmp_path / "data")
    assert len(splits["train"]) == 12
    raw = tmp_path / "data" / "LRGB" / "peptides-func" / "raw"
    assert {p.name: p.read_bytes() for p in raw.iterdir()} == before
    assert {p.name: p.read_bytes() for p in source.iterdir()} == before
    assert sorted(p.name for p in source.parent.rglob("*")) == sorted(["source", *before])


# ------------------------------------------------------------------------------------------ downloads


def test_struct_offline_error_names_dataset_and_files(tmp_path, no_shared, monkeypatch):
    def offline(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(lrgb, "download_url", offline)
    with pytest.raises(DatasetUnavailableError) as info:
        load_peptides(tmp_path, "peptides-struct")
    message = str(info.value)
    for word in ("peptides-struct", "peptide_structure_normalized_dataset.csv.gz",
                 "splits_random_stratified_peptide_structure.pickle", "no offline copy"):
        assert word in message
    raw = tmp_path / "LRGB" / "peptides-struct" / "raw"
    assert not [p for p in raw.iterdir()], "a failed download must not leave files behind"

@requires_rdkit
def test_download_checks_md5_and_installs_files(tmp_path, no_shared, monkeypatch):
    source = tmp_path / "upstream"
    _write_raw(source, "peptides-struct")
    spec = lrgb._SPECS["peptides-struct"]
    fake = dataclasses.replace(
        spec,
        csv=dataclasses.replace(spec.csv, md5=lrgb._md5(source / spec.csv.filename)),
        split=dataclasses.replace(spec.split, md5=lrgb._md5(source / spec.split.filename)),
    )
    monkeypatch.setitem(lrgb._SPECS, "peptides-struct", fake)
    urls = []

    def download(url, folder, log=True, filename=None):
        urls.append(url)
        target = Path(folder) / filename
        target.write_bytes((source / filename).read_bytes())
        return str(target)

    monkeypatch.setattr(lrgb, "download_url", download)
    splits = load_peptides(tmp_path / "data", "peptides-struct")
    assert len(splits["test"]) == 4
    assert sorted(urls) == sorted([spec.csv.url, spec.split.url])
    assert all(url.startswith("https://www.dropbox.com/") for url in urls)


def test_download_with_wrong_md5_is_rejected(tmp_path, no_shared, monkeypatch):
    def corrupt(url, folder, log=True, filename=None):
        target = Path(folder) / filename
        target.write_bytes(b"<html>not the file</html>")
        return str(target)

    monkeypatch.setattr(lrgb, "download_url", corrupt)
    with pytest.raises(ValueError, match="MD5"):
        load_peptides(tmp_path, "peptides-func")
    raw = tmp_path / "LRGB" / "peptides-func" / "raw"
    assert not (raw / "peptide_multi_class_dataset.csv.gz").exists()


# --------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("name", ["peptides", "peptides-fun", "zinc", ""])
def test_unknown_dataset_name(tmp_path, name):
    with pytest.raises(ValueError, match="unknown Peptides dataset.*peptides-func, peptides-struct"):
        load_peptides(tmp_path, name)
    with pytest.raises(ValueError, match="unknown Peptides dataset"):
        PeptidesDataset(tmp_path, name)


def test_unknown_split(tmp_path):
    with pytest.raises(ValueError, match="unknown split 'valid'"):
        PeptidesDataset(tmp_path, "peptides-func", split="valid")


@requires_rdkit
@pytest.mark.parametrize(
    "split, match",
    [
        ({"train": np.arange(12), "val": np.arange(12, 16)}, "keys 'train', 'val', 'test'"),
        ({"train": np.arange(12), "val": np.arange(12, 16), "test": np.array([16, 25])}, r"outside \[0, 20\)"),
        ({"train": np.arange(12), "val": np.arange(10, 16), "test": np.arange(16, 20)}, "appears twice"),
        ({"train": np.arange(12) * 0.5, "val": np.arange(12, 16), "test": np.arange(16, 20)}, "integer"),
    ],
)
def test_bad_split_pickle(tmp_path, no_shared, split, match):
    _write_raw(tmp_path / "peptides-func" / "raw", "peptides-func", split=split)
    with pytest.raises(ValueError, match=match) as info:
        PeptidesDataset(tmp_path, "peptides-func")
    assert "splits_random_stratified_peptide.pickle" in str(info.value)

@requires_rdkit
def test_wrong_number_of_labels(tmp_path, no_shared):
    labels = [_func_labels(i) for i in range(20)]
    labels[7] = labels[7][:9]
    _write_raw(tmp_path / "peptides-func" / "raw", "peptides-func", labels=labels)
    with pytest.raises(ValueError, match="row 7: 9 targets, expected 10"):
        PeptidesDataset(tmp_path, "peptides-func")

@requires_rdkit
def test_unreadable_smiles(tmp_path, no_shared):
    smiles = list(SMILES)
    smiles[4] = "C1CC(not a molecule"
    _write_raw(tmp_path / "peptides-func" / "raw", "peptides-func", smiles=smiles)
    with pytest.raises(ValueError, match="molecule 4 has an unreadable SMILES"):
        PeptidesDataset(tmp_path, "peptides-func")


# -------------------------------------------------------------------------------------------- encoder


def test_multi_embedding_encoder_sums_columns():
    torch.manual_seed(0)
    enc = MultiEmbeddingEncoder([4, 3, 2], out_channels=5)
    x = torch.tensor([[0, 1, 1], [3, 2, 0]])
    out = enc(x)
    assert out.shape == (2, 5)
    expected = enc.embs[0].weight[x[:, 0]] + enc.embs[1].weight[x[:, 1]] + enc.embs[2].weight[x[:, 2]]
    torch.testing.assert_close(out, expected)
    assert repr(enc) == "MultiEmbeddingEncoder([4, 3, 2], 5)"
    before = enc.embs[0].weight.detach().clone()
    enc.reset_parameters()
    assert not torch.equal(before, enc.embs[0].weight)
    assert enc(x[:0]).shape == (0, 5)
    one = MultiEmbeddingEncoder(OmegaConf.create([6]), 2)  # Hydra passes lists as ListConfig
    assert one(torch.tensor([1, 5])).shape == (2, 2)


@pytest.mark.parametrize(
    "x, match",
    [
        (torch.tensor([[0, 1]]), r"shape \[N, 3\]"),
        (torch.tensor([0, 1, 1]), r"shape \[N, 3\]"),
        (torch.tensor([[0.0, 1.0, 1.0]]), "integer tokens"),
        (torch.tensor([[0, 3, 1]]), "column 1 has token 3 outside \\[0, 3\\)"),
        (torch.tensor([[-1, 0, 0]]), "column 0 has token -1"),
    ],
)
def test_multi_embedding_encoder_rejects_bad_input(x, match):
    with pytest.raises(ValueError, match=match):
        MultiEmbeddingEncoder([4, 3, 2], 5)(x)


@pytest.mark.parametrize(
    "num_embeddings, out_channels, match",
    [([], 4, "non-empty"), (5, 4, "list"), ("abc", 4, "list"), ([3, 0], 4, r"num_embeddings\[1\]"),
     ([3, 2.5], 4, r"num_embeddings\[1\]"), ([3], 0, "out_channels")],
)
def test_multi_embedding_encoder_rejects_bad_sizes(num_embeddings, out_channels, match):
    with pytest.raises(ValueError, match=match):
        MultiEmbeddingEncoder(num_embeddings, out_channels)


# -------------------------------------------------------------------------------------------- configs


@pytest.mark.parametrize("name", ["peptides_func", "peptides_struct"])
def test_config_vocabularies_are_ogbs(name):
    """The embedding tables are sized by OGB's feature dictionaries, which the dataset declares."""
    from gnnlab.data.lrgb import PeptidesDataset

    assert PeptidesDataset.vocabulary == {"x": get_atom_feature_dims(), "edge_attr": get_bond_feature_dims()}
    assert PeptidesDataset.vocabulary == {"x": ATOM_DIMS, "edge_attr": BOND_DIMS}
    cfg = OmegaConf.load(config_dir() / "data" / f"{name}.yaml")
    if "node_encoder" not in cfg:  # peptides_struct inherits the encoders
        cfg = OmegaConf.load(config_dir() / "data" / "peptides_func.yaml")
    assert OmegaConf.to_container(cfg.node_encoder)["num_embeddings"] == "${data.num_node_tokens}"


@requires_rdkit
@pytest.mark.parametrize("data, outputs", [("peptides_func", 10), ("peptides_struct", 11)])
def test_model_from_configs_runs_on_tiny_peptides(tmp_path, no_shared, data, outputs):
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from gnnlab.train.run import add_facts

    name = data.replace("_", "-")
    _write_raw(tmp_path / "datasets" / "LRGB" / name / "raw", name)
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=[f"data={data}", "model=gine", f"paths.data_dir={tmp_path / 'datasets'}"])
    module = instantiate(cfg.data.module)
    assert isinstance(module, DataModule) and len(module.dataset("train")) == 12
    model = instantiate(add_facts(cfg, module.facts).model)
    batch = next(iter(module.loader("val")))
    out = model(batch)
    assert out.shape == (4, outputs) == tuple(batch.y.shape)
    task = instantiate(cfg.task)
    pred, target = task.select(out, batch, "val")
    assert torch.isfinite(task.loss(pred, target))


# ---------------------------------------------------------------------------------------- real data


@requires_rdkit
@pytest.mark.slow
@pytest.mark.shared_data
def test_peptides_func_statistics(tmp_path, offline_copy):
    offline_copy("LRGB/peptides-func/source", "Peptides-func")
    splits = load_peptides(tmp_path, "peptides-func")
    assert {k: len(v) for k, v in splits.items()} == {"train": 10873, "val": 2331, "test": 2331}
    assert sum(ds._data.x.size(0) for ds in splits.values()) == 2_344_859
    assert sum(ds._data.edge_index.size(1) for ds in splits.values()) == 4_773_974
    x = torch.cat([ds._data.x for ds in splits.values()])
    edge_attr = torch.cat([ds._data.edge_attr for ds in splits.values()])
    y = torch.cat([ds._data.y for ds in splits.values()])
    assert x.shape[1] == 9 and edge_attr.shape[1] == 3 and y.shape == (15535, 10)
    assert (x.max(0).values < torch.tensor(ATOM_DIMS)).all() and (x.min() >= 0)
    assert (edge_attr.max(0).values < torch.tensor(BOND_DIMS)).all() and (edge_attr.min() >= 0)
    assert not torch.isnan(y).any() and set(y.unique().tolist()) == {0.0, 1.0}
    raw = tmp_path / "LRGB" / "peptides-func" / "raw"
    for file in (lrgb._SPECS["peptides-func"].csv, lrgb._SPECS["peptides-func"].split):
        assert lrgb._md5(raw / file.filename) == file.md5  # the offline copy is the official file
