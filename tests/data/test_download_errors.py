"""A dataset that is neither in the data root nor in the offline copies, on a machine without network."""
from __future__ import annotations

import socket

import pytest

from gnnlab.data import load_aqsol, load_peptides, load_planetoid, load_tu, load_zinc
from gnnlab.errors import DataError, DatasetUnavailableError

LOADERS = {
    "Cora": (lambda root: load_planetoid(root, "Cora"), "Planetoid/Cora/raw"),
    "MUTAG": (lambda root: load_tu(root, "MUTAG"), "TUDataset/MUTAG/raw"),
    "AQSOL": (load_aqsol, "AQSOL/raw"),
    "ZINC": (load_zinc, "ZINC"),
    "peptides-func": (lambda root: load_peptides(root, "peptides-func"), "LRGB/peptides-func/source"),
}


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network (name resolution fails as it does offline), empty data root and offline-copies folder."""
    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    shared = tmp_path / "shared"
    shared.mkdir()
    monkeypatch.setenv("GNNLAB_SHARED_DATA", str(shared))
    return tmp_path / "data", shared


@pytest.mark.parametrize("name", list(LOADERS))
def test_failed_download_says_what_where_and_how(name, offline):
    root, shared = offline
    load, relative = LOADERS[name]
    with pytest.raises(DatasetUnavailableError) as info:
        load(root)
    message = str(info.value)
    assert isinstance(info.value, DataError)
    assert name in message
    assert str(root) in message, "the data root it looked in"
    assert str(shared / relative) in message, "the offline copy it looked for"
    assert "GNNLAB_SHARED_DATA" in message
    assert "Temporary failure in name resolution" in message, "the network error itself"
    assert "paths.data_dir" in message, "how to point the run at another data root"


def test_without_any_offline_folder_the_message_says_so(monkeypatch, offline):
    root, _ = offline
    monkeypatch.setenv("GNNLAB_SHARED_DATA", "")
    with pytest.raises(DatasetUnavailableError, match="offline copies are switched off"):
        load_planetoid(root, "Cora")
