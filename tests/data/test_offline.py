"""Finding offline copies, copying them into the data root, and checking the data root."""
from __future__ import annotations

import inspect
import os
from pathlib import Path

import pytest
from hydra.utils import get_method

from gnnlab.cli import config_dir
from gnnlab.data import copy_offline, prepare_root, shared_data_dir
from gnnlab.data._offline import ENV_VAR
from tests.conf.test_configs import compose_cfg


def _fake_shared(tmp_path: Path) -> Path:
    shared = tmp_path / "shared" / "data"
    raw = shared / "Toy" / "raw"
    (raw / "sub").mkdir(parents=True)
    (raw / "a.txt").write_text("a")
    (raw / "sub" / "b.txt").write_text("b")
    (shared / "Toy" / "splits.json").write_text("[]")
    return shared


def test_env_var_names_the_folder(tmp_path, monkeypatch):
    shared = _fake_shared(tmp_path)
    monkeypatch.setenv(ENV_VAR, str(shared))
    assert shared_data_dir() == shared.resolve()


def test_argument_names_the_folder_before_the_env_var(tmp_path, monkeypatch):
    shared = _fake_shared(tmp_path)
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "elsewhere"))
    assert shared_data_dir(shared) == shared.resolve()
    assert shared_data_dir(str(shared)) == shared.resolve()
    assert shared_data_dir("") is None  # switched off, whatever the variable says
    dest = tmp_path / "root" / "Toy" / "raw"
    assert copy_offline("Toy/raw", dest, offline_dir=shared) is True
    assert (dest / "a.txt").read_text() == "a"


def test_env_var_missing_folder_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match=f"{ENV_VAR}=.*nope"):
        shared_data_dir()
    monkeypatch.delenv(ENV_VAR)
    with pytest.raises(FileNotFoundError, match="paths.offline_data_dir.*nope"):
        shared_data_dir(tmp_path / "nope")


def test_empty_env_var_disables_lookup(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "")
    assert shared_data_dir() is None
    assert copy_offline("Planetoid/Cora/raw", Path("/nonexistent/never-created")) is False


def test_parent_folders_are_never_searched(tmp_path, monkeypatch):
    _fake_shared(tmp_path)
    work = tmp_path / "main" / "outputs" / "run"
    work.mkdir(parents=True)
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.chdir(work)
    assert shared_data_dir() is None


def test_offline_data_dir_follows_the_env_var(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert compose_cfg([], tmp_path).paths.offline_data_dir is None
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert compose_cfg([], tmp_path).paths.offline_data_dir == str(tmp_path)
    assert compose_cfg(["paths.offline_data_dir=/copies"], tmp_path).paths.offline_data_dir == "/copies"


@pytest.mark.parametrize("data", sorted(p.stem for p in (config_dir() / "data").glob("*.yaml")))
def test_data_configs_pass_the_offline_folder(data, tmp_path):
    """Every loader that reads offline copies gets paths.offline_data_dir."""
    cfg = compose_cfg([f"data={data}", f"paths.offline_data_dir={tmp_path}"], tmp_path)
    loader = cfg.data.module.get("splits") or cfg.data.module.get("split")
    if "offline_dir" in inspect.signature(get_method(loader._target_)).parameters:
        assert loader.offline_dir == str(tmp_path)


def test_copy_offline_copies_missing_files_only(tmp_path, monkeypatch):
    shared = _fake_shared(tmp_path)
    monkeypatch.setenv(ENV_VAR, str(shared))
    dest = tmp_path / "root" / "Toy" / "raw"

    assert copy_offline("Toy/raw", dest) is True
    assert (dest / "a.txt").read_text() == "a"
    assert (dest / "sub" / "b.txt").read_text() == "b"
    assert not list(dest.rglob("*.partial"))
    assert copy_offline("Toy/raw", dest) is False  # nothing missing any more

    (dest / "a.txt").write_text("downloaded")
    (dest / "sub" / "b.txt").unlink()
    assert copy_offline("Toy/raw", dest) is True
    assert (dest / "a.txt").read_text() == "downloaded"  # existing files are kept
    assert (dest / "sub" / "b.txt").read_text() == "b"
    # The source was only read.
    assert sorted(p.name for p in (shared / "Toy").rglob("*")) == ["a.txt", "b.txt", "raw", "splits.json", "sub"]


def test_copy_offline_single_file_and_missing_source(tmp_path, monkeypatch):
    shared = _fake_shared(tmp_path)
    monkeypatch.setenv(ENV_VAR, str(shared))
    target = tmp_path / "root" / "Toy" / "splits.json"
    assert copy_offline("Toy/splits.json", target) is True
    assert target.read_text() == "[]"
    assert copy_offline("Toy/splits.json", target) is False
    assert copy_offline("Other/raw", tmp_path / "root" / "Other" / "raw") is False
    assert not (tmp_path / "root" / "Other").exists()


def test_prepare_root_creates_nested_folders(tmp_path):
    root = prepare_root(tmp_path / "a" / "b")
    assert root.is_dir() and root.is_absolute()
    assert list(root.iterdir()) == []  # the write probe leaves nothing behind


def test_prepare_root_below_a_file_is_not_writable(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    bad = afile / "sub"
    with pytest.raises(PermissionError, match="not writable") as info:
        prepare_root(bad)
    assert str(bad) in str(info.value)
    assert "paths.data_dir" in str(info.value)
    with pytest.raises(PermissionError, match=str(afile)):
        prepare_root(afile)  # exists but is a file


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="permissions do not bind root")
def test_prepare_root_read_only_folder(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        for bad in (locked, locked / "sub"):
            with pytest.raises(PermissionError, match="not writable") as info:
                prepare_root(bad)
            assert str(bad) in str(info.value)
    finally:
        locked.chmod(0o700)
