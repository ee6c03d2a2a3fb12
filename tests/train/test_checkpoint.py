"""Checkpoints: durable atomic writes, weights-only loading, clear errors for bad files."""
from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch

from gnnlab.train import Trainer
from gnnlab.train.checkpoint import CheckpointError, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from tests.train.toy import ToyData, ToyModel, toy_task


def _train(tmp_path, epochs=1, resume=None, model=None):
    torch.manual_seed(0)
    model = model or ToyModel()
    trainer = Trainer(max_epochs=epochs, output_dir=str(tmp_path), progress=False)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)
    return trainer.fit(model, toy_task(), ToyData(), optimizer, scheduler, resume=resume)


class _Payload:
    """Unpickling this object writes a file: what a malicious or foreign checkpoint could do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_checkpoints_load_weights_only(tmp_path):
    _train(tmp_path)
    for name in ("last.ckpt", "best.ckpt"):
        state = torch.load(tmp_path / "checkpoints" / name, weights_only=True)
        assert state["epoch"] == 1
    assert isinstance(state["model"]["lin.weight"], torch.Tensor)


def test_rng_state_round_trips_through_weights_only_files(tmp_path):
    generator = torch.Generator().manual_seed(3)
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    save_checkpoint(tmp_path / "rng.ckpt", {"rng": rng_state(generator)})
    expected = (random.random(), np.random.rand(), torch.rand(1).item(), torch.rand(1, generator=generator).item())
    set_rng_state(load_checkpoint(tmp_path / "rng.ckpt")["rng"], generator)
    got = (random.random(), np.random.rand(), torch.rand(1).item(), torch.rand(1, generator=generator).item())
    assert got == expected


def test_loading_never_unpickles_objects(tmp_path):
    path = tmp_path / "foreign.ckpt"
    marker = tmp_path / "unpickled"
    torch.save({"model": {}, "payload": _Payload(marker)}, path)
    with pytest.raises(CheckpointError, match=str(path)):
        load_checkpoint(path)
    assert not marker.exists()


def test_saving_refuses_objects_that_need_pickle(tmp_path):
    with pytest.raises(TypeError, match=r"'extra.thing'.*weights_only"):
        save_checkpoint(tmp_path / "x.ckpt", {"model": {}, "extra": {"thing": object()}})
    assert not (tmp_path / "x.ckpt").exists()
    save_checkpoint(tmp_path / "y.ckpt", {"value": np.float64(0.5)})  # numpy scalars become floats
    assert load_checkpoint(tmp_path / "y.ckpt")["value"] == 0.5


def test_save_is_fsynced_before_the_atomic_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", str(src), str(dst)))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    path = tmp_path / "checkpoints" / "last.ckpt"
    save_checkpoint(path, {"epoch": 1, "weight": torch.ones(3)})
    renames = [i for i, e in enumerate(events) if e[0] == "replace" and e[2] == str(path)]
    assert len(renames) == 1, events
    tmp = events[renames[0]][1]
    assert tmp != str(path) and not os.path.exists(tmp)
    assert ("fsync", tmp) in events[:renames[0]], events
    assert load_checkpoint(path)["epoch"] == 1


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    _train(tmp_path)
    path = tmp_path / "checkpoints" / "last.ckpt"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=rf"{path}.*(truncated|corrupt)") as info:
        _train(tmp_path, epochs=2, resume=str(tmp_path))
    assert "delete" in str(info.value).lower() or "start" in str(info.value).lower()


def test_foreign_checkpoints_are_clear_errors(tmp_path):
    # A bare state_dict (e.g. saved by another program) is not a training checkpoint.
    path = tmp_path / "weights.ckpt"
    torch.save(ToyModel().state_dict(), path)
    with pytest.raises(CheckpointError, match=rf"{path}.*not a gnnlab training checkpoint.*optimizer"):
        _train(tmp_path / "a", epochs=2, resume=str(path))
    # A checkpoint of another model.
    other = tmp_path / "other"
    _train(other)
    wide = torch.nn.Module()
    wide.lin = torch.nn.Linear(4, 7)
    state = load_checkpoint(other / "checkpoints" / "last.ckpt")
    state["model"] = wide.state_dict()
    save_checkpoint(other / "checkpoints" / "last.ckpt", state)
    with pytest.raises(CheckpointError, match=r"last\.ckpt.*does not match the model"):
        _train(other, epochs=2, resume=str(other))
